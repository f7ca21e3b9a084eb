"""Card artwork files for a large batch: `tillgate cards artwork` run as an operator would.

Writes a batch CSV of CARDS generated cards of the `secure` program (16 digits, Luhn, 4-digit
PINs; numbers from protocols.carddata, as `cards issue` draws them: the command reads only the
file, so no store is needed), then times, as subprocesses (interpreter start and config
included), median of REPEAT runs:
- the manufacturer file and the PIN mailer file (tracks 1, 2 and 3 with LRC, both payloads),
- the same plus the proof sheet of the first PROOF_CARDS cards (10 a page; a proof is a sample
  for the printer's check, and a page costs about 100 ms, mostly segno choosing the QR mask),
and prints cards per second of wall-clock time and of CPU time (the command's user + system
time: other work on a shared machine moves it far less than the wall clock), and the sizes
written. docs/benchmarks.md, section 19.

Run: python bench/bench_artwork.py [CARDS]
"""

from __future__ import annotations

import csv
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from protocols.carddata import generate_card_number, generate_pin  # noqa: E402

CARDS = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
PROOF_CARDS = 1_000
REPEAT = 3


def write_batch(path: Path) -> None:
    seen: set[str] = set()
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["card", "pin", "program", "status", "balance", "points"])
        while len(seen) < CARDS:
            number = generate_card_number("603954", 16, True)
            if number not in seen:
                seen.add(number)
                out.writerow([number, generate_pin(4), "secure", "issued", 0, 0])


def artwork(batch: Path, work: Path, *extra: str) -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds) of one run; the next run removes its files."""
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    command = [sys.executable, "-m", "gateway.cli", "cards", "artwork", str(batch),
               "--program", "secure", "--config", str(ROOT / "config" / "tillgate.toml"),
               "--out", str(out / "printer.csv"), "--pins", "mailer",
               "--pin-mailer", str(out / "mailer.csv"), "--tracks", "1,2,3", "--lrc",
               "--expiry", "2912", "--service-code", "120",
               *[a.replace("{out}", str(out)) for a in extra]]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else list(path.iterdir())
    return sum(f.stat().st_size for f in files) / 1e6


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        batch = work / "batch.csv"
        write_batch(batch)
        print(f"{CARDS:,} cards of program secure, tracks 1, 2, 3 with LRC, PIN mailer file")
        files, files_cpu = medians([artwork(batch, work) for _ in range(REPEAT)])
        out = work / "out"
        print(f"  printer + mailer files: {files:6.2f} s wall, {files_cpu:6.2f} s CPU: "
              f"{CARDS / files:7,.0f} cards/s wall, {CARDS / files_cpu:7,.0f} cards/s CPU; "
              f"printer {size_mb(out / 'printer.csv'):.1f} MB, "
              f"mailer {size_mb(out / 'mailer.csv'):.1f} MB")
        proof, proof_cpu = medians([
            artwork(batch, work, "--proof", "{out}/proof", "--proof-cards", str(PROOF_CARDS))
            for _ in range(REPEAT)])
        print(f"  + proof of {PROOF_CARDS:,} cards: {proof:6.2f} s wall, {proof_cpu:6.2f} s CPU: "
              f"the proof {(proof_cpu - files_cpu) / PROOF_CARDS * 1000:.1f} ms CPU a card, "
              f"{size_mb(out / 'proof') / (PROOF_CARDS / 10) * 1000:.0f} kB a page")


if __name__ == "__main__":
    main()
