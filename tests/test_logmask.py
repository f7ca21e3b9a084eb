import io
import logging

from gateway.config.model import load_config
from gateway.security.logmask import CardMaskingFormatter

GIFT = "6039530000000000018"
LOYALTY = "7712345678"


def _log(message, *args, exc=None):
    config = load_config("config/tillgate.toml")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CardMaskingFormatter("%(message)s", programs=config.programs.values()))
    logger = logging.getLogger("test.logmask")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        if exc:
            try:
                raise exc
            except Exception:
                logger.exception(message, *args)
        else:
            logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_full_card_number_never_reaches_the_output():
    out = _log("redeem on %s track ;%s=4912101? and loyalty %s", GIFT, GIFT, LOYALTY)
    assert GIFT not in out and LOYALTY not in out
    assert "603953*********0018" in out
    assert "77******78" in out


def test_numbers_inside_tracebacks_are_masked():
    out = _log("failed", exc=ValueError(f"bad card {GIFT}"))
    assert "Traceback" in out
    assert GIFT not in out and "603953" in out


def test_other_numbers_are_left_alone():
    # STAN (6), transmission time (10 digits not matching a program), amounts stay readable.
    out = _log("stan %s time %s amount %s", "000123", "1124101530", "000000001250")
    assert "000123" in out and "1124101530" in out and "000000001250" in out


def test_mask_card_never_shows_a_short_value_whole():
    from protocols.model import mask_card

    assert mask_card("123") == "***" and mask_card("1234") == "****"
    assert mask_card("7712345678") == "77******78"
    assert mask_card("6039530000000000019") == "603953*********0019"
