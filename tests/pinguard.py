"""The session-wide guard that no PIN or PIN block the suite uses reaches a log (issue 12).

Collected: every PIN and PIN block made by the builders the tests use, wrapped at session start:
`protocols.isobuild.pin_block` (clear format 0 blocks, for ISO field 52), `gateway.security.pinkeys.
PinKey.block_for` (encrypted blocks), `protocols.carddata.generate_pin` (issued PINs) and
`linetill.tgl_request` (a TGL/1 `pin=`). Modules that imported one of them by name before the
wrap get the wrapper too.

Scanned: every log record emitted in the test process (root logger, INFO and above, tracebacks
included), the stdout and stderr of every `subprocess.run` a test makes (the CLI, `tillgate
sim`), and the log file (its stderr) of every `tillgate serve` started through
gateway.testing.GatewayProcess. A PIN block counts as found whole or as any 15 consecutive
characters of it, in the text or in the bytes of a hex dump (whose lines split a block); a PIN
counts as found as a `pin=` (or `pin: `, `'pin': '...'`) value, and any TGL/1 `pin=<digits>`
counts whoever made it.

A find fails the test that produced it (or, for what session fixtures logged, the session),
naming where it was seen and which builder made the material, never the material itself: the
offending log record or output is replaced by `WITHHELD` before pytest could report it.
tests/conftest.py imports the hooks and the autouse fixture at the end of this module.
"""

from __future__ import annotations

import functools
import logging
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

_HEX15 = re.compile(r"(?=([0-9A-Fa-f]{15}))")
_PIN_VALUE = re.compile(r"""pin['"]?\s*[=:]\s*['"]?(\d{4,12})(?!\d)""", re.IGNORECASE)
# A TGL/1 PIN field, whoever made it (a subprocess's PINs are not collected here): no log or
# output has a reason to hold one.
_TGL_PIN = re.compile(r"(?<![A-Za-z])pin=\d{4,12}(?!\d)", re.IGNORECASE)
# One line of gateway.listeners.hexdump.masked_hexdump: offset, up to 16 hex bytes, the ASCII
# column.
_DUMP_LINE = re.compile(r"^[0-9a-f]{4}  ((?:[0-9a-f]{2} )*[0-9a-f]{2}) *  \|", re.MULTILINE)
# What a log record or a subprocess's output that held PIN material reads as afterwards.
WITHHELD = "[pinguard: withheld, it held PIN material]"
WINDOW = 15  # the measure: 15 of a block's 16 characters give the PIN away


class Material:
    """The PINs and PIN blocks seen so far, each with the builder that made it."""

    def __init__(self) -> None:
        self.windows: dict[str, str] = {}  # every 15-character run of a block -> its builder
        self.pins: dict[str, str] = {}

    def add_block(self, block: object, source: str) -> None:
        if isinstance(block, str) and len(block) >= WINDOW:
            upper = block.upper()
            for start in range(len(upper) - WINDOW + 1):
                self.windows.setdefault(upper[start:start + WINDOW], source)

    def add_pin(self, pin: object, source: str) -> None:
        if isinstance(pin, str) and pin.isdigit():
            self.pins.setdefault(pin, source)

    def find(self, text: str) -> str | None:
        """What kind of material `text` holds (by its builder), or None."""
        texts = [text]
        dumped = _DUMP_LINE.findall(text)
        if dumped:
            texts.append(bytes.fromhex(" ".join(dumped)).decode("latin-1"))
        for candidate in texts:
            for match in _HEX15.finditer(candidate):
                source = self.windows.get(match.group(1).upper())
                if source:
                    return f"a PIN block (from {source})"
            for match in _PIN_VALUE.finditer(candidate):
                source = self.pins.get(match.group(1))
                if source:
                    return f"a PIN (from {source})"
            if _TGL_PIN.search(candidate):
                return "a TGL/1 pin= value"
        return None


class Guard:
    def __init__(self) -> None:
        self.material = Material()
        self.findings: list[str] = []
        self.gateway_logs: dict[Path, int] = {}  # a gateway's log file -> bytes already scanned

    def check(self, text: str, where: str) -> bool:
        kind = self.material.find(text)
        if kind:
            self.findings.append(f"{kind} in {where}")
        return kind is not None

    def take(self) -> list[str]:
        self.scan_gateway_logs()
        found, self.findings = self.findings, []
        return found

    def scan_gateway_logs(self) -> None:
        for path, done in list(self.gateway_logs.items()):
            try:
                with open(path, "rb") as f:
                    f.seek(done)
                    data = f.read()
            except OSError:
                continue
            # whole lines only: a record being written now is read whole next time (the
            # logging handler writes a record, hex dump and all, in one write)
            data = data[:data.rfind(b"\n") + 1]
            self.gateway_logs[path] = done + len(data)
            if data:
                self.check(data.decode("latin-1"), f"the log of the gateway subprocess {path}")


GUARD = Guard()


