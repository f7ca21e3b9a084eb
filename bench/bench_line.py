"""What the STX/ETX + TGL/1 line layer costs per request, on this machine.

Prints medians of `repeat` runs (microseconds per call) and side-by-side ratios:
- `encode_frame` (hand-written) against construct's declared layout `FRAME.build`, the figure
  behind encoding by hand (the two are proven byte-identical in tests/test_stxetx.py);
- `Receiver.feed` of one whole frame, and of the same frame one byte at a time (a 9600-baud
  serial line delivers a byte per read at worst);
- TGL/1 `parse_request` and `format_response` of a redeem.

Run: python bench/bench_line.py
"""

from __future__ import annotations

import statistics
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocols.model import Result  # noqa: E402
from protocols.stxetx import FRAME, Receiver, encode_frame, lrc  # noqa: E402
from protocols.tgl import format_response, parse_request  # noqa: E402

PAYLOAD = (b"TGL1\x1cQ\x1cid=000123\x1cop=redeem\x1cterm=TILL0001\x1cmerch=STORE0000000001"
           b"\x1ccard=6039530000000000006\x1camt=1250\x1cinv=INV-000123\x1cpartial=1")
REPEAT, NUMBER = 7, 2000


def median_us(fn) -> float:
    runs = timeit.repeat(fn, repeat=REPEAT, number=NUMBER)
    return statistics.median(runs) / NUMBER * 1e6


def main() -> None:
    assert FRAME.build({"payload": PAYLOAD}) == encode_frame(PAYLOAD)
    frame = encode_frame(PAYLOAD)
    result = Result("00", amount=1250, balance=3750, auth_id="A1B2C3")

    def feed_whole():
        Receiver().feed(frame)

    def feed_bytes():
        rx = Receiver()
        for i in range(len(frame)):
            rx.feed(frame[i:i + 1])

    figures = {
        f"lrc ({len(PAYLOAD)} bytes)": median_us(lambda: lrc(PAYLOAD)),
        "FRAME.build (construct layout)": median_us(lambda: FRAME.build({"payload": PAYLOAD})),
        "encode_frame (hand-written)": median_us(lambda: encode_frame(PAYLOAD)),
        "Receiver.feed, whole frame": median_us(feed_whole),
        f"Receiver.feed, {len(frame)} single bytes": median_us(feed_bytes),
        "tgl.parse_request (redeem)": median_us(lambda: parse_request(PAYLOAD, today="20261124")),
        "tgl.format_response": median_us(lambda: format_response("000123", result)),
    }
    print(f"median of {REPEAT} runs x {NUMBER} calls, Python {sys.version.split()[0]}")
    for name, us in figures.items():
        print(f"  {name:<40} {us:8.2f} us")
    ratio = figures["FRAME.build (construct layout)"] / figures["encode_frame (hand-written)"]
    print(f"  construct layout / hand-written framer   {ratio:8.1f} x")
    per_request = (figures["Receiver.feed, whole frame"] + figures["tgl.parse_request (redeem)"]
                   + figures["tgl.format_response"] + figures["encode_frame (hand-written)"])
    print(f"  line layer per request (in + out)        {per_request:8.2f} us"
          f"  (~{1e6 / per_request:,.0f} requests/s per core)")


if __name__ == "__main__":
    main()
