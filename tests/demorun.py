"""Running scripts/run-demo.sh (what `make run` runs) as a new user meets it, for the tests.

The default configuration listens on the fixed ports of HOST-SPEC 6 (8580, 8583, 8584), which a
test must never take from the machine; so the demo runs in a private network namespace
(`unshare -rn`, its own loopback) and the test is skipped where the kernel allows none.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "scripts" / "run-demo.sh"
# A warning as Python prints it: "<file>:<line>: UserWarning: ...", or a logged "...Warning:".
PYTHON_WARNING = re.compile(r"\b[A-Z]\w*Warning\b")

# Runs inside the namespace: start the demo, wait until it says the gateway keeps running, stop
# it as Ctrl-C would, and print everything it wrote.
DRIVER = """
import signal, subprocess, sys, time
out = open("demo.out", "w+")
demo = subprocess.Popen(["bash", sys.argv[1]], stdout=out, stderr=subprocess.STDOUT)
deadline = time.monotonic() + 120
while time.monotonic() < deadline and demo.poll() is None:
    if "Ctrl-C stops it." in open("demo.out").read():
        break
    time.sleep(0.1)
demo.send_signal(signal.SIGINT)
try:
    demo.wait(30)
except subprocess.TimeoutExpired:
    demo.kill()
    demo.wait()
print(open("demo.out").read())
print("exit", demo.returncode)
"""


def private_network_available() -> bool:
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    probe = subprocess.run(["unshare", "-rn", "ip", "link", "set", "lo", "up"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


needs_private_network = pytest.mark.skipif(
    not private_network_available(), reason="no network namespace (unshare -rn) for the "
    "default configuration's fixed ports")


def run_demo(workdir: Path, bindir: Path, env: dict[str, str] | None = None) -> str:
    """scripts/run-demo.sh in `workdir` with `bindir` (tillgate, python) first on PATH, in a
    network namespace of its own; its whole output."""
    env = {**(env or os.environ), "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("TILLGATE_CONFIG", None)
    result = subprocess.run(
        ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
         str(bindir / "python"), "-c", DRIVER, str(DEMO)],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def assert_demo_answered(output: str) -> None:
    assert "GET /healthz: " in output and '"redis": "up"' in output, output
    assert re.search(r"sign-on\n  -> .*\n  <- .*39=00", output), output
    assert re.search(r"balance\n  -> .*\n  <- .*39=00", output), output
    assert re.search(r"tier SILVER\)\n  -> .*\n  <- .*39=00.*63=PT003500TR006SILVER",
                     output), output
    assert "running the built-in default configuration" in output, output
    assert "Ctrl-C stops it." in output and "tillgate stopped" in output, output
    warnings = [line for line in output.splitlines() if PYTHON_WARNING.search(line)]
    assert not warnings, "\n".join(warnings)
