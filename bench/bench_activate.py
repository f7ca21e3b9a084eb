"""`tillgate cards activate` of a range: cards per second, first run and a retry (all replays).

Against one redis-server started here (loopback TCP): issues `--cards` consecutive gift cards,
then runs the command as a subprocess (interpreter start included, as an operator sees it) on
the whole range, then again (every activation replays). Median of `--rounds` (each round its own
range). docs/benchmarks.md section 10.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.config.model import load_config  # noqa: E402
from gateway.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from gateway.ledger import cards  # noqa: E402
from gateway.ledger.storeconnect import store_session  # noqa: E402
from protocols.carddata import luhn_check_digit  # noqa: E402


def consecutive(count: int) -> list[str]:
    base = int("603953" + "".join(secrets.choice("0123456789") for _ in range(7)) + "00000")
    return [str(base + i) + str(luhn_check_digit(str(base + i))) for i in range(count)]


async def issue(config_file: Path, numbers: list[str], batch: int = 500) -> None:
    config = load_config(config_file)
    async with store_session(config) as store:
        for start in range(0, len(numbers), batch):
            await asyncio.gather(*(cards.issue_card(store, config.programs["gift"], n)
                                   for n in numbers[start:start + batch]))


def activate(config_file: Path, numbers: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gateway.cli", "cards", "activate", "--program", "gift",
                    "--first", numbers[0], "--last", numbers[-1], "--amount", "5", "--config",
                    str(config_file)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return len(numbers) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"first run": [], "retry (replays)": []}
    with tempfile.TemporaryDirectory() as tmp, \
            EmbeddedRedis(tmp, port=free_port(), appendonly=False) as server:
        text = (ROOT / "config" / "tillgate.toml").read_text()
        text = text.replace('data_dir = "var"', f'data_dir = "{tmp}/var"')
        text = text.replace('# url = "redis://127.0.0.1:6379/0"', f'url = "{server.url}"')
        config_file = Path(tmp) / "bench.toml"
        config_file.write_text(text + "\n[imports]\nlarge_activation_cards = 0\n")
        for _ in range(args.rounds):
            numbers = consecutive(args.cards)
            asyncio.run(issue(config_file, numbers))
            rates["first run"].append(activate(config_file, numbers))
            rates["retry (replays)"].append(activate(config_file, numbers))
    print(f"cards activate, a range of {args.cards} cards, median of {args.rounds}")
    for name, values in rates.items():
        print(f"  {name:20} {statistics.median(values):>10,.0f} cards/s")


if __name__ == "__main__":
    main()
