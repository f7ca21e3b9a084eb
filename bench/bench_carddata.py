"""Card-data decoding speed: the compiled twin against the pure-Python specification.

For track 2, track 1, a two-track keyboard-wedge swipe and a GS1 element string, prints decodes per
second (median of `REPEAT` runs) of
- the pure module called in a loop (protocols._carddata_py),
- the compiled twin called in a loop (protocols._carddata_c),
- the compiled twin's batch API, decode_many,
each on lists of BATCH items whose results are kept (as a bulk file job keeps them), and the
ratios against the pure loop. Targets (issue 5): compiled >= 8x, decode_many >= 20x.
Times are process CPU time (time.process_time), so other work on a shared machine that preempts
this process does not count against either side.

Run: python setup.py build_ext --inplace && python bench/bench_carddata.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocols import _carddata_c as compiled  # noqa: E402
from protocols import _carddata_py as pure  # noqa: E402

TRACK2 = ";6039531234567890123=49121010000000000?"
TRACK1 = "%B6039531234567890123^DOE/JANE^4912101000000000000?"
CASES = [  # (label, decode_many kind, function name, input)
    ("track 2", "track2", "decode_track2", TRACK2),
    ("track 1", "track1", "decode_track1", TRACK1),
    ("swipe, two tracks", "swipe", "decode_swipe", TRACK1 + TRACK2 + "\r"),
    ("GS1 (01)(21)(8004)", "barcode", "decode_barcode",
     "]C1010950110153000321ABC123\x1d800495011010000042"),
]
REPEAT = 9
PURE_DECODES = 20_000  # per run of the pure loop (~0.1-0.3 s)
COMPILED_DECODES = 400_000  # per run of the compiled loops, long enough for CPU-time accounting
BATCH = 1_000  # items per list (and per decode_many call)


def rates(runs: dict[str, tuple]) -> dict[str, float]:
    """Median decodes per CPU second of each (run, decodes) in `runs`. The runs are interleaved,
    REPEAT rounds of one run each, so that a busy spell on the machine hits every side alike."""
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(REPEAT):
        for name, (run, _decodes) in runs.items():
            started = time.process_time()
            run()
            seconds[name].append(time.process_time() - started)
    return {name: decodes / statistics.median(seconds[name])
            for name, (_run, decodes) in runs.items()}


def loop(fn, items: list[str], decodes: int):
    def run():
        for _ in range(decodes // BATCH):
            [fn(item) for item in items]
    return run


def main() -> None:
    print(f"decodes per CPU second, median of {REPEAT} runs, on lists of {BATCH:,} items, "
          f"Python {sys.version.split()[0]}")
    print(f"  {'input':<22}{'pure loop':>12}{'compiled':>12}{'decode_many':>13}"
          f"{'compiled/pure':>15}{'many/pure':>11}")
    for label, kind, name, text in CASES:
        assert getattr(pure, name)(text) == getattr(compiled, name)(text)
        items = [text] * BATCH

        def many(items=items, kind=kind):
            for _ in range(COMPILED_DECODES // BATCH):
                compiled.decode_many(kind, items)

        rate = rates({
            "pure": (loop(getattr(pure, name), items, PURE_DECODES), PURE_DECODES),
            "compiled": (loop(getattr(compiled, name), items, COMPILED_DECODES), COMPILED_DECODES),
            "many": (many, COMPILED_DECODES),
        })
        py_rate, c_rate, many_rate = rate["pure"], rate["compiled"], rate["many"]
        print(f"  {label:<22}{py_rate:>12,.0f}{c_rate:>12,.0f}{many_rate:>13,.0f}"
              f"{c_rate / py_rate:>14.1f}x{many_rate / py_rate:>10.1f}x")


if __name__ == "__main__":
    main()
