"""The `[backoffice]` section: where the SQL back office lives (docs/backoffice.md).

    [backoffice]
    url = "postgresql://tillgate@db.example:5432/tillgate"   # default: SQLite in data_dir
    password_file = "/etc/tillgate/backoffice.password"      # or password_env; never in the url

With no `url`, the back office is the SQLite file `<data_dir>/backoffice.sqlite3`: nothing to
install, like the embedded Redis. A password written in the url is refused, as every secret in
the config is (gateway/config/security.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.config.sections import Section
from gateway.config.security import Secret, read_secret

SCHEMES = ("sqlite", "postgresql")


@dataclass(frozen=True, slots=True)
class BackofficeConfig:
    url: str | None = None  # None: SQLite at <data_dir>/backoffice.sqlite3
    password: Secret | None = None
    enabled: bool = True  # false: no feed consumer in `tillgate serve` (run `backoffice sync`)
    lag_alert_seconds: int = 900  # alert `backoffice_lag` when the feed's oldest entry is older


def read_backoffice(s: Section) -> BackofficeConfig:
    url = s.string("url", None)
    if url is not None:
        parts = urlsplit(url)
        scheme = parts.scheme.split("+", 1)[0]
        if scheme not in SCHEMES:
            s.error("url", f"must start with one of {', '.join(s + '://' for s in SCHEMES)} "
                           f"(got {parts.scheme + '://' if parts.scheme else url!r})")
        elif parts.password:
            s.error("url", "has a password in it; secrets are never written in the config, "
                           "use password_file or password_env")
    cfg = BackofficeConfig(url=url, password=read_secret(s, "password", required=False),
                           enabled=s.boolean("enabled", True),
                           lag_alert_seconds=s.integer("lag_alert_seconds", 900, minimum=1))
    s.reject_unknown()
    return cfg