class _LogScanner(logging.Handler):
    scanned = 0

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter("%(message)s"))  # the message and any traceback

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a broken record is someone else's failure
            return
        _LogScanner.scanned += 1
        if GUARD.check(text, f"a log record of {record.name} ({record.levelname})"):
            # This handler runs before pytest's (it was added first), so pytest's report of
            # the failing test shows this instead of the material.
            record.msg, record.args = WITHHELD, None
            record.exc_info = record.exc_text = None


def _wrap(owner: Any, name: str, collect: Callable[[tuple, dict, Any], None]) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        collect(args, kwargs, result)
        return result

    setattr(owner, name, wrapper)
    for module in list(sys.modules.values()):  # those that imported it by name already
        if getattr(module, "__dict__", {}).get(name) is original:
            setattr(module, name, wrapper)


def _argument(args: tuple, kwargs: dict, index: int, name: str) -> object:
    return kwargs[name] if name in kwargs else (args[index] if len(args) > index else None)


def _command_name(command: object) -> str:
    """A subprocess named by its program and subcommand, never its arguments (a PIN may be
    one)."""
    words = [str(w) for w in command] if isinstance(command, (list, tuple)) else [str(command)]
    words = [w for w in words if not w.startswith("-")]
    if "gateway.cli" in words:
        at = words.index("gateway.cli")
        return " ".join(["tillgate", *words[at + 1:at + 3]])
    return Path(words[0]).name if words else "?"


def install() -> None:
    """Wrap the builders and `subprocess.run`, and scan the root logger. Once per session."""
    from gateway import testing
    from gateway.security import pinkeys
    from protocols import carddata, isobuild

    material = GUARD.material
    _wrap(isobuild, "pin_block", lambda a, k, block: (
        material.add_block(block, "isobuild.pin_block"),
        material.add_pin(_argument(a, k, 0, "pin"), "isobuild.pin_block")))
    _wrap(pinkeys.PinKey, "block_for", lambda a, k, block: (
        material.add_block(block, "PinKey.block_for"),
        material.add_pin(_argument(a, k, 1, "pin"), "PinKey.block_for")))
    _wrap(carddata, "generate_pin", lambda a, k, pin: material.add_pin(pin, "generate_pin"))
    try:
        import linetill
    except ImportError:  # the guard run outside the project's tests directory
        pass
    else:
        _wrap(linetill, "tgl_request", lambda a, k, _payload: material.add_pin(
            k.get("pin"), "linetill.tgl_request"))

    def scan_run(args: tuple, kwargs: dict, result: Any) -> None:
        command = _command_name(_argument(args, kwargs, 0, "args"))
        for stream in ("stdout", "stderr"):
            out = getattr(result, stream, None)
            if out:
                text = out if isinstance(out, str) else bytes(out).decode("latin-1")
                if GUARD.check(text, f"the {stream} of `{command}`"):
                    setattr(result, stream, WITHHELD if isinstance(out, str) else WITHHELD.encode())

    _wrap(subprocess, "run", scan_run)

    def register_log(args: tuple, kwargs: dict, process: Any) -> None:
        GUARD.gateway_logs.setdefault(Path(process.log_path), 0)

    _wrap(testing.GatewayProcess, "start", register_log)

    root = logging.getLogger()
    root.addHandler(_LogScanner())
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)  # refusals log at WARNING, some closes at INFO


# --- the pytest side: imported by tests/conftest.py -----------------------------------------

_session_findings: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    install()


@pytest.fixture(autouse=True)
def no_pin_material_in_logs():
    """Fail a test whose logs (in-process, a gateway subprocess's, a CLI's output) hold a PIN
    or PIN block the suite made; what came before the test belongs to the session."""
    _session_findings.extend(GUARD.take())
    yield
    found = GUARD.take()
    if found:
        pytest.fail("PIN material reached a log: " + "; ".join(sorted(set(found))),
                    pytrace=False)


# Under pytest-xdist (`-n 2` in tox.ini) each worker is a session of its own: a worker hands
# what its session found, and its counts, to the controller (`workeroutput`, xdist's channel
# back), which fails the run and prints the sums as a single process would.
_worker_reports: list[dict[str, Any]] = []


def _own_report() -> dict[str, Any]:
    return {"found": _session_findings + GUARD.take(),
            "windows": len(GUARD.material.windows), "pins": len(GUARD.material.pins),
            "records": _LogScanner.scanned, "gateway_logs": len(GUARD.gateway_logs)}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    report = getattr(node, "workeroutput", {}).get("pinguard")
    if report is not None:
        _worker_reports.append(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    report = _own_report()
    _worker_reports.append(report)
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports
        workeroutput["pinguard"] = report
        return
    found = [f for r in _worker_reports for f in r["found"]]
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        message = "PIN material reached a log: " + "; ".join(sorted(set(found)))
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(message, red=True)
        else:
            print(message, file=sys.stderr)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Counts only, to show the guard was awake (summed over xdist workers): never a value."""
    def total(what: str) -> int:
        return sum(r[what] for r in _worker_reports)
    terminalreporter.write_line(
        f"pinguard: {total('windows')} PIN-block windows and {total('pins')} PINs "
        f"collected, {total('records')} log records and {total('gateway_logs')} gateway "
        f"logs scanned")
