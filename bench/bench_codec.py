"""What ISO 8583 costs per request/response pair, on this machine.

A 16-field 0200 redeem is decoded and its 0210 encoded (one "pair"), by:
- pyiso8583 alone (the reference; `encode` on a copy, as it mutates its input),
- the compiled twin protocols._isocodec_c (proven byte-identical in tests/test_isocodec.py),
- the facade protocols.isocodec as the listener calls it (twin + HOST-SPEC numeric checks),
- and the whole protocol half: decode + message_to_request + result_to_response + encode.

Prints medians of `repeat` runs (microseconds per pair) and the ratio to pyiso8583.

Run: python bench/bench_codec.py   (after `python setup.py build_ext --inplace`)
"""

from __future__ import annotations

import statistics
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import iso8583  # noqa: E402

from protocols import _isocodec_c, isocodec  # noqa: E402
from protocols.isomap import message_to_request, result_to_response  # noqa: E402
from protocols.isospec import SPEC_ASCII, SPEC_BINARY_BITMAP  # noqa: E402
from protocols.model import Result  # noqa: E402

REQUEST = {
    "t": "0200", "2": "6039530000000000018", "3": "006000", "4": "000000001500",
    "7": "1124030000", "11": "000123", "12": "030000", "13": "1124", "22": "021",
    "37": "123456789012", "41": "TILL0001", "42": "STORE0000000001", "49": "840",
    "25": "00", "52": "1234567890ABCDEF", "63": "IN006INV001PA0011", "90": "0" * 42,
}
RESULT = Result("00", balance=8500, currency="840", auth_id="A1B2C3", points=12)
REPEAT, NUMBER = 7, 5000


def median_us(fn) -> float:
    runs = timeit.repeat(fn, repeat=REPEAT, number=NUMBER)
    return statistics.median(runs) / NUMBER * 1e6


def figures(spec) -> dict[str, float]:
    data = isocodec.encode(REQUEST, spec)
    response = result_to_response(isocodec.decode(data, spec), RESULT)
    compiled = _isocodec_c.compile_spec(spec)
    assert _isocodec_c.encode(response, compiled) == bytes(iso8583.encode(dict(response), spec)[0])
    assert _isocodec_c.decode(data, compiled) == iso8583.decode(data, spec)[0]

    def reference():
        iso8583.decode(data, spec)
        iso8583.encode(dict(response), spec)

    def twin():
        _isocodec_c.decode(data, compiled)
        _isocodec_c.encode(response, compiled)

    def facade():
        isocodec.decode(data, spec)
        isocodec.encode(response, spec)

    def protocol_half():
        fields = isocodec.decode(data, spec)
        message_to_request(fields)
        isocodec.encode(result_to_response(fields, RESULT), spec)

    def protocol_half_reference():
        fields = isocodec.decode_reference(data, spec)
        message_to_request(fields)
        isocodec.encode_reference(result_to_response(fields, RESULT), spec)

    return {
        "pyiso8583 decode+encode": median_us(reference),
        "twin decode+encode (_isocodec_c)": median_us(twin),
        "facade decode+encode (isocodec)": median_us(facade),
        "twin decode only": median_us(lambda: _isocodec_c.decode(data, compiled)),
        "twin encode only": median_us(lambda: _isocodec_c.encode(response, compiled)),
        "protocol half on pyiso8583": median_us(protocol_half_reference),
        "protocol half on the twin": median_us(protocol_half),
    }


def main() -> None:
    print(f"median of {REPEAT} runs x {NUMBER} pairs, Python {sys.version.split()[0]}, "
          f"{len(REQUEST) - 1}-field 0200 + its 0210, isocodec on {isocodec.IMPLEMENTATION}")
    for name, spec in (("ASCII bitmap", SPEC_ASCII), ("binary bitmap", SPEC_BINARY_BITMAP)):
        results = figures(spec)
        base = results["pyiso8583 decode+encode"]
        print(f"{name}:")
        for label, us in results.items():
            print(f"  {label:<36} {us:8.2f} us   x{base / us:5.1f} vs pyiso8583")


if __name__ == "__main__":
    main()
