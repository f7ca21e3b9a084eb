"""The `[journal]` section: trimming card journals in Redis once the back office holds their
entries (gateway/ledger/trim.py, gateway/backoffice/trim.py; docs/scaling.md).

    [journal]
    trim = true              # serve trims every trim_interval seconds; default false
    keep_days = 60           # entries younger than this stay in Redis (never under 35 days)
    keep_entries = 50        # and at least this many after the checkpoint
    trim_interval = 3600

`tillgate journal trim` trims once, whatever `trim` says.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config.sections import Section


@dataclass(frozen=True, slots=True)
class JournalConfig:
    trim: bool = False  # false: serve never trims (the default keeps every entry in Redis)
    keep_days: int = 60
    keep_entries: int = 50  # the member page's and the portal's recent history come from here
    trim_interval: int = 3600  # seconds between the trimming rounds of serve


def read_journal(s: Section) -> JournalConfig:
    cfg = JournalConfig(trim=s.boolean("trim", False),
                        keep_days=s.integer("keep_days", 60, minimum=1),
                        keep_entries=s.integer("keep_entries", 50, minimum=1),
                        trim_interval=s.integer("trim_interval", 3600, minimum=1))
    s.reject_unknown()
    return cfg
