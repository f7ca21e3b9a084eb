"""`tillgate users add|list|disable|enable|reset-2fa|reset-password`: the web portal's operators
(docs/portal.md). The first head-office account is made this way.

A password never comes from the command line (argv is visible to every user of the machine in
`ps` and lands in shell history): `add` prints a one-time set-password link by default, or, with
`--password`, reads it from a prompt (twice) or, when stdin is not a terminal, from stdin's
first line. `reset-password` takes the old password away and prints a new link; `reset-2fa`
makes the operator enrol an authenticator again at the next login. Disabling, and each reset,
ends every session of the operator at once.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from typing import TYPE_CHECKING

from gateway.backoffice import people
from gateway.cli.config import load_or_report
from gateway.cli.main import fail
from gateway.cli.storecommand import run_command
from gateway.config.model import Config
from gateway.ledger.storeconnect import store_session
from gateway.web.portal.passwords import hash_password, password_problem

if TYPE_CHECKING:
    from gateway.backoffice.operators import Operator

# SQLAlchemy and Alembic are imported inside the commands (gateway.backoffice.operators and
# connect load them): building `tillgate`'s parser must not pay for them.


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("users", help="operators of the web portal")
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", parents=[common], help="a new operator; prints a "
                             "one-time link to set the password")
    add.add_argument("--email", required=True, help="the login name")
    add.add_argument("--name", required=True, help="the name the portal shows")
    add.add_argument("--role", required=True, choices=people.ROLES)
    add.add_argument("--merchant", default=None,
                     help="the merchant (required for merchant_manager and staff)")
    add.add_argument("--second-factor", default="totp", choices=people.SECOND_FACTORS,
                     help="codes from an authenticator app (default) or by e-mail")
    add.add_argument("--password", action="store_true",
                     help="set the password now: asked at a prompt, or read from stdin's "
                          "first line (never give it on the command line)")
    listing = actions.add_parser("list", parents=[common], help="every operator (no secret)")
    listing.add_argument("--json", action="store_true", help="as JSON")
    for action, what in (("disable", "disable an operator (their sessions end)"),
                         ("enable", "enable an operator again (and lift a lock-out)"),
                         ("reset-2fa", "make the operator enrol an authenticator again"),
                         ("reset-password", "remove the password; prints a new one-time "
                                            "link")):
        one = actions.add_parser(action, parents=[common], help=what)
        one.add_argument("email", help="the operator's e-mail address")
    parser.set_defaults(func=run_users)


def run_users(args) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    password = None
    if args.action == "add":
        if args.merchant is not None and args.merchant not in config.merchants:
            return fail(f"--merchant: no merchant {args.merchant!r} in the config "
                        f"(known: {', '.join(config.merchants)})")
        problem = people.role_problem(args.role, args.merchant)
        if problem:
            return fail(problem)
        if args.password:
            password = _read_password()
            if password is None:
                return 2
            problem = password_problem(password, args.email)
            if problem:
                return fail(problem)
    from gateway.backoffice.connect import BackofficeUnavailable

    try:
        return run_command(_act(config, args, password))
    except BackofficeUnavailable as e:
        return fail(str(e))


def _read_password() -> str | None:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("the same again: ") != first:
            fail("the two passwords differ")
            return None
        return first
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        fail("--password: no password on stdin")
        return None
    return line


async def _act(config: Config, args, password: str | None) -> int:
    from gateway.backoffice import operators as ops
    from gateway.backoffice.connect import backoffice_session
    from gateway.web.portal import accounts  # the same actions as the portal's pages

    async with backoffice_session(config) as engine, store_session(config) as store:
        client = store.client
        if args.action == "list":
            return _print_list(await ops.all_operators(engine), args.json)
        if args.action == "add":
            hashed = await asyncio.to_thread(hash_password, password) if password else None
            try:
                op, link = await accounts.add(engine, client, config, args.email, args.name,
                                              args.role, args.merchant, args.second_factor,
                                              hashed)
            except (ops.OperatorExists, ValueError) as e:
                return fail(str(e))
            print(f"operator {op.id} {op.email} ({op.role}"
                  f"{', ' + op.merchant if op.merchant else ''}) added")
            if link is not None:
                _print_link(config, op, link)
            _print_next_step(op)
            return 0
        found = await ops.by_email(engine, args.email)
        if found is None:
            return fail(f"no operator {ops.normal_email(args.email)}")
        op = found
        if args.action in ("disable", "enable"):
            await accounts.set_enabled(engine, client, config, op, args.action == "enable")
            print(f"operator {op.id} {op.email} {args.action}d")
        elif args.action == "reset-2fa":
            await accounts.reset_second_factor(engine, op)
            print(f"operator {op.id} {op.email}: authenticator removed; they set one up at "
                  f"their next login (their sessions are ended)")
        else:  # reset-password
            link = await accounts.reset_password(engine, client, config, op)
            print(f"operator {op.id} {op.email}: password removed (their sessions are ended)")
            _print_link(config, op, link)
        return 0


def _print_link(config: Config, op: Operator, link: str) -> None:
    print(f"one-time link to set the password (good for {config.portal.link_hours} hours, "
          f"once; give it to {op.email} only):\n  {link}")


def _print_next_step(op: Operator) -> None:
    second = ("a code e-mailed to them" if op.second_factor == "email"
              else "an authenticator app, set up with the QR code shown at the first login")
    print(f"they log in at /ui/login with their e-mail, password and {second}")


def _print_list(found: list[Operator], as_json: bool) -> int:
    rows = [{"id": o.id, "email": o.email, "name": o.display_name, "role": o.role,
             "merchant": o.merchant, "status": o.status, "second_factor": o.second_factor,
             "authenticator": o.totp_enrolled, "password": o.password_hash is not None,
             "clubs": sorted(o.clubs), "last_login": o.last_login_t} for o in found]
    if as_json:
        print(json.dumps({"operators": rows}, indent=1))
        return 0
    if not rows:
        print("no operators yet: tillgate users add --email ... --name ... --role head_office")
        return 0
    for operator, r in zip(found, rows, strict=True):
        flags = [str(r["status"]), str(r["second_factor"])]
        if not r["password"]:
            flags.append("no password yet")
        if operator.clubs:
            flags.append("clubs " + " ".join(sorted(operator.clubs)))
        print(f"{r['id']:>4}  {r['email']:<32} {r['role']:<16} {r['merchant'] or '-':<16} "
              f"{', '.join(flags)}")
    return 0
