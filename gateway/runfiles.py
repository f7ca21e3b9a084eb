"""The files `tillgate serve` keeps in its data directory for the commands that talk to it.

  tillgate.pid         its process id, while it runs (`kill -HUP $(cat var/tillgate.pid)`)
  config-reload.json   the outcome of its last config reload (gateway/reloader.py), which
                       `tillgate config reload` waits for after it sends SIGHUP

Both are written whole or not at all (a temporary file renamed over the old one), so a reader
never sees half of one. Nothing here imports Twisted: the CLI reads them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

PID_FILE = "tillgate.pid"
RELOAD_FILE = "config-reload.json"


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, path)


def write_pid(data_dir: Path) -> Path:
    path = data_dir / PID_FILE
    write_atomically(path, f"{os.getpid()}\n")
    return path


def remove_pid(data_dir: Path) -> None:
    """Remove the pid file if it is still this process's (a second gateway on the same data
    directory may have written its own since)."""
    path = data_dir / PID_FILE
    if read_pid(data_dir) == os.getpid():
        path.unlink(missing_ok=True)


def read_pid(data_dir: Path) -> int | None:
    try:
        text = (data_dir / PID_FILE).read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def write_reload_outcome(data_dir: Path, outcome: dict[str, Any]) -> None:
    write_atomically(data_dir / RELOAD_FILE, json.dumps(outcome, indent=1) + "\n")


def read_reload_outcome(data_dir: Path) -> dict[str, Any] | None:
    try:
        found = json.loads((data_dir / RELOAD_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return found if isinstance(found, dict) else None
