from gateway.listeners.hexdump import mask_digits, masked_hexdump

PAN = b"6039530000000000018"


def test_card_digits_never_appear_in_a_dump():
    # A PAN inside a run of fixed numeric fields, as in a raw 0200 (LLVAR 2, then 3 and 4).
    message = b"0200F238000000000000" + b"19" + PAN + b"006000000000001250"
    masked = mask_digits(message)
    assert len(masked) == len(message)
    assert PAN[6:15] not in masked and PAN not in masked
    dump = masked_hexdump(message)
    ascii_column = "".join(line.split("|")[1] for line in dump.splitlines())
    assert ascii_column == masked.decode()
    assert "2a 2a 2a" in dump  # the masked digits, as hex


def test_dump_is_bounded():
    dump = masked_hexdump(b"A" * 2000, limit=64)
    assert dump.count("\n") == 4 and "1936 more bytes" in dump


# --- PIN material stays out by position ----------------------------------------------------

BLOCK = "04483BCBA9876FED"


def _iso(spec, **extra):
    from protocols import isocodec

    fields = {"t": "0200", "3": "006000", "4": "000000000125", "11": "000042",
              "41": "TILL0001", "49": "840", **extra}
    return isocodec.encode(fields, spec)


def test_an_iso_message_without_field_52_is_dumped_whole():
    from gateway.listeners.hexdump import iso_dump, pin_safe_length
    from protocols.isospec import SPEC_ASCII, SPEC_BINARY_BITMAP

    for spec in (SPEC_ASCII, SPEC_BINARY_BITMAP):
        payload = _iso(spec)
        assert pin_safe_length(payload, spec) == len(payload)
        assert "not shown" not in iso_dump(payload, spec)


def test_an_iso_message_with_field_52_is_cut_where_52_can_start():
    from gateway.listeners.hexdump import iso_dump, pin_safe_length
    from protocols.isospec import SPEC_ASCII, SPEC_BINARY_BITMAP

    for spec, bitmap in ((SPEC_ASCII, 16), (SPEC_BINARY_BITMAP, 8)):
        payload = _iso(spec, **{"2": "6039531234567890126", "52": BLOCK, "63": "IN003ABC"})
        # MTI, bitmap, then the shortest 2 (its LL prefix), 3, 4, 11, 41 and 49
        assert pin_safe_length(payload, spec) == 4 + bitmap + 2 + 6 + 12 + 6 + 8 + 3
        assert pin_safe_length(payload, spec) <= payload.index(BLOCK.encode())
        dump = iso_dump(payload, spec)
        assert BLOCK[:4] not in dump and "from where field 52 (PIN block) can start" in dump
    # a secondary bitmap comes before field 2
    with_secondary = _iso(SPEC_ASCII, **{"52": BLOCK, "70": "001"})
    assert pin_safe_length(with_secondary, SPEC_ASCII) == 4 + 32 + 6 + 12 + 6 + 8 + 3


def test_an_unreadable_iso_message_is_not_dumped_at_all():
    from gateway.listeners.hexdump import iso_dump, pin_safe_length
    from protocols.isospec import SPEC_ASCII

    payload = _iso(SPEC_ASCII, **{"2": "6039531234567890126", "52": BLOCK})
    for broken in (b"\xff\xfe00" + payload[4:],            # MTI
                   payload[:4] + b"Z" + payload[5:],         # bitmap not hex
                   payload[:10]):                            # bitmap cut short
        assert pin_safe_length(broken, SPEC_ASCII) is None
        dump = iso_dump(broken, SPEC_ASCII)
        assert dump.startswith(f"{len(broken)} bytes, MTI bytes {broken[:4].hex(' ')};")
        assert "body not shown" in dump and "|" not in dump


def test_tgl_dumps_hide_pins_garbled_keys_and_merged_fields():
    from gateway.listeners.hexdump import tgl_dump

    frame = b"\x1c".join([b"TGL1", b"Q", b"id=7", b"op=redeem", b"amt=100", b"pin=9081",
                          b"pIn=9082", b"pmn=9083", b"merch=S1<pin=9084", b"term=T\x1dpin9085",
                          b"9086", b"swipe=;6039531234567890126=4912?\r\n"])
    dump = tgl_dump(frame)
    text = "".join(line.split("|")[1] for line in dump.splitlines())
    for pin in ("9081", "9082", "9083", "9084", "9085", "9086"):
        assert pin not in text and pin.encode().hex(" ") not in dump
    assert "id=7.op=redeem.amt=100.pin=****" in text  # what is shown as it was sent
    assert "603953*********0126" in text  # a swipe is shown, its card number masked
