"""What a config reload would change: the settings only a restart can change, and a summary of
the rest (docs/operations.md, "Reloading the configuration").

Pure functions of two Configs: the gateway's reloader (gateway/reloader.py) refuses a reload
whose `needs_restart` is not empty, and logs and reports `changes`.

Restart-only settings are those a running process holds in something it cannot swap between two
requests: a bound socket (listeners, the admin HTTP bind and their TLS files), the Redis
connection and the embedded server's data directory, the alert delivery loops, the shutdown
budget of the service tree. Everything a request is judged by (programs, merchants and their
terminals, clubs, rules, resellers, PIN keys, tokens, issuing and import settings, the log level and
reversal window) can change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.config.model import Config

# (path named in the refusal, what of a Config it is)
RESTART_ONLY: tuple[tuple[str, Callable[[Config], Any]], ...] = (
    ("gateway.data_dir", lambda c: c.data_dir),
    ("gateway.shutdown_grace", lambda c: c.shutdown_grace),
    ("gateway.points_sweep_interval", lambda c: c.points_sweep_interval),  # its timer, set once
    ("redis", lambda c: c.redis),
    ("http", lambda c: c.http),
    ("alerts", lambda c: c.alerts),
    ("email", lambda c: c.email),
    ("backoffice", lambda c: c.backoffice),  # the process's one engine, opened once
    ("journal", lambda c: c.journal),  # the trimming service's timer and policy, set once
    ("portal.enabled", lambda c: c.portal.enabled),  # /ui/ is mounted (or not) at the start
    ("portal.key_file", lambda c: c.portal.key_file),  # the TOTP secrets' key, read once
    ("ecards.enabled", lambda c: c.ecards.enabled),  # the e-card queue runs (or not) from start
    ("members.enabled", lambda c: c.members.enabled),  # /m/ is mounted (or not) at the start
)

# What a change summary counts, each as a mapping of id -> what the id stands for.
SUMMARISED: tuple[tuple[str, Callable[[Config], Mapping[str, Any]]], ...] = (
    ("programs", lambda c: c.programs),
    ("merchants", lambda c: c.merchants),
    ("clubs", lambda c: c.clubs),
    ("terminals", lambda c: {t: m.id for t, m in c.terminals.items()}),
    ("rules", lambda c: {r.name: r for r in c.rules}),
    ("resellers", lambda c: c.resellers),
    ("tokens", lambda c: {t.id: t for t in c.security.tokens}),
    ("pin_keys", lambda c: {_pin_key_owner(k): k for k in c.security.pin_keys}),
)

# Single settings that can change, named as in the file.
SETTINGS: tuple[tuple[str, Callable[[Config], Any]], ...] = (
    ("gateway.log_level", lambda c: c.log_level),
    ("gateway.reversal_window", lambda c: c.reversal_window),
    ("imports", lambda c: c.imports),
    ("security.issue_secret", lambda c: c.security.issue_secret),
    ("portal", lambda c: c.portal),  # time-outs, limits, lock-out, links: the next request
    ("ecards", lambda c: c.ecards),  # the e-card queue's timings and links: its next pass
    ("members", lambda c: c.members),  # the member page's time-outs: the next request
)


def _pin_key_owner(key: Any) -> str:
    return f"terminal {key.terminal}" if key.terminal else f"merchant {key.merchant}"


def needs_restart(old: Config, new: Config) -> list[str]:
    """One line per restart-only setting that differs, named by its path."""
    found = [f"{path}: changed; needs a restart" for path, value in RESTART_ONLY
             if value(old) != value(new)]
    before = {lst.name: lst for lst in old.listeners}
    after = {lst.name: lst for lst in new.listeners}
    for name in sorted(before.keys() | after.keys()):
        if name not in after:
            found.append(f"listeners.{name}: removed; needs a restart")
        elif name not in before:
            found.append(f"listeners.{name}: added; needs a restart")
        elif before[name] != after[name]:
            found.append(f"listeners.{name}: changed; needs a restart")
    return found


def changes(old: Config, new: Config) -> dict[str, dict[str, list[str]]]:
    """What differs, by kind: {"programs": {"added": [...], "removed": [...], "changed": [...]},
    "settings": {"changed": [...]}}; kinds without a difference are left out."""
    found: dict[str, dict[str, list[str]]] = {}
    for kind, items in SUMMARISED:
        diff = _mapping_diff(items(old), items(new))
        if diff:
            found[kind] = diff
    settings = [path for path, value in SETTINGS if value(old) != value(new)]
    if settings:
        found["settings"] = {"changed": settings}
    return found


def _mapping_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[str]]:
    diff = {"added": sorted(new.keys() - old.keys()),
            "removed": sorted(old.keys() - new.keys()),
            "changed": sorted(k for k in old.keys() & new.keys() if old[k] != new[k])}
    return {how: ids for how, ids in diff.items() if ids}


def describe(found: Mapping[str, Mapping[str, list[str]]]) -> str:
    """A one-line summary for the log: `programs: changed gift; terminals: added T9`."""
    if not found:
        return "no changes"
    return "; ".join(f"{kind}: " + ", ".join(f"{how} {' '.join(ids)}" for how, ids in by.items())
                     for kind, by in found.items())
