"""Run every benchmark of bench/ one after the other (what `make bench` / `tox -e bench` do).

Each script prints its own medians and ratios; docs/benchmarks.md says what they measure and
holds the latest figures. Usage:

    python bench/run_all.py                 # all of them
    python bench/run_all.py codec store     # only bench_codec.py and bench_store.py

Exit status: the number of scripts that failed (0 when all ran).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    scripts = sorted(BENCH.glob("bench_*.py"))
    if names:
        wanted = {n.removeprefix("bench_").removesuffix(".py") for n in names}
        unknown = wanted - {s.stem.removeprefix("bench_") for s in scripts}
        if unknown:
            print(f"run_all: no benchmark named {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
    failed = 0
    for script in scripts:
        print(f"=== {script.name}", flush=True)
        started = time.monotonic()
        status = subprocess.call([sys.executable, str(script)])
        print(f"=== {script.name}: exit {status}, {time.monotonic() - started:.0f} s\n",
              flush=True)
        failed += status != 0
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
