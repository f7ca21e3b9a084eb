"""The `[ecards]` section: e-gift cards sent by e-mail (docs/ecards.md).

    [ecards]
    enabled = true               # the delivery queue runs in `tillgate serve`
    member_url = "https://cards.example.com/m/"   # the link in each e-mail; default:
                                 # <[portal] base_url>/m/ (the member page)
    subject = "You have received a gift card"
    poll_seconds = 5             # how often the queue looks for due deliveries
    retry_first_seconds = 60     # a failed try (SMTP down, 4xx) is tried again after this,
    retry_max_seconds = 3600     # doubling up to this,
    max_attempts = 12            # and is marked failed after this many tries
    sending_lease_seconds = 300  # a send that has not finished this long after it began (the
                                 # gateway stopped mid-send) is tried again
    stuck_minutes = 30           # /healthz says the queue is stuck when a due delivery waits
                                 # longer than this

Per program, `ecard_load` ([programs.<id>]) says when an e-card's value is put on it:
"order" (activated at order time, the default) or "first_use" (issued as a pre-valued card
whose face value is the amount; the first till to meet it activates it).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config.sections import Section

DEFAULT_SUBJECT = "You have received a gift card"


@dataclass(frozen=True, slots=True)
class EcardsConfig:
    enabled: bool = True
    member_url: str | None = None
    subject: str = DEFAULT_SUBJECT
    poll_seconds: int = 5
    retry_first_seconds: int = 60
    retry_max_seconds: int = 3600
    max_attempts: int = 12
    sending_lease_seconds: int = 300
    stuck_minutes: int = 30


def read_ecards(s: Section) -> EcardsConfig:
    cfg = EcardsConfig(
        enabled=s.boolean("enabled", True),
        member_url=s.string("member_url", None,
                            pattern=lambda v: v.startswith(("http://", "https://")),
                            what="an http:// or https:// URL"),
        subject=s.string("subject", DEFAULT_SUBJECT,
                         pattern=lambda v: 0 < len(v) <= 200 and "\n" not in v,
                         what="one line of 1 to 200 characters"),
        poll_seconds=s.integer("poll_seconds", 5, minimum=1, maximum=3600),
        retry_first_seconds=s.integer("retry_first_seconds", 60, minimum=1, maximum=86400),
        retry_max_seconds=s.integer("retry_max_seconds", 3600, minimum=1, maximum=7 * 86400),
        max_attempts=s.integer("max_attempts", 12, minimum=1, maximum=1000),
        sending_lease_seconds=s.integer("sending_lease_seconds", 300, minimum=10,
                                        maximum=86400),
        stuck_minutes=s.integer("stuck_minutes", 30, minimum=1, maximum=7 * 24 * 60),
    )
    if cfg.retry_max_seconds < cfg.retry_first_seconds:
        s.error("retry_max_seconds", "is shorter than retry_first_seconds")
    s.reject_unknown()
    return cfg
