"""Typed configuration of tillgate, read from TOML (HOST-SPEC section 6 is the default file).

`load_config(path)` returns a `Config` or raises `ConfigError` carrying every problem of the file,
each named by its path (`programs.gift.max_balance: must be a positive integer`). Relative paths
(the data directory, TLS files) are relative to the working directory, as HOST-SPEC 5 says.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.config.backoffice import BackofficeConfig, read_backoffice
from gateway.config.cardrules import program_for_card
from gateway.config.clubs import Club, compile_clubs, read_clubs
from gateway.config.defaults import DEFAULT_CONFIG_PATH, is_profile_name, shipped_profiles
from gateway.config.ecards import EcardsConfig, read_ecards
from gateway.config.journal import JournalConfig, read_journal
from gateway.config.members import Brand, MembersConfig, read_brand, read_members
from gateway.config.portal import PortalConfig, read_portal
from gateway.config.promotions import Promotion, read_promotions
from gateway.config.redisurl import SENTINEL_SCHEME, BadRedisURL, is_sentinel, parse_sentinel_url
from gateway.config.rules import Rule, read_rule, rule_problems
from gateway.config.sections import ConfigError, Section
from gateway.config.security import (
    AlertsConfig,
    ImportsConfig,
    SecurityConfig,
    SMTPConfig,
    read_alerts,
    read_email,
    read_imports,
    read_security,
)

CLUSTER_SCHEME = "redis+cluster://"  # redis.url of a Redis Cluster: any nodes, as seeds
_TERMINAL_ID = re.compile(r"^[ -~]{1,8}$")
_MERCHANT_ID = re.compile(r"^[ -~]{1,15}$")
_CURRENCY = re.compile(r"^\d{3}$")
_DIGITS = re.compile(r"^\d+$")
_TIER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,20}$")


@dataclass(frozen=True, slots=True)
class Reward:
    id: str
    name: str
    cost: int  # points


@dataclass(frozen=True, slots=True)
class Tier:
    """A card rank of a loyalty program (docs/ledger.md "Tiers"): reached at `threshold` points
    earned (lifetime, or within the program's `tier_window_days`), earning `points_per_unit`."""

    name: str
    threshold: int
    points_per_unit: int


@dataclass(frozen=True, slots=True)
class Program:
    """A card programme: what its numbers look like and the rules its operations obey."""

    id: str
    kind: str  # "gift" (money) or "loyalty" (points)
    currency: str  # ISO 4217 numeric; loyalty programs keep one for field 49 checks
    card_length_min: int
    card_length_max: int
    prefix: str = ""
    range_low: str | None = None  # inclusive, same length as range_high; instead of a prefix
    range_high: str | None = None
    luhn: bool = True
    alphanumeric: bool = False
    face_values: tuple[int, ...] = ()  # pre-valued cards: allowed face values, minor units
    max_balance: int = 0  # 0 = no limit
    max_transaction: int = 0  # single transaction limit, 0 = none
    min_activation: int = 0  # activation load may be 0 where this is 0
    reload: bool = True
    partial_approval: bool = True
    pin_length: int = 0  # 0 = no PIN
    pin_tries: int = 3
    pin_lock_seconds: int = 86400  # 0 = locked until an operator unlocks
    invoice_required: bool = False
    points_per_unit: int = 0  # points earned per `unit` minor units of purchase
    unit: int = 100
    rounding: str = "floor"  # floor, half_up, ceil
    min_points: int = 0  # per purchase: below this, nothing is earned
    max_points: int = 0  # per purchase cap, 0 = none
    points_only: bool = False
    rewards: tuple[Reward, ...] = ()
    promotions: tuple[Promotion, ...] = ()  # gateway/config/promotions.py
    expiry_days: int = 0  # card expires this many days after activation; 0 = never
    merchants: tuple[str, ...] = ()  # a club: only these merchants; empty = every merchant
    # compiled from `merchants` and the [clubs] naming this program (gateway/config/clubs.py):
    club_terminals: frozenset[str] | None = None  # the tills admitted; None = every till
    club_merchants: frozenset[str] | None = None  # merchants of any of its clubs; None = all
    clubs: tuple[tuple[str, frozenset[str]], ...] = ()  # named clubs: (name, their merchants)
    uniform_decline: bool = False  # answer unknown and inactive cards alike (enumeration defence)
    # loyalty in depth (docs/ledger.md "Points lots and expiry", "Tiers", "Combined cards")
    points_validity_days: int = 0  # a day's points expire at the end of day + this; 0 = never
    timezone: str = "UTC"  # the program's day (lots, expiry) is a day of this zone
    tiers: tuple[Tier, ...] = ()  # lowest first; the first has threshold 0
    tier_window_days: int = 0  # thresholds on points earned in this many days; 0 = lifetime
    tier_review_days: int = 30  # a tier is held at least this long, then re-evaluated (down)
    convert_points: int = 0  # combined card: every this many points become...
    convert_value: int = 0  # ...this many minor units of balance, in the earn itself; 0 = off
    ecard_load: str = "order"  # e-cards: "order" (activated when ordered) or "first_use"
    brand: Brand = Brand()  # the member page's look for this program's cards (config/members.py)

    @property
    def pin_required(self) -> bool:
        return self.pin_length > 0

    @property
    def is_loyalty(self) -> bool:
        return self.kind == "loyalty"

    @property
    def numbers_can_be_drawn(self) -> bool:
        """False for alphanumeric numbers with Luhn or a range, which no generator draws
        (protocols.carddata.generate_card_number): such cards come in by `cards import`."""
        return not (self.alphanumeric and (self.luhn or self.range_low is not None))

    def reward(self, reward_id: str) -> Reward | None:
        for reward in self.rewards:
            if reward.id == reward_id:
                return reward
        return None


@dataclass(frozen=True, slots=True)
class Merchant:
    id: str
    name: str
    terminals: tuple[str, ...]
    email: str | None = None
    reseller: str | None = None
    # The terminal id the portal's transactions of this merchant carry (docs/portal.md
    # "Online transaction entry"): a terminal of its own, not a till's, so the terminal's
    # velocity rules, `terminals disable` and the reports tell the portal apart. None: the
    # merchant's people cannot send transactions from the portal.
    portal_terminal: str | None = None


@dataclass(frozen=True, slots=True)
class TLSConfig:
    cert: str
    key: str
    ca: str | None = None  # when set, clients must present a certificate signed by it


@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    protocol: str  # iso8583 | line
    transport: str  # tcp | serial
    host: str = "127.0.0.1"
    port: int = 0
    device: str | None = None
    baud: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1
    flow: str = "none"  # none | rtscts | xonxoff
    framing: str = "len2b"  # iso8583 over tcp: len2b | len4a | tpdu
    bitmap: str = "ascii"  # ascii | binary
    max_frame: int = 4096
    idle_timeout: int = 300
    frame_timeout: int = 30  # seconds from a frame's first byte to its last; 0 = no deadline
    max_in_flight: int = 1024
    max_connections: int = 1024  # TCP: open connections on this listener; 0 = no cap
    max_connections_per_source: int = 256  # TCP: from one source address; 0 = no cap
    backlog: int = 1024  # TCP: the kernel's queue of connections not yet accepted
    ack: bool = True  # line protocol ACK/NAK
    retries: int = 3
    retry_interval: float = 3.0
    mask_pan: bool = True  # responses echo field 2 masked; false: leave field 2 out (never whole)
    tls: TLSConfig | None = None


@dataclass(frozen=True, slots=True)
class HTTPConfig:
    host: str = "127.0.0.1"
    port: int = 8580
    tls: TLSConfig | None = None


@dataclass(frozen=True, slots=True)
class RedisConfig:
    url: str | None = None  # None = embedded redis-server under the data directory
    pool_size: int = 64
    timeout: float = 5.0
    server_binary: str | None = None  # embedded only: a redis-server to use instead of PATH
    # Durable acknowledgement (docs/scaling.md): a batch's answers wait for this many replicas
    # to have its writes (one WAIT per batch), at most acknowledge_timeout_ms; 0 = no waiting.
    acknowledge_after_replicas: int = 0
    acknowledge_timeout_ms: int = 1000
    # Request records in the packed layout (docs/ledger.md "Request records"): None ("auto")
    # writes the layout the ledger is marked with (gateway/ledger/recordlayout.py: packed for a
    # ledger this version started); true or false overrides the mark for this gateway.
    packed_records: bool | None = None


@dataclass(frozen=True, slots=True)
class Product:
    """A reseller's card product: the UPC on the package, its program and what it may load."""

    upc: str
    program: str
    denomination: int = 0  # fixed face value in minor units; 0 = variable between min and max
    min: int = 0
    max: int = 0

    def admits(self, amount: int) -> bool:
        if self.denomination:
            return amount == self.denomination
        return self.min <= amount <= (self.max or amount)


@dataclass(frozen=True, slots=True)
class Reseller:
    """A POSA network (config/resellers.example.toml): its catalogue and its rules."""

    id: str
    name: str
    products: dict[str, Product]
    require_upc: bool = True
    rrn_retransmission: bool = True
    reversal_window: int = 86400


@dataclass(frozen=True, slots=True)
class Config:
    path: str
    data_dir: Path
    log_level: str
    redis: RedisConfig
    http: HTTPConfig
    listeners: tuple[Listener, ...]
    merchants: dict[str, Merchant]
    programs: dict[str, Program]
    rules: tuple[Rule, ...] = ()
    resellers: dict[str, Reseller] = field(default_factory=dict)
    clubs: dict[str, Club] = field(default_factory=dict)  # compiled into programs as well
    reversal_window: int = 86400
    shutdown_grace: float = 10.0
    points_sweep_interval: int = 3600  # seconds between points sweeps in serve; 0 = none
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    email: SMTPConfig = field(default_factory=SMTPConfig)
    imports: ImportsConfig = field(default_factory=ImportsConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    backoffice: BackofficeConfig = field(default_factory=BackofficeConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    portal: PortalConfig = field(default_factory=PortalConfig)
    ecards: EcardsConfig = field(default_factory=EcardsConfig)
    members: MembersConfig = field(default_factory=MembersConfig)
    raw: dict = field(default_factory=dict, repr=False)
    # SHA-256 (hex) of the file's bytes as read: `sha256sum FILE` tells which config a gateway
    # runs (/healthz, gateway/reloader.py). Not a setting: two configs differ by their settings.
    digest: str = field(default="", compare=False)

    terminals: dict[str, Merchant] = field(default_factory=dict, repr=False)  # terminal -> owner

    def merchant_of_terminal(self, terminal: str) -> Merchant | None:
        return self.terminals.get(terminal)

    def program_of_card(self, card: str) -> Program | None:
        """The program whose number rules admit this card, or None (HOST-SPEC 4: then 14)."""
        return program_for_card(self.programs.values(), card)




def load_config(path: str | os.PathLike[str] = DEFAULT_CONFIG_PATH) -> Config:
    """Read and validate a config file; raise ConfigError listing every problem."""
    path = str(path)
    try:
        with open(path, "rb") as f:
            content = f.read()
        data = tomllib.load(io.BytesIO(content))  # the bytes hashed are the bytes parsed
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: not valid TOML: {e}"]) from None
    return replace(parse_config(data, path), digest=hashlib.sha256(content).hexdigest())


def parse_config(data: dict, path: str = "<config>") -> Config:
    errors: list[str] = []
    top = Section(data, "", errors)

    gw = top.table("gateway")
    data_dir = gw.string("data_dir", "var")
    log_level = gw.string("log_level", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    reversal_window = gw.integer("reversal_window", 86400, minimum=1)
    shutdown_grace = gw.integer("shutdown_grace", 10, minimum=0)
    points_sweep_interval = gw.integer("points_sweep_interval", 3600, minimum=0)
    gw.reject_unknown()

    redis_cfg = _read_redis(top.table("redis"))
    http_cfg = _read_http(top.table("http"))
    listeners = tuple(_read_listener(s) for s in top.array_of_tables("listeners"))
    _check_unique([lst.name for lst in listeners], "listeners", "name", errors)
    _check_unique([f"{lst.host}:{lst.port}" for lst in listeners if lst.transport == "tcp"]
                  + [f"{http_cfg.host}:{http_cfg.port}"], "listeners", "host:port", errors)

    merchants = {mid: _read_merchant(mid, s) for mid, s in top.tables("merchants").items()}
    seen_terminals: dict[str, str] = {}
    for merchant in merchants.values():
        for term in merchant.terminals:
            if term in seen_terminals:
                errors.append(f"merchants.{merchant.id}.terminals: terminal {term!r} already "
                              f"belongs to merchant {seen_terminals[term]!r}")
            seen_terminals[term] = merchant.id
    for merchant in merchants.values():
        portal_term = merchant.portal_terminal
        if portal_term is None:
            continue
        if portal_term in seen_terminals:
            errors.append(f"merchants.{merchant.id}.portal_terminal: terminal {portal_term!r} "
                          f"already belongs to merchant {seen_terminals[portal_term]!r}")
        seen_terminals[portal_term] = merchant.id

    programs = {pid: _read_program(pid, s) for pid, s in top.tables("programs").items()}
    for program in programs.values():
        for mid in program.merchants:
            if mid not in merchants:
                errors.append(f"programs.{program.id}.merchants: unknown merchant {mid!r}")
        for i, promotion in enumerate(program.promotions):
            for mid in sorted(promotion.merchants - set(merchants)):
                errors.append(f"programs.{program.id}.promotions[{i}].merchants: unknown "
                              f"merchant {mid!r}")
    _check_program_overlap(programs, errors)
    merchant_terminals = {m.id: m.terminals for m in merchants.values()}
    clubs = read_clubs(top, merchant_terminals, set(programs))
    programs = compile_clubs(programs, clubs, merchant_terminals)

    rules = tuple(read_rule(s) for s in top.array_of_tables("rules"))
    resellers = {rid: _read_reseller(rid, s, programs)
                 for rid, s in top.tables("resellers").items()}
    for merchant in merchants.values():
        if merchant.reseller and merchant.reseller not in resellers:
            errors.append(f"merchants.{merchant.id}.reseller: no reseller "
                          f"{merchant.reseller!r} under [resellers]")
    errors.extend(rule_problems(rules))
    alerts = read_alerts(top.table("alerts"))
    email_section = top.table("email")
    email = read_email(email_section)
    if not email_section.data:  # no SMTP relay configured: mail goes to a maildir (mailer.py)
        email = replace(email, maildir=str(Path(data_dir) / "mail"))
    imports = read_imports(top.table("imports"))
    security = read_security(top.table("security"), set(seen_terminals), set(merchants))
    backoffice = read_backoffice(top.table("backoffice"))
    journal = read_journal(top.table("journal"))
    portal = read_portal(top.table("portal"))
    ecards = read_ecards(top.table("ecards"))
    members = read_members(top.table("members"))
    top.reject_unknown()

    if errors:
        raise ConfigError(errors)
    return Config(
        path=path, data_dir=Path(data_dir), log_level=log_level, redis=redis_cfg, http=http_cfg,
        listeners=listeners, merchants=merchants, programs=programs, rules=rules,
        resellers=resellers, clubs=clubs,
        reversal_window=reversal_window, shutdown_grace=float(shutdown_grace), raw=data,
        points_sweep_interval=points_sweep_interval,
        alerts=alerts, email=email, imports=imports, security=security, backoffice=backoffice,
        journal=journal,
        portal=portal, ecards=ecards, members=members,
        terminals={t: m for m in merchants.values()
                   for t in (*m.terminals, *((m.portal_terminal,) if m.portal_terminal else ()))},
    )


def _read_tls(s: Section) -> TLSConfig | None:
    if not s.data:
        return None
    tls = TLSConfig(cert=s.string("cert"), key=s.string("key"), ca=s.string("ca", None))
    for key in ("cert", "key", "ca"):
        value = getattr(tls, key)
        if value and not os.path.exists(value):
            s.error(key, f"no such file {value!r}")
    s.reject_unknown()
    return tls


def _is_redis_url(url: str) -> bool:
    if url.startswith(CLUSTER_SCHEME):  # Redis Cluster: seed nodes (gateway/ledger/clusterstore.py)
        parts = url[len(CLUSTER_SCHEME):].rstrip("/").split(",")
        return all(re.fullmatch(r"[^:,/@\s]+:\d{1,5}", p.strip()) for p in parts)
    return url.startswith(("redis://", "rediss://", "unix://", SENTINEL_SCHEME))


def _read_redis(s: Section) -> RedisConfig:
    url = s.string("url", None, pattern=_is_redis_url,
                   what="a redis://, rediss:// or unix:// URL, redis+sentinel://HOST:PORT"
                        "[,HOST:PORT...]/PRIMARY or redis+cluster://HOST:PORT[,HOST:PORT...]")
    if url and is_sentinel(url):
        try:
            parse_sentinel_url(url)
        except BadRedisURL as e:
            s.error("url", str(e))
    cfg = RedisConfig(
        url=url or None,
        pool_size=s.integer("pool_size", 64, minimum=1),
        timeout=float(s.integer("timeout", 5, minimum=1)),
        server_binary=s.string("server_binary", None),
        acknowledge_after_replicas=s.integer("acknowledge_after_replicas", 0, minimum=0),
        acknowledge_timeout_ms=s.integer("acknowledge_timeout_ms", 1000, minimum=1),
        packed_records=s.auto_boolean("packed_records"),
    )
    if cfg.acknowledge_after_replicas and not cfg.url:
        s.error("acknowledge_after_replicas", "needs redis.url: the embedded redis-server has "
                "no replicas")
    if (isinstance(cfg.acknowledge_timeout_ms, int)
            and cfg.acknowledge_timeout_ms >= cfg.timeout * 1000):
        # the pipe gives up on a reply after redis.timeout: WAIT must answer before that
        s.error("acknowledge_timeout_ms", f"must be less than redis.timeout ({cfg.timeout:g} s)")
    s.reject_unknown()
    return cfg


def _read_http(s: Section) -> HTTPConfig:
    cfg = HTTPConfig(host=s.string("host", "127.0.0.1"), port=s.integer("port", 8580, minimum=0,
                                                                   maximum=65535),
                     tls=_read_tls(s.table("tls")))
    s.reject_unknown()
    return cfg


def _read_listener(s: Section) -> Listener:
    protocol = s.string("protocol", choices=("iso8583", "line"))
    transport = s.string("transport", "tcp", choices=("tcp", "serial"))
    kw: dict = dict(
        name=s.string("name"), protocol=protocol, transport=transport,
        framing=s.string("framing", "len2b", choices=("len2b", "len4a", "tpdu")),
        bitmap=s.string("bitmap", "ascii", choices=("ascii", "binary")),
        max_frame=s.integer("max_frame", 4096, minimum=64, maximum=65535),
        idle_timeout=s.integer("idle_timeout", 300, minimum=0),
        frame_timeout=s.integer("frame_timeout", 30, minimum=0),
        max_in_flight=s.integer("max_in_flight", 1024, minimum=1),
        ack=s.boolean("ack", True),
        retries=s.integer("retries", 3, minimum=0),
        retry_interval=float(s.integer("retry_interval", 3, minimum=1)),
        mask_pan=s.boolean("mask_pan", True),
    )
    if transport == "serial":
        if protocol == "iso8583" and kw["bitmap"] == "binary":
            # STX/ETX frames cannot carry the bytes 02 and 03 that a binary bitmap may hold.
            s.error("bitmap", "serial lines frame with STX/ETX: use the ascii bitmap")
        kw.update(
            device=s.string("device"),
            baud=s.integer("baud", 9600, minimum=50),
            bytesize=s.integer("bytesize", 8, minimum=5, maximum=8),
            parity=s.string("parity", "N", choices=("N", "E", "O", "M", "S")),
            stopbits=s.integer("stopbits", 1, minimum=1, maximum=2),
            flow=s.string("flow", "none", choices=("none", "rtscts", "xonxoff")),
        )
    else:
        kw.update(host=s.string("host", "127.0.0.1"),
                  port=s.integer("port", minimum=0, maximum=65535),
                  max_connections=s.integer("max_connections", 1024, minimum=0),
                  max_connections_per_source=s.integer("max_connections_per_source", 256,
                                                       minimum=0),
                  backlog=s.integer("backlog", 1024, minimum=1, maximum=65535),
                  tls=_read_tls(s.table("tls")))
    s.reject_unknown()
    return Listener(**kw)


def _read_merchant(mid: str, s: Section) -> Merchant:
    if not _MERCHANT_ID.match(mid):
        s.error("", "merchant id must be 1 to 15 printable characters")
    terminals = s.array("terminals")
    for term in terminals:
        if not _TERMINAL_ID.match(term):
            s.error("terminals", f"terminal id {term!r} must be 1 to 8 printable characters")
    portal_terminal = s.string("portal_terminal", None)
    if portal_terminal is not None and not _TERMINAL_ID.match(portal_terminal):
        s.error("portal_terminal", f"terminal id {portal_terminal!r} must be 1 to 8 printable "
                                   f"characters")
    merchant = Merchant(id=mid, name=s.string("name", mid), terminals=tuple(terminals),
                        email=s.string("email", None), reseller=s.string("reseller", None),
                        portal_terminal=portal_terminal)
    s.reject_unknown()
    return merchant


def _read_program(pid: str, s: Section) -> Program:
    kind = s.string("kind", choices=("gift", "loyalty"))
    length = s._get("card_length", object())
    lmin = lmax = 0
    if isinstance(length, int) and not isinstance(length, bool):
        lmin = lmax = length
    elif (isinstance(length, list) and len(length) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) for v in length)):
        lmin, lmax = length
    else:
        s.error("card_length", "must be an integer or [min, max] from 8 to 19")
    if (lmin or lmax) and not (8 <= lmin <= lmax <= 19):
        s.error("card_length", "must be an integer or [min, max] from 8 to 19")
    prefix = s.string("prefix", "")
    alnum = s.boolean("alphanumeric", False)
    if prefix and not alnum and not _DIGITS.match(prefix):
        s.error("prefix", "must be digits")
    card_range = s.array("range", [])
    rlow = rhigh = None
    if card_range:
        if (len(card_range) != 2 or not all(_DIGITS.match(v) for v in card_range)
                or len(card_range[0]) != len(card_range[1]) or card_range[0] > card_range[1]):
            s.error("range", "must be [low, high]: two digit strings of one length, low <= high")
        else:
            rlow, rhigh = card_range
            if not (lmin <= len(rlow) <= lmax):
                s.error("range", "numbers must have the program's card_length")
        if prefix:
            s.error("range", "give a prefix or a range, not both")
    if prefix and lmax and len(prefix) >= lmax:
        s.error("prefix", "must be shorter than card_length")
    tiers = _read_tiers(s)
    rewards = []
    for r in s.array_of_tables("rewards"):
        rewards.append(Reward(id=r.string("id"), name=r.string("name", ""),
                              cost=r.integer("cost", minimum=1)))
        r.reject_unknown()
    pin_length = s.integer("pin_length", 0, minimum=0, maximum=12)
    program = Program(
        id=pid, kind=kind or "gift", currency=s.string("currency", "840", pattern=_CURRENCY.match,
                                                   what="an ISO 4217 numeric code"),
        card_length_min=lmin, card_length_max=lmax, prefix=prefix, range_low=rlow,
        range_high=rhigh, luhn=s.boolean("luhn", True), alphanumeric=alnum,
        face_values=tuple(s.array("face_values", [], item=int)),
        max_balance=s.integer("max_balance", 0, minimum=0),
        max_transaction=s.integer("max_transaction", 0, minimum=0),
        min_activation=s.integer("min_activation", 0, minimum=0),
        reload=s.boolean("reload", True),
        partial_approval=s.boolean("partial_approval", True),
        pin_length=pin_length,
        pin_tries=s.integer("pin_tries", 3, minimum=1),
        pin_lock_seconds=s.integer("pin_lock_seconds", 86400, minimum=0),
        invoice_required=s.boolean("invoice_required", False),
        points_per_unit=s.integer("points_per_unit", 0, minimum=0),
        unit=s.integer("unit", 100, minimum=1),
        rounding=s.string("rounding", "floor", choices=("floor", "half_up", "ceil")),
        min_points=s.integer("min_points", 0, minimum=0),
        max_points=s.integer("max_points", 0, minimum=0),
        points_only=s.boolean("points_only", False),
        rewards=tuple(rewards),
        promotions=read_promotions(s, kind or "gift"),
        expiry_days=s.integer("expiry_days", 0, minimum=0),
        merchants=tuple(s.array("merchants", [])),
        uniform_decline=s.boolean("uniform_decline", False),
        points_validity_days=s.integer("points_validity_days", 0, minimum=0, maximum=36500),
        timezone=s.string("timezone", "UTC", pattern=_is_timezone,
                          what="an IANA time zone such as UTC or Europe/Paris"),
        tiers=tiers,
        tier_window_days=s.integer("tier_window_days", 0, minimum=0, maximum=3650),
        tier_review_days=s.integer("tier_review_days", 30, minimum=1, maximum=3650),
        convert_points=s.integer("convert_points", 0, minimum=0),
        convert_value=s.integer("convert_value", 0, minimum=0),
        ecard_load=s.string("ecard_load", "order", choices=("order", "first_use")),
        brand=read_brand(s.table("brand")),
    )
    if any(v <= 0 for v in program.face_values):
        s.error("face_values", "must be positive amounts in minor units")
    if program.is_loyalty and program.face_values:
        s.error("face_values", "a loyalty program has no face values")
    if program.is_loyalty and program.ecard_load == "first_use":
        s.error("ecard_load", "first_use needs a gift program (a pre-valued card)")
    if not program.is_loyalty:
        for key in ("points_validity_days", "tiers", "tier_window_days", "convert_points"):
            if s.data.get(key):
                s.error(key, "only a loyalty program has points")
    if bool(program.convert_points) != bool(program.convert_value):
        s.error("convert_points", "give convert_points and convert_value together")
    s.reject_unknown()
    return program


def _read_tiers(s: Section) -> tuple[Tier, ...]:
    """`[[programs.<id>.tiers]]`: lowest first, thresholds rising, the first from 0."""
    tiers: list[Tier] = []
    base_rate = s.data.get("points_per_unit", 0)  # a tier earns the program's rate unless it says
    if not isinstance(base_rate, int):
        base_rate = 0  # reported by the program's own check
    for i, t in enumerate(s.array_of_tables("tiers")):
        tier = Tier(name=t.string("name", pattern=_TIER_NAME.match,
                                  what="1 to 20 letters, digits, '-' or '_'"),
                    threshold=t.integer("threshold", minimum=0),
                    points_per_unit=t.integer("points_per_unit", base_rate, minimum=0))
        if i == 0 and tier.threshold != 0:
            t.error("threshold", "the first (lowest) tier starts at 0")
        if tiers and isinstance(tier.threshold, int) and tier.threshold <= tiers[-1].threshold:
            t.error("threshold", f"must be above the tier before ({tiers[-1].name}: "
                    f"{tiers[-1].threshold})")
        if any(tier.name == other.name for other in tiers):
            t.error("name", f"tier {tier.name!r} is listed twice")
        t.reject_unknown()
        tiers.append(tier)
    return tuple(tiers)


def _is_timezone(value: str) -> bool:
    try:
        ZoneInfo(value)
    except (ValueError, ZoneInfoNotFoundError):
        return False
    return True


def _is_upc(value: str) -> bool:
    return value.isdigit() and 8 <= len(value) <= 14


def _read_reseller(rid: str, s: Section, programs: dict[str, Program]) -> Reseller:
    """A reseller's table, on top of the profile it names (its own keys win): a profile that
    ships with tillgate by name (`profile = "blackhawk"`), or a file of the user's."""
    profile_ref = s.string("profile", None)
    data = dict(s.data)
    if profile_ref:
        profile = (_shipped_profile(profile_ref, s) if is_profile_name(profile_ref)
                   else _profile_file(profile_ref, rid, s))
        data = {**profile, **data}
    r = Section(data, s.path, s.errors)
    r._seen.add("profile")
    products: dict[str, Product] = {}
    for p in r.array_of_tables("products"):
        product = Product(
            upc=p.string("upc", pattern=_is_upc,
                         what="8 to 14 digits"),
            program=p.string("program"), denomination=p.integer("denomination", 0, minimum=0),
            min=p.integer("min", 0, minimum=0), max=p.integer("max", 0, minimum=0))
        if product.program and product.program not in programs:
            p.error("program", f"unknown program {product.program!r}")
        if not product.denomination and not product.max:
            p.error("", "needs a denomination, or a min and max")
        if product.upc in products:
            p.error("upc", f"{product.upc} is listed twice")
        p.reject_unknown()
        products[product.upc] = product
    reseller = Reseller(
        id=rid, name=r.string("name", rid), products=products,
        require_upc=r.boolean("require_upc", True),
        rrn_retransmission=r.boolean("rrn_retransmission", True),
        reversal_window=r.integer("reversal_window", 86400, minimum=1),
    )
    r.reject_unknown()
    return reseller


def _shipped_profile(name: str, s: Section) -> dict:
    profiles = shipped_profiles()
    if name not in profiles:
        s.error("profile", f"no shipped profile {name!r} (shipped: {', '.join(sorted(profiles))}; "
                "or give the path of a profile file)")
        return {}
    return dict(profiles[name])


def _profile_file(path: str, rid: str, s: Section) -> dict:
    """The [resellers.<rid>] table of a user's profile file (relative to the working directory,
    like every path of a config)."""
    try:
        with open(path, "rb") as f:
            profile = tomllib.load(f).get("resellers", {}).get(rid)
    except FileNotFoundError:
        s.error("profile", f"no such file {path!r} (a path is relative to the working directory; "
                f"shipped profiles are named: {', '.join(sorted(shipped_profiles()))})")
        return {}
    except tomllib.TOMLDecodeError as e:
        s.error("profile", f"{path} is not valid TOML: {e}")
        return {}
    if profile is None:
        s.error("profile", f"{path} has no [resellers.{rid}] table")
        return {}
    return dict(profile)


def _check_unique(values: list[str], where: str, what: str, errors: list[str]) -> None:
    seen: set[str] = set()
    for v in values:
        if v in seen and not v.endswith(":0"):
            errors.append(f"{where}: {what} {v!r} is used twice")
        seen.add(v)


def _check_program_overlap(programs: dict[str, Program], errors: list[str]) -> None:
    """Two programs must never claim the same card number: the program is found by number."""
    items = list(programs.values())
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            if a.prefix and b.prefix and (a.prefix.startswith(b.prefix)
                                          or b.prefix.startswith(a.prefix)):
                lengths_meet = (a.card_length_min <= b.card_length_max
                                and b.card_length_min <= a.card_length_max)
                if lengths_meet:
                    errors.append(f"programs.{b.id}.prefix: overlaps program {a.id!r}")
