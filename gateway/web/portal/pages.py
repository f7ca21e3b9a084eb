"""The portal's pages: every route, the stage it needs and the roles it admits.

Routes are paths under `/ui/`. Stage None: no session needed; `anon`: any session (the CSRF
token of a login form); `password`: between the password and the second factor; `in`: logged
in. Roles default to all three; a page for fewer names them.
"""

from __future__ import annotations

from gateway.web.portal import (
    account,
    analytics,
    apitokens,
    cardactions,
    cardbatch,
    cardissue,
    cardlookup,
    customerpages,
    ecardpages,
    entry,
    login,
    peopleroutes,
    rewardscreen,
    scanner,
    staffdesk,
    staffreport,
)
from gateway.web.portal.render import CSS
from gateway.web.portal.sessions import ANON, IN, PASSWORD
from gateway.web.portal.web import STATIC_CACHE, Asset, Ctx, Page, Redirect, Reply, Route

HEAD_OFFICE = ("head_office",)
MANAGERS = ("head_office", "merchant_manager")


async def home(ctx: Ctx) -> Reply:
    """Head office and managers get a page of what they can do; staff go straight to their
    work, the staff dashboard."""
    operator = ctx.operator
    assert operator is not None
    if operator.role == "staff":
        return Redirect("staff")
    return Page("home.html", {"title": "Home"})


async def stylesheet(ctx: Ctx) -> Reply:
    return Asset(CSS, b"text/css; charset=utf-8", STATIC_CACHE)


def routes() -> dict[tuple[str, str], Route]:
    return {
        ("GET", "static/portal.css"): Route(stylesheet, None),
        ("GET", "login"): Route(login.login_form, None),
        ("POST", "login"): Route(login.login, ANON),
        ("GET", "login/code"): Route(login.code_form, PASSWORD),
        ("POST", "login/code"): Route(login.code, PASSWORD),
        ("GET", "login/enrol"): Route(login.enrol_form, PASSWORD),
        ("POST", "login/enrol"): Route(login.enrol, PASSWORD),
        ("GET", "set-password"): Route(login.set_password_form, None),
        ("POST", "set-password"): Route(login.set_password, ANON),
        ("POST", "logout"): Route(login.logout, IN),
        ("GET", ""): Route(home, IN),
        ("GET", "cards"): Route(cardlookup.form, IN, camera=True),
        ("POST", "cards"): Route(cardlookup.lookup, IN, camera=True),
        **cardactions.ROUTES,
        **cardissue.ROUTES,
        **cardbatch.ROUTES,
        ("GET", "account"): Route(account.show, IN),
        ("POST", "account/password"): Route(account.change_password, IN),
        ("POST", "account/second-factor"): Route(account.second_factor, IN),
        ("GET", "account/enrol"): Route(account.enrol_form, IN),
        ("POST", "account/enrol"): Route(account.enrol, IN),
        ("POST", "account/logout-everywhere"): Route(account.logout_everywhere, IN),
        ("GET", "tokens"): Route(apitokens.show, IN, HEAD_OFFICE),
        ("POST", "tokens/create"): Route(apitokens.create, IN, HEAD_OFFICE),
        ("POST", "tokens/switch"): Route(apitokens.switch, IN, HEAD_OFFICE),
        **staffdesk.ROUTES, **entry.ROUTES,
        **scanner.ROUTES,
        **ecardpages.ROUTES,
        **peopleroutes.ROUTES,
        **REPORT_ROUTES,
        **customerpages.ROUTES,
    }


# Analytics, the staff report and the rewards catalogue (docs/portal.md).
REPORT_ROUTES = {
    ("GET", "analytics"): Route(analytics.show, IN, MANAGERS),
    ("GET", "analytics.csv"): Route(analytics.download, IN, MANAGERS),
    ("GET", "staff-report"): Route(staffreport.show, IN, MANAGERS),
    ("GET", "staff-report.csv"): Route(staffreport.download, IN, MANAGERS),
    ("GET", "rewards"): Route(rewardscreen.show, IN, HEAD_OFFICE),
    ("POST", "rewards/add"): Route(rewardscreen.add, IN, HEAD_OFFICE),
    ("GET", "rewards/edit"): Route(rewardscreen.edit_form, IN, HEAD_OFFICE),
    ("POST", "rewards/update"): Route(rewardscreen.update, IN, HEAD_OFFICE),
    ("POST", "rewards/switch"): Route(rewardscreen.switch, IN, HEAD_OFFICE),
    ("GET", "rewards/claims"): Route(rewardscreen.claims, IN, HEAD_OFFICE),
    ("GET", "rewards/void"): Route(rewardscreen.void_form, IN, HEAD_OFFICE),
    ("POST", "rewards/void"): Route(rewardscreen.void, IN, HEAD_OFFICE),
}
