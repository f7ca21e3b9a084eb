"""Cost of a token made at run time on the admin HTTP listener: `GET /healthz` over one
keep-alive connection to a `tillgate serve` subprocess, with a config token (matched in memory)
and with a stored token (one HGETALL of its digest per request, gateway/security/tokens.py),
in interleaved rounds on one redis-server started here.

    python bench/bench_admin_tokens.py [--requests 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from gateway.testing import GatewayProcess  # noqa: E402

CONFIG_TOKEN = "bench-config-token-0123456789abcdef"
EXTRA = """
[[security.tokens]]
id = "bench"
scopes = ["health"]
token_env = "TG_BENCH_TOKEN"
"""


def timed_requests(port: int, token: str, count: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": f"Bearer {token}"}
    seconds = []
    try:
        for _ in range(count):
            start = time.perf_counter()
            conn.request("GET", "/healthz", headers=headers)
            response = conn.getresponse()
            response.read()
            seconds.append(time.perf_counter() - start)
            assert response.status == 200, response.status
    finally:
        conn.close()
    return seconds


def wait_answering(port: int, token: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            timed_requests(port, token, 1)
            return
        except (OSError, AssertionError):
            time.sleep(0.05)
    raise TimeoutError("gateway not answering")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ["TG_BENCH_TOKEN"] = CONFIG_TOKEN
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis",
                                                             port=free_port(),
                                                             appendonly=False) as server:
        gw = GatewayProcess.prepare(Path(tmp) / "gw", redis_url=server.url, extra=EXTRA)
        made = subprocess.run(gw.command("tokens", "create", "--name", "bench", "--scope",
                                         "health"), capture_output=True, text=True, check=True)
        stored = json.loads(made.stdout)["secret"]
        gw.start(wait=False)
        try:
            port = gw.ports["http"]
            wait_answering(port, CONFIG_TOKEN, time.monotonic() + 30)
            tokens = {"config token": CONFIG_TOKEN, "stored token": stored}
            for token in tokens.values():  # warm up
                timed_requests(port, token, 200)
            rows: dict[str, list[float]] = {name: [] for name in tokens}
            for _ in range(args.rounds):
                for name, token in tokens.items():
                    rows[name] += timed_requests(port, token, args.requests)
        finally:
            gw.stop()
    print(f"GET /healthz, one keep-alive connection, {args.rounds} x {args.requests} requests")
    for name, seconds in rows.items():
        seconds.sort()
        p50 = statistics.median(seconds) * 1e6
        p99 = seconds[int(len(seconds) * 0.99)] * 1e6
        print(f"  {name:13} p50 {p50:7.0f} us  p99 {p99:7.0f} us  "
              f"{len(seconds) / sum(seconds):7.0f} requests/s")


if __name__ == "__main__":
    main()
