"""`tillgate users` as a subprocess against a `tillgate serve` subprocess: the first head-office
account from the command line, its one-time link, the enrolment at the first login (the secret
read from the page, as a person would type it into their app), and disable, enable, reset-2fa
and reset-password taking effect on the running gateway with no restart."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from contextlib import closing

import pyotp
import pytest
from portalclient import PASSWORD, SECRET, Client, login_password

from gateway.testing import GatewayProcess

LINK = re.compile(r"(http://\S+/ui/set-password\?t=\S+)")


@pytest.fixture
def gateway(tmp_path):
    process = GatewayProcess.prepare(tmp_path).start()
    yield process
    process.stop()


def users(gateway: GatewayProcess, *args: str, stdin: str | None = None
          ) -> subprocess.CompletedProcess:
    return subprocess.run(gateway.command("users", *args), input=stdin, capture_output=True,
                          text=True, timeout=60, cwd=gateway.workdir)


def set_password(client: Client, path: str, password: str = PASSWORD) -> str:
    """Follow a set-password link (its path) and set the password; where it sends us."""
    form = client.get(path)
    assert form.status == 200, form.body
    token = path.split("t=", 1)[1]
    done = client.post("/ui/set-password", {"csrf": form.csrf, "token": token,
                                            "password": password, "password2": password})
    return done.location


def enrol(client: Client) -> str:
    """The enrolment page's secret; the first code confirms it and logs in."""
    page = client.get("/ui/login/enrol")
    secret = SECRET.search(page.body)
    assert secret and "<svg" in page.body, page.body
    key = secret.group(1).replace(" ", "")
    answer = client.post("/ui/login/enrol", {"csrf": page.csrf,
                                             "code": pyotp.TOTP(key).now()})
    assert answer.location == "/ui/", answer.body
    return key


def test_first_head_office_account_from_the_command_line(gateway):
    port = gateway.ports["http"]
    added = users(gateway, "add", "--email", "Boss@Example.com", "--name", "The Boss",
                  "--role", "head_office")
    assert added.returncode == 0, added.stderr
    link = LINK.search(added.stdout)
    assert link, added.stdout
    client = Client(port)
    path_link = "/ui/" + link.group(1).split("/ui/", 1)[1]
    assert set_password(client, path_link) == "/ui/login?why=password-set"
    assert client.get(path_link).status == 404  # once only
    assert login_password(client, "boss@example.com").location == "/ui/login/enrol"
    key = enrol(client)
    assert "Welcome, The Boss" in client.get("/ui/").body

    listed = json.loads(users(gateway, "list", "--json").stdout)["operators"]
    assert [(o["email"], o["role"], o["authenticator"], o["clubs"]) for o in listed] == [
        ("boss@example.com", "head_office", True, [])]
    assert listed[0]["last_login"] is not None

    assert users(gateway, "disable", "boss@example.com").returncode == 0
    assert client.get("/ui/").location == "/ui/login?why=ended"  # at once, no restart
    assert "Wrong e-mail" in login_password(Client(port), "boss@example.com").body  # refused
    assert users(gateway, "enable", "boss@example.com").returncode == 0

    assert users(gateway, "reset-2fa", "boss@example.com").returncode == 0
    fresh = Client(port)
    assert login_password(fresh, "boss@example.com").location == "/ui/login/enrol"
    assert enrol(fresh) != key  # a new secret

    reset = users(gateway, "reset-password", "boss@example.com")
    assert reset.returncode == 0 and LINK.search(reset.stdout)
    assert fresh.get("/ui/").location == "/ui/login?why=ended"
    assert "Wrong e-mail" in login_password(Client(port), "boss@example.com").body


def test_a_password_from_stdin_never_from_argv(gateway):
    refused = users(gateway, "add", "--email", "s@example.com", "--name", "S", "--role",
                    "staff", "--merchant", "STORE0000000001", "--password", PASSWORD)
    assert refused.returncode == 2 and "unrecognized arguments" in refused.stderr
    short = users(gateway, "add", "--email", "s@example.com", "--name", "S", "--role", "staff",
                  "--merchant", "STORE0000000001", "--password", stdin="short\n")
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
    added = users(gateway, "add", "--email", "s@example.com", "--name", "S", "--role", "staff",
                  "--merchant", "STORE0000000001", "--password", stdin=PASSWORD + "\n")
    assert added.returncode == 0 and not LINK.search(added.stdout), added.stderr
    assert PASSWORD not in added.stdout + added.stderr
    assert login_password(Client(gateway.ports["http"]), "s@example.com"
                          ).location == "/ui/login/enrol"
    for args, message in ((("--role", "staff"), "needs a merchant"),
                          (("--role", "staff", "--merchant", "NOPE"), "no merchant 'NOPE'"),
                          (("--role", "head_office"), "exists")):
        bad = users(gateway, "add", "--email", "s@example.com", "--name", "S", *args)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
    assert users(gateway, "disable", "nobody@example.com").returncode == 2
    assert PASSWORD not in gateway.log


def test_the_list_names_each_staff_members_clubs(gateway):
    added = users(gateway, "add", "--email", "ida@example.com", "--name", "Ida", "--role",
                  "staff", "--merchant", "STORE0000000001")
    assert added.returncode == 0, added.stderr
    # clubs are given in the portal (docs/portal.md, "Clubs"); here straight in the back office
    db = sqlite3.connect(gateway.workdir / "var" / "backoffice.sqlite3")
    with closing(db):
        db.execute("UPDATE operators SET clubs = 'north south' WHERE email = 'ida@example.com'")
        db.commit()
    listed = json.loads(users(gateway, "list", "--json").stdout)["operators"]
    assert [(o["email"], o["clubs"]) for o in listed] == [("ida@example.com", ["north", "south"])]
    assert "clubs north south" in users(gateway, "list").stdout
