from gateway.hexdump import mask_digits, masked_hexdump

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
