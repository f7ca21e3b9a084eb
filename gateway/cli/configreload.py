"""`tillgate config reload [--config FILE] [--timeout S]`: make the running gateway reload its
config file, wait for the outcome and print it (docs/operations.md).

The gateway is found by its data directory (the config's `gateway.data_dir`, read even from a
file with errors, or `--data-dir`): `tillgate serve` keeps its pid there once ready. The command
sends it SIGHUP and waits for an outcome in `<data_dir>/config-reload.json` that began after
the signal was sent (a reload already running when it arrived is not taken for its answer).

Exit status: 0 applied; 2 refused (each reason on stderr, named by its path; the running
config stays); 1 no gateway to ask, or no outcome within the timeout.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from gateway import runfiles
from gateway.config.diff import describe

POLL_SECONDS = 0.05


def add_parser(sub, common) -> None:
    reload = sub.add_parser("reload", parents=[common],
                            help="make the running gateway reload its config (SIGHUP) and "
                            "print the outcome")
    reload.add_argument("--data-dir", default=None,
                        help="the gateway's data directory (default: gateway.data_dir of "
                        "--config)")
    reload.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for the outcome (default 30)")
    reload.set_defaults(func=run_reload)


def data_dir_of(path: str) -> Path:
    """`gateway.data_dir` of a config file, read without validating the rest: the reload of a
    file with errors is still asked for, and the gateway's refusal printed."""
    try:
        with open(path, "rb") as f:
            value = tomllib.load(f).get("gateway", {}).get("data_dir", "var")
    except (OSError, tomllib.TOMLDecodeError, AttributeError):
        value = "var"
    return Path(value if isinstance(value, str) else "var")


def run_reload(args) -> int:
    data_dir = Path(args.data_dir) if args.data_dir else data_dir_of(args.config)
    pid = runfiles.read_pid(data_dir)
    if pid is None:
        return _trouble(f"no running gateway on {data_dir} (no {data_dir / runfiles.PID_FILE}; "
                        "is `tillgate serve` running with this config?)")
    sent_at = time.time()
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return _trouble(f"no process {pid} ({data_dir / runfiles.PID_FILE} is stale)")
    except PermissionError:
        return _trouble(f"not allowed to signal process {pid} (run as the gateway's user)")
    outcome = _wait_for_outcome(data_dir, sent_at, args.timeout)
    if outcome is None:
        return _trouble(f"process {pid} gave no reload outcome within {args.timeout:g} s "
                        f"(its log says why)")
    return _report(outcome)


def _wait_for_outcome(data_dir: Path, sent_at: float, timeout: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outcome = runfiles.read_reload_outcome(data_dir)
        if outcome is not None and outcome.get("started_at", 0) >= sent_at:
            return outcome
        time.sleep(POLL_SECONDS)
    return None


def _report(outcome: dict[str, Any]) -> int:
    path = outcome.get("path", "?")
    if outcome.get("outcome") == "applied":
        print(f"{path}: applied, generation {outcome.get('generation')} (sha256 "
              f"{str(outcome.get('sha256'))[:12]}): {describe(outcome.get('changes') or {})}")
        return 0
    for error in outcome.get("errors") or ["refused, no reason given"]:
        print(f"tillgate: {error}" if error.startswith(path) else f"tillgate: {path}: {error}",
              file=sys.stderr)
    print(f"tillgate: reload refused; generation {outcome.get('generation')} keeps running, "
          "unchanged", file=sys.stderr)
    return 2


def _trouble(message: str) -> int:
    print(f"tillgate: {message}", file=sys.stderr)
    return 1
