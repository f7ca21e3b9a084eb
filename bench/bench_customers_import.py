"""`tillgate customers import` of a large file, then the same file again, then an export.

Against one redis-server started here (loopback TCP) and a fresh back office (SQLite in a
temporary directory, or `--backoffice-url` for a PostgreSQL database): issues `--linked` gift
cards, writes a CSV of `--rows` customers (every `--linked`/`--rows` customer holding one of the
cards, one in ten inactive), and times as an operator sees them (interpreter start included):

  import        every row a new customer, its card linked, inactive customers' cards marked
  import again  the same file: every row an update, every card held already
  export        every customer with its cards, masked

docs/benchmarks.md section 13.

    python bench/bench_customers_import.py [--rows 100000] [--linked 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_activate import consecutive, issue  # noqa: E402

from gateway.embedded_redis import EmbeddedRedis, free_port  # noqa: E402


def write_file(path: Path, rows: int, numbers: list[str]) -> None:
    every = max(1, rows // max(1, len(numbers)))
    with path.open("w") as f:
        f.write("code,name,email,phone,status,consent,notes,cards\n")
        for i in range(rows):
            card = numbers[i // every] if i % every == 0 and i // every < len(numbers) else ""
            status = "inactive" if i % 10 == 9 else "active"
            f.write(f"C{i:07d},Customer {i},c{i}@example.org,+44 20 7946 {i % 10000:04d},"
                    f"{status},{'yes' if i % 2 else 'no'},imported,{card}\n")


def timed(config_file: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gateway.cli", "customers", *args, "--config",
                    str(config_file)], check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--linked", type=int, default=20_000, help="customers holding a card")
    parser.add_argument("--backoffice-url", help="default: SQLite in a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, \
            EmbeddedRedis(tmp, port=free_port(), appendonly=False) as server:
        text = (ROOT / "config" / "tillgate.toml").read_text()
        text = text.replace('data_dir = "var"', f'data_dir = "{tmp}/var"')
        text = text.replace('# url = "redis://127.0.0.1:6379/0"', f'url = "{server.url}"')
        if args.backoffice_url:
            text += f'\n[backoffice]\nurl = "{args.backoffice_url}"\n'
        config_file = Path(tmp) / "bench.toml"
        config_file.write_text(text)
        numbers = consecutive(args.linked)
        asyncio.run(issue(config_file, numbers, batch=1000))
        data = Path(tmp) / "customers.csv"
        write_file(data, args.rows, numbers)
        where = args.backoffice_url.split("://")[0] if args.backoffice_url else "sqlite"
        print(f"customers import, {args.rows:,} rows ({args.linked:,} with a card, "
              f"one in ten inactive), {where}")
        for name, seconds in (("import", timed(config_file, "import", str(data))),
                              ("import again", timed(config_file, "import", str(data))),
                              ("export", timed(config_file, "export", "--out",
                                               str(Path(tmp) / "out.csv")))):
            print(f"  {name:14} {seconds:>7.1f} s  {args.rows / seconds:>10,.0f} rows/s")


if __name__ == "__main__":
    main()
