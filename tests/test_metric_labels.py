"""Issue 12 part 2: a peer chooses no metric label value.

A `tillgate serve` subprocess gets 10,000 hostile messages of every kind a peer can vary (made-up
ISO MTIs, numeric and not; TGL/1 op names; unknown terminals and merchants on both protocols;
reseller requests with made-up merchants and UPCs; paths on the admin listener), after one of
each kind has been sent (the `other` series they share may appear then). The set of series on
/metrics afterwards must be the one before: before the fix, each made-up MTI or op name was a
series of its own.
"""

from __future__ import annotations

import random
import string
import urllib.error
import urllib.request

from linetill import tgl_request
from wireclients import LineClient, iso_batch, iso_closes

from gateway.testing import GatewayProcess
from protocols import isocodec
from protocols.isospec import spec_for_bitmap

SPEC = spec_for_bitmap("ascii")
SALE = {"t": "0200", "2": "6039530000000000018", "3": "006000", "4": "000000001500",
        "11": "000001", "41": "TILL0001", "42": "STORE0000000001", "49": "840",
        "7": "1124030000", "12": "030000", "13": "1124", "22": "021", "37": "123456789012"}
BATCH = 250


def _word(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _iso(**fields: str) -> bytes:
    return isocodec.encode({**SALE, **fields}, SPEC)


def _series(gateway: GatewayProcess) -> set[str]:
    """Every series on /metrics: its name and labels, without its value."""
    status, body = gateway.http_get("/metrics")
    assert status == 200
    return {line.rsplit(" ", 1)[0] for line in body.decode().splitlines()
            if line and not line.startswith("#")}


def _http_get(gateway: GatewayProcess, path: str) -> None:
    url = f"http://127.0.0.1:{gateway.ports['http']}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            response.read()
    except urllib.error.HTTPError as e:
        e.read()
        e.close()


def _send_hostile(gateway: GatewayProcess, rng: random.Random, scale: int) -> int:
    """Send `scale` tenths of the hostile mix (10 tenths = 10,000 messages); returns the count."""
    iso, line = gateway.ports["iso"], gateway.ports["line"]
    sent = 0

    def iso_in_batches(payloads: list[bytes]) -> None:
        nonlocal sent
        for i in range(0, len(payloads), BATCH):
            answers = iso_batch(iso, payloads[i:i + BATCH])
            assert all(a.get("39") for a in answers)
        sent += len(payloads)

    def tgl_in_batches(payloads: list[bytes]) -> None:
        nonlocal sent
        with LineClient(line) as till:
            for i in range(0, len(payloads), BATCH):
                assert all(a.get("rc") for a in till.batch(payloads[i:i + BATCH]))
        sent += len(payloads)

    n = 100 * scale
    # MTIs that are not digits: unanswerable, each closes its connection.
    for _ in range(n * 2 // 10 or 1):
        assert iso_closes(iso, _iso(t=_word(rng, 4, string.ascii_letters + "!?#")))
        sent += 1
    # MTIs of four digits outside HOST-SPEC's set (answered 30, with a made-up response MTI).
    iso_in_batches([_iso(t=f"{rng.randrange(10, 99)}{rng.choice('02')}{rng.randrange(10)}",
                         **{"11": f"{i % 999999 + 1:06d}"}) for i in range(n * 13 // 10 or 1)])
    # Unknown terminals and merchants.
    iso_in_batches([_iso(**{"41": _word(rng, 8), "42": _word(rng, 15),
                            "11": f"{i % 999999 + 1:06d}"}) for i in range(n * 15 // 10 or 1)])
    # A reseller's terminal with made-up merchants and UPCs (field 63 tag UP).
    iso_in_batches([_iso(t="0200", **{"3": "226000", "41": "BHN00001", "42": _word(rng, 15),
                                      "63": f"UP012{rng.randrange(10 ** 12):012d}",
                                      "11": f"{i % 999999 + 1:06d}"})
                    for i in range(n * 10 // 10 or 1)])
    # TGL/1: made-up op names, then unknown terminals.
    tgl_in_batches([tgl_request(id=str(i), op=_word(rng, 9, string.ascii_lowercase),
                                term="TILL0001", merch="STORE0000000001")
                    for i in range(n * 15 // 10 or 1)])
    tgl_in_batches([tgl_request(id=str(i), op="balance", card="6039530000000000018",
                                term=_word(rng, 8), merch=_word(rng, 15))
                    for i in range(n * 15 // 10 or 1)])
    # The admin listener: made-up paths, under / and under the API.
    for i in range(n * 30 // 10 or 1):
        _http_get(gateway, f"/{'v1/' if i % 2 else ''}{_word(rng, 12)}")
        sent += 1
    return sent


def test_ten_thousand_hostile_messages_add_no_series(tmp_path, redis_url):
    gateway = GatewayProcess.prepare(tmp_path, redis_url=redis_url).start()
    rng = random.Random(12)
    try:
        _send_hostile(gateway, rng, scale=0)  # one of each kind: the `other` series appear
        before = _series(gateway)
        sent = _send_hostile(gateway, rng, scale=10)
        after = _series(gateway)
    finally:
        assert gateway.stop() == 0, gateway.log[-4000:]
    assert sent == 10_000
    assert after - before == set(), sorted(after - before)[:20]
    assert 'tillgate_messages_in_total{listener="iso",mti="other"}' in after
    assert 'tillgate_messages_in_total{listener="line",mti="format"}' in after  # made-up ops


def test_made_up_values_are_not_kept_by_the_listener_either():
    """The per-listener caches hold known values and `other` only: memory does not grow with
    what peers make up, any more than the series do."""
    from gateway.metrics.families import (
        MESSAGES_IN,
        MESSAGES_OUT,
        OPERATION_LATENCY,
        ListenerMetrics,
    )

    listener = ListenerMetrics("hostile-unit")
    rng = random.Random(7)
    families = (MESSAGES_IN, MESSAGES_OUT, OPERATION_LATENCY)
    listener.message_in("0200")
    listener.message_out("0210", "00")
    listener.latency("redeem", 0.001)
    listener.message_in("ZZZZ")
    listener.message_out("ZZZZ", "Q1")
    listener.latency("nothing", 0.001)
    children = [len(family._children) for family in families]
    for _ in range(10_000):
        word = _word(rng, 4, string.ascii_uppercase)  # never an MTI, an op or a code
        listener.message_in(word)
        listener.message_out(word, _word(rng, 2, string.ascii_uppercase))
        listener.latency(word, 0.001)
    assert [len(family._children) for family in families] == children
    assert set(listener._in) == {"0200", "other"}
    assert set(listener._out) == {("0210", "00"), ("other", "other")}
    assert set(listener._latency) == {"redeem", "other"}
