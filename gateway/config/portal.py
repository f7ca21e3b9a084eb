"""The `[portal]` section: the web portal for operators and staff (docs/portal.md).

    [portal]
    idle_minutes = 30          # a session unused this long is over
    absolute_hours = 12        # and any session this long after its login
    max_failures = 5           # wrong passwords or codes for one e-mail address before it locks
    lockout_minutes = 15       # how long a lock-out lasts (an alert is raised at each one)
    address_attempts = 30      # login attempts from one address per address_window_minutes
    address_window_minutes = 10
    code_minutes = 10          # how long an e-mailed login code is good for
    link_hours = 24            # how long a set-password link from `tillgate users` is good for
    base_url = "https://portal.example.com"   # what links in mail start with; default: [http]
    key_file = "/etc/tillgate/portal.key"     # encrypts TOTP secrets; default <data_dir>/portal.key
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config.sections import Section


@dataclass(frozen=True, slots=True)
class PortalConfig:
    enabled: bool = True
    idle_minutes: int = 30
    absolute_hours: int = 12
    max_failures: int = 5
    lockout_minutes: int = 15
    address_attempts: int = 30
    address_window_minutes: int = 10
    code_minutes: int = 10
    link_hours: int = 24
    base_url: str | None = None
    key_file: str | None = None


def read_portal(s: Section) -> PortalConfig:
    cfg = PortalConfig(
        enabled=s.boolean("enabled", True),
        idle_minutes=s.integer("idle_minutes", 30, minimum=1, maximum=24 * 60),
        absolute_hours=s.integer("absolute_hours", 12, minimum=1, maximum=7 * 24),
        max_failures=s.integer("max_failures", 5, minimum=1, maximum=100),
        lockout_minutes=s.integer("lockout_minutes", 15, minimum=1, maximum=24 * 60),
        address_attempts=s.integer("address_attempts", 30, minimum=1),
        address_window_minutes=s.integer("address_window_minutes", 10, minimum=1,
                                         maximum=24 * 60),
        code_minutes=s.integer("code_minutes", 10, minimum=1, maximum=60),
        link_hours=s.integer("link_hours", 24, minimum=1, maximum=7 * 24),
        base_url=s.string("base_url", None,
                          pattern=lambda v: v.startswith(("http://", "https://")),
                          what="an http:// or https:// URL"),
        key_file=s.string("key_file", None),
    )
    if cfg.idle_minutes > cfg.absolute_hours * 60:
        s.error("idle_minutes", "is longer than absolute_hours")
    s.reject_unknown()
    return cfg
