"""`redis+sentinel://HOST:PORT[,HOST:PORT...]/PRIMARY_NAME[/db]`: the Sentinels to ask, and the
name of the primary they watch (docs/scaling.md). Read by the config (so a bad URL is refused
with its path, `redis.url`) and by the store, which connects through redis-py's Sentinel."""

from __future__ import annotations

from dataclasses import dataclass

SENTINEL_SCHEME = "redis+sentinel://"


class BadRedisURL(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class SentinelURL:
    sentinels: tuple[tuple[str, int], ...]
    primary: str
    db: int = 0


def is_sentinel(url: str) -> bool:
    return url.startswith(SENTINEL_SCHEME)


def parse_sentinel_url(url: str) -> SentinelURL:
    """The Sentinels, primary name and db of a redis+sentinel URL; BadRedisURL says what is
    wrong (never with a password: this form takes none, AUTH of the Sentinels is not supported)."""
    if not is_sentinel(url):
        raise BadRedisURL(f"not a {SENTINEL_SCHEME} URL")
    rest = url[len(SENTINEL_SCHEME):]
    if "@" in rest or "?" in rest:
        raise BadRedisURL("a password or query string is not supported in a redis+sentinel URL")
    hosts, _, path = rest.partition("/")
    parts = path.split("/") if path else []
    if not parts or not parts[0] or len(parts) > 2:
        raise BadRedisURL("needs /PRIMARY_NAME[/db] after the Sentinels")
    sentinels = []
    for host_port in hosts.split(","):
        host, sep, port = host_port.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise BadRedisURL(f"Sentinel {host_port!r} is not HOST:PORT")
        sentinels.append((host.strip("[]"), int(port)))
    db = parts[1] if len(parts) == 2 else "0"
    if not db.isdigit():
        raise BadRedisURL(f"db {db!r} is not a number")
    return SentinelURL(tuple(sentinels), parts[0], int(db))
