"""The back office's tables (SQLAlchemy Core). Alembic's migrations create them; this module
is what queries are written against, and tests/test_backoffice_schema.py checks the two agree.

Money and points are BigInteger minor units, never floats or SQL decimals; times are epoch
seconds (BigInteger) as in the journal, so a report's date range is one indexed integer range
on every database.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

# Named constraints and indexes: migrations on PostgreSQL and SQLite can then refer to them.
metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

# One row per journal entry (gateway/ledger/journal.py), keyed like the journal itself: the
# card's key id and the entry's stream id. Inserting a row that exists does nothing, which is
# what makes ingesting the feed idempotent (a crash between the SQL commit and the feed's
# acknowledgement ingests those entries again, harmlessly).
journal_entries = Table(
    "journal_entries", metadata,
    Column("card_id", String(32), primary_key=True),   # hash of the number (ledger/cards.py)
    Column("entry_id", String(40), primary_key=True),  # the stream id in {c:<id>}:j
    Column("seq", Integer, nullable=False),            # the card's change counter `n`
    Column("op", String(32), nullable=False),
    Column("card_mask", String(32), nullable=False),   # first 6 / last 4, never the number
    Column("program", String(32), nullable=True),
    Column("dv", BigInteger, nullable=False),          # change of money, minor units, signed
    Column("dp", BigInteger, nullable=False),          # change of points, signed
    Column("bal", BigInteger, nullable=False),         # balance after the change
    Column("pts", BigInteger, nullable=False),         # points after the change
    # Text: an operator's change carries `token:<id>` here, longer than any till's (0003)
    Column("terminal", Text, nullable=False),
    Column("merchant", Text, nullable=False),
    Column("request_key", Text, nullable=False),
    Column("t", BigInteger, nullable=False),           # epoch seconds
    Column("undo", String(40), nullable=True),         # entry id this one undoes
    # staff member (20 characters on the wire), or `token:<id>` / `cli:<user>` of an operator
    Column("opid", String(64), nullable=True),
    Column("reward", String(20), nullable=True),       # reward of a claim or its undo (`rw`)
    Column("tier", String(32), nullable=True),          # a `tier` entry: the card's new tier
    Column("tier_from", String(32), nullable=True),     # and the one it had (0008)
    # Reports (migration 0005, docs/backoffice.md "Reports"): a day range is one range of the
    # first, and summaries by day, merchant, terminal, op or program read that index alone; the
    # second finds a card's last entry by a date (liability) and its entries of a period.
    Index(None, "t", "merchant", "terminal", "op", "program", "dv", "dp"),
    Index(None, "card_id", "t", "seq"),
    Index("ix_journal_entries_opid_t", "opid", "t"),   # a staff member's recent entries (0007)
)

# The last known state of each card, as the journal told it: balance and points are those of
# the card's entry with the highest `seq`, so replaying an entry never changes them twice.
cards = Table(
    "cards", metadata,
    Column("card_id", String(32), primary_key=True),
    Column("card_mask", String(32), nullable=False),
    Column("program", String(32), nullable=True),
    Column("balance", BigInteger, nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("seq", Integer, nullable=False),            # seq of the entry these figures are from
    Column("first_t", BigInteger, nullable=False),
    Column("last_t", BigInteger, nullable=False),
)

# Per-day summaries of the journal (gateway/backoffice/summaries.py, migration 0013), kept by
# the feed in the ingest's transaction for the entries it inserted, so that a report over a
# year reads a few thousand rows instead of a million. A day is the program's local day (the
# zone in summary_zones); "" stands for no program, no opid, and (card_stretches,
# active_counts) every merchant at once. Sums are per operation: counts, money, points and
# reward claims.
def _sums() -> tuple[Column, ...]:
    return (Column("entries", BigInteger, nullable=False),
            Column("dv", BigInteger, nullable=False),        # sum of the entries' dv
            Column("dp", BigInteger, nullable=False),        # sum of their dp
            Column("rewards", BigInteger, nullable=False))   # entries naming a reward


day_sums = Table(
    "day_sums", metadata,
    Column("program", String(32), primary_key=True),
    Column("day", Integer, primary_key=True),             # local days since 1970-01-01
    Column("merchant", Text, primary_key=True),
    Column("op", String(32), primary_key=True),
    *_sums(),
)

# The same by staff member (the entries with an opid: the `staff` report).
staff_day_sums = Table(
    "staff_day_sums", metadata,
    Column("program", String(32), primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("merchant", Text, primary_key=True),
    Column("opid", String(64), primary_key=True),
    Column("op", String(32), primary_key=True),
    *_sums(),
)

# The cards each staff member served on a day (the `staff` report's members_served: distinct
# cards over any range of days).
staff_card_days = Table(
    "staff_card_days", metadata,
    Column("program", String(32), primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("opid", String(64), primary_key=True),
    Column("merchant", Text, primary_key=True),
    Column("card_id", String(32), primary_key=True),
    sqlite_with_rowid=False,
)

# Active cards, exactly: a card's first active entry in a day, week or month (`kind` d, w, m;
# `key` as in reports/buckets.py), at one merchant and at all ("") ...
card_stretches = Table(
    "card_stretches", metadata,
    Column("program", String(32), primary_key=True),
    Column("kind", String(1), primary_key=True),
    Column("key", Integer, primary_key=True),
    Column("merchant", Text, primary_key=True),
    Column("card_id", String(32), primary_key=True),
    sqlite_with_rowid=False,
)

# ... and the number of such cards, counted when a card_stretches row is inserted.
active_counts = Table(
    "active_counts", metadata,
    Column("program", String(32), primary_key=True),
    Column("kind", String(1), primary_key=True),
    Column("key", Integer, primary_key=True),
    Column("merchant", Text, primary_key=True),
    Column("cards", BigInteger, nullable=False),
)

# The merchants a card has an entry at: a merchant manager's customers are those holding a card
# with an entry at their merchant, as the reports scope a manager (the portal's customers page).
card_merchants = Table(
    "card_merchants", metadata,
    Column("merchant", Text, primary_key=True),
    Column("card_id", String(32), primary_key=True),
    sqlite_with_rowid=False,
)

# The zone each program's summaries count days in: set by the first entry of the program
# summarised (its configured `timezone`). A report asked in another zone reads the journal.
summary_zones = Table(
    "summary_zones", metadata,
    Column("program", String(32), primary_key=True),
    Column("zone", String(64), nullable=False),
)

# Customer types group loyalty accounts for reports ("by customer type") and give a new
# customer's cards a default program.
customer_types = Table(
    "customer_types", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("default_program", String(32), nullable=True),
    Column("description", String(500), nullable=False, server_default=""),
)

# A customer is a person (or firm) who holds cards. `code` is the operator's own reference
# (the key of imports and exports); `status` inactive makes the ledger answer their cards as
# suspended (the ledger sees it through the card's state in Redis, kept in step by the back
# office, so the check is atomic with the operation).
customers = Table(
    "customers", metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(32), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("email", String(254), nullable=True, index=True),
    Column("phone", String(32), nullable=True),
    Column("customer_type_id", ForeignKey("customer_types.id"), nullable=True),
    Column("status", String(8), nullable=False, server_default="active"),  # active | inactive
    Column("consent", Boolean, nullable=False, server_default="0"),  # may be contacted
    Column("consent_t", BigInteger, nullable=True),  # when consent was last given or withdrawn
    Column("notes", Text, nullable=False, server_default=""),
    Column("created_t", BigInteger, nullable=False),
)

# Which customer holds a card: at most one per card, any number of cards per customer. Its own
# table (not a column of `cards`) so a card can be registered before the feed has told of it.
card_holders = Table(
    "card_holders", metadata,
    Column("card_id", String(32), primary_key=True),
    Column("customer_id", ForeignKey("customers.id"), nullable=False, index=True),
    Column("card_mask", String(32), nullable=False),
    Column("program", String(32), nullable=True),
    Column("linked_t", BigInteger, nullable=False),
    Column("linked_by", String(64), nullable=False),  # operator, token or "member" (self-service)
)

# The people who log into the web portal (gateway/web/portal, docs/portal.md). `email` is kept lower
# case (the login name). `password_hash` is an argon2id PHC string, NULL until the operator has
# set one through the one-time link `tillgate users add` prints. `totp_secret` is encrypted
# (Fernet, key in the data directory or [portal] key_file): a copy of the database alone does
# not give anyone the second factor. `totp_last_step` is the RFC 6238 time step of the last code
# accepted: a code is taken only for a later step, which refuses a replayed code atomically
# (one conditional UPDATE). `session_gen` is the "logout everywhere" generation: every session
# carries the value it was opened with, and a session with an older one is over.
operators = Table(
    "operators", metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("password_hash", String(200), nullable=True),
    Column("role", String(16), nullable=False),  # head_office | merchant_manager | staff
    Column("merchant", String(16), nullable=True, index=True),  # managers and staff only
    Column("status", String(8), nullable=False, server_default="active"),  # active | disabled
    Column("second_factor", String(8), nullable=False, server_default="totp"),  # totp | email
    Column("totp_secret", Text, nullable=True),
    Column("totp_last_step", BigInteger, nullable=True),
    Column("session_gen", Integer, nullable=False, server_default="0"),
    Column("created_t", BigInteger, nullable=False),
    Column("password_t", BigInteger, nullable=True),  # when the password was last set
    Column("last_login_t", BigInteger, nullable=True),
    # the [clubs.<name>] they belong to, space-separated (config/clubs.py; migration 0009)
    Column("clubs", String(1000), nullable=False, server_default=""),
)

# E-gift cards ordered for a recipient and their e-mail delivery (gateway/issuance/ecards.py,
# docs/ecards.md). One row per order, keyed by the order's tag (its client and Idempotency-Key),
# so asking again finds the row instead of adding one. The row is the durable delivery queue:
# `state` queued -> sending -> sent, or back to queued with a later `next_t` after a failed try,
# or failed (a permanent refusal, or max_attempts). A try is claimed by one conditional UPDATE
# (queued -> sending, with `lease_t`), so two gateways never send the same row at once. The card
# number is kept sealed (Fernet, the portal's key) for resends; the PIN only until delivered.
ecards = Table(
    "ecards", metadata,
    Column("id", String(32), primary_key=True),         # the order tag (issuance/realtime.py)
    Column("client", String(64), nullable=False),        # token:<id>, portal:<operator>, cli:...
    Column("program", String(32), nullable=False),
    Column("amount", BigInteger, nullable=False),        # minor units (points for loyalty)
    Column("load", String(12), nullable=False),          # order | first_use (program ecard_load)
    Column("card_id", String(32), nullable=False),       # hash of the number (ledger/cards.py)
    Column("card_mask", String(32), nullable=False),
    Column("card_sealed", Text, nullable=False),
    Column("pin_sealed", Text, nullable=True),           # NULL once delivered, or no PIN
    Column("recipient_name", String(200), nullable=False),
    Column("recipient_email", String(254), nullable=False),
    Column("sender_name", String(200), nullable=False),
    Column("message", Text, nullable=False, server_default=""),
    Column("deliver_t", BigInteger, nullable=False),     # not before (a birthday), epoch s
    Column("due_t", BigInteger, nullable=False),         # when the e-mail in hand was due:
                                                         # deliver_t, or a resend's time
    Column("state", String(8), nullable=False),          # queued | sending | sent | failed
    Column("next_t", BigInteger, nullable=False),        # next try, epoch s
    Column("lease_t", BigInteger, nullable=True),        # a try in `sending` ends by then
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("sends", Integer, nullable=False, server_default="0"),  # deliveries made (resends)
    Column("last_error", Text, nullable=True),
    Column("created_t", BigInteger, nullable=False),
    Column("sent_t", BigInteger, nullable=True),
    Index(None, "state", "next_t"),                      # the queue's due rows
    Index(None, "created_t"),                            # the operators' list, newest first
)
