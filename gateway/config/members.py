"""The `[members]` section (the card holders' member page, docs/members.md) and a program's
`[programs.<id>.brand]` (its name, colours and logo on that page).

    [members]
    enabled = true             # /m/ on the admin HTTP listener
    idle_minutes = 10          # a member session unused this long is over
    absolute_minutes = 60      # and any member session this long after its sign-in
    code_minutes = 10          # how long an e-mailed sign-in code is good for
    history_page = 20          # journal entries per page of a card's history

    [programs.gift.brand]
    name = "Acme Gift Card"    # the page's title and heading; default: "Your card"
    colour = "#0b3d91"         # the top bar's colour (#rrggbb); default: the plain page's
    accent = "#ffb400"         # buttons and links
    logo = "/etc/tillgate/acme.png"   # PNG, JPEG or SVG file, shown in the top bar

Sign-in attempts are limited by velocity rules of the event `member_signin` (scope `source` or
`card`, gateway/security/rules.py); a config with none gets DEFAULT_SIGNIN_RULES.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from gateway.config.rules import Rule
from gateway.config.sections import Section

_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
LOGO_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
              ".svg": "image/svg+xml"}
MAX_LOGO = 512 * 1024

# A person mistypes a PIN or a number a few times; a script tries thousands. Per source address
# (a shop's or an office's NAT may hold many members: 30 in 10 minutes), and per card whatever
# the address (10 in 10 minutes: the card's PIN locks after its program's pin_tries anyway).
DEFAULT_SIGNIN_RULES = (
    Rule(name="member-signin-source", scope="source", event="member_signin", window=600,
         max_count=30, action="decline"),
    Rule(name="member-signin-card", scope="card", event="member_signin", window=600,
         max_count=10, action="decline"),
)


@dataclass(frozen=True, slots=True)
class Brand:
    name: str = "Your card"
    colour: str | None = None
    accent: str | None = None
    logo: str | None = None  # a file path


@dataclass(frozen=True, slots=True)
class MembersConfig:
    enabled: bool = True
    idle_minutes: int = 10
    absolute_minutes: int = 60
    code_minutes: int = 10
    history_page: int = 20


def read_members(s: Section) -> MembersConfig:
    cfg = MembersConfig(
        enabled=s.boolean("enabled", True),
        idle_minutes=s.integer("idle_minutes", 10, minimum=1, maximum=24 * 60),
        absolute_minutes=s.integer("absolute_minutes", 60, minimum=1, maximum=7 * 24 * 60),
        code_minutes=s.integer("code_minutes", 10, minimum=1, maximum=60),
        history_page=s.integer("history_page", 20, minimum=1, maximum=200),
    )
    if cfg.idle_minutes > cfg.absolute_minutes:
        s.error("idle_minutes", "is longer than absolute_minutes")
    s.reject_unknown()
    return cfg


def read_brand(s: Section) -> Brand:
    colour = "a colour as #rrggbb"
    brand = Brand(
        name=s.string("name", "Your card", pattern=lambda v: 0 < len(v) <= 60,
                      what="1 to 60 characters"),
        colour=s.string("colour", None, pattern=_COLOUR.match, what=colour),
        accent=s.string("accent", None, pattern=_COLOUR.match, what=colour),
        logo=s.string("logo", None),
    )
    if brand.logo is not None:
        path = Path(brand.logo)
        if path.suffix.lower() not in LOGO_TYPES:
            s.error("logo", f"must be a {', '.join(LOGO_TYPES)} file (got {brand.logo!r})")
        elif not path.is_file():
            s.error("logo", f"no such file {brand.logo!r}")
        elif path.stat().st_size > MAX_LOGO:
            s.error("logo", f"is larger than {MAX_LOGO // 1024} KiB")
    s.reject_unknown()
    return brand
