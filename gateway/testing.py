"""Helpers for running a private gateway in tests: free ports, a config file, a subprocess.

Used by the project's own tests and meant for integrators' tests too (the pytest plugin builds on
it). Everything is real: a `tillgate serve` process with its own embedded redis-server.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config.model import DEFAULT_CONFIG_PATH
from gateway.embedded_redis import free_port

_DEFAULT_PORTS = {"8583": "iso", "8584": "line", "8580": "http"}


def config_text(base: str | os.PathLike[str] = DEFAULT_CONFIG_PATH, *, data_dir: str,
                ports: dict[str, int], redis_url: str | None = None, extra: str = "") -> str:
    """The base config with its data directory, ports (by listener name or `http`) and Redis
    URL replaced, plus `extra` TOML appended."""
    text = Path(base).read_text()  # its reseller profiles are named: any folder will do
    text = re.sub(r'(?m)^data_dir = ".*?"', f"data_dir = {json.dumps(data_dir)}", text)
    for old, name in _DEFAULT_PORTS.items():
        if name in ports:
            text = re.sub(rf"(?m)^port = {old}$", f"port = {ports[name]}", text)
    if redis_url:
        # the first commented url is [redis]'s (later ones are other sections' examples)
        text = re.sub(r'(?m)^# url = ".*?".*$', f"url = {json.dumps(redis_url)}", text, count=1)
    return text + "\n" + extra


@dataclass
class GatewayProcess:
    """A `tillgate serve` subprocess on free loopback ports."""

    workdir: Path
    config_path: Path
    ports: dict[str, int]
    process: subprocess.Popen | None = None
    log_path: Path = field(init=False)
    workers: int = 1  # more: `serve --workers N`, the supervisor is `process`
    env: dict[str, str] | None = None  # set in the gateway's environment (e.g. PYTHONPATH)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "gateway.log"

    @classmethod
    def prepare(cls, workdir: Path, base: str | os.PathLike[str] = DEFAULT_CONFIG_PATH,
                redis_url: str | None = None, extra: str = "") -> GatewayProcess:
        workdir.mkdir(parents=True, exist_ok=True)
        ports = {"iso": free_port(), "line": free_port(), "http": free_port()}
        config_path = workdir / "tillgate.toml"
        config_path.write_text(config_text(base, data_dir=str(workdir / "var"), ports=ports,
                                           redis_url=redis_url, extra=extra))
        return cls(workdir, config_path, ports)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "gateway.cli", *args, "--config", str(self.config_path)]

    def start(self, wait: bool = True, timeout: float = 20.0) -> GatewayProcess:
        log = open(self.log_path, "ab")
        serve = ["serve"] if self.workers == 1 else ["serve", "--workers", str(self.workers)]
        env = None if self.env is None else {**os.environ, **self.env}
        self.process = subprocess.Popen(self.command(*serve), stdout=log, stderr=log,
                                        cwd=self.workdir, env=env)
        log.close()
        if wait:
            self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{self.log}")
            try:
                if self.http_get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"gateway not healthy within {timeout} s:\n{self.log}")

    def http_get(self, path: str) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{self.ports['http']}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    @property
    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the gateway and wait for it to exit. One that does not within `timeout` (its
        own stop is bounded at shutdown_grace + 10 s, 20 s by default) is asked for its stacks
        (SIGUSR1), killed, and reported with the end of its log."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(1.0)
            raise TimeoutError(f"gateway did not exit within {timeout} s of {sig!r}; the end "
                               f"of its log:\n{self.log[-8000:]}") from None
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
