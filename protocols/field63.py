"""Field 63 private data (HOST-SPEC 2.4): a sequence of `TAG(2 letters) LEN(3 digits) VALUE`.

`parse` splits it into the tags HOST-SPEC defines and the unknown ones (which the caller logs and
otherwise ignores); `format` writes response tags. A malformed field 63 is a format error (`30`).
"""

from __future__ import annotations

__all__ = ["REQUEST_TAGS", "RESPONSE_TAGS", "Field63Error", "format", "parse"]

REQUEST_TAGS = frozenset({"IN", "OP", "PA", "RW", "UP", "SN", "BC"})
RESPONSE_TAGS = frozenset({"PT", "TR", "EX", "MS"})
KNOWN_TAGS = REQUEST_TAGS | RESPONSE_TAGS
MAX_FIELD_LEN = 999  # field 63 is LLLVAR ..999


class Field63Error(ValueError):
    """Field 63 does not follow TAG LEN VALUE; `offset` is where reading stopped."""

    def __init__(self, reason: str, offset: int):
        super().__init__(f"field 63: {reason} at offset {offset}")
        self.reason = reason
        self.offset = offset


def _is_tag(tag: str) -> bool:
    return len(tag) == 2 and tag.isascii() and tag.isalpha() and tag.isupper()


def parse(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """Return (known tags, unknown tags), each tag -> value.

    A tag that appears twice is malformed: a till that sends two invoice numbers has a bug, and
    picking one of them silently could post against the wrong invoice.
    """
    known: dict[str, str] = {}
    unknown: dict[str, str] = {}
    pos = 0
    end = len(text)
    while pos < end:
        if end - pos < 5:
            raise Field63Error("truncated tag header", pos)
        tag = text[pos:pos + 2]
        length = text[pos + 2:pos + 5]
        if not _is_tag(tag):
            raise Field63Error(f"tag {tag!r} is not two capital letters", pos)
        if not (length.isascii() and length.isdigit()):
            raise Field63Error(f"length {length!r} of tag {tag} is not 3 digits", pos)
        size = int(length)
        value = text[pos + 5:pos + 5 + size]
        if len(value) != size:
            raise Field63Error(f"tag {tag} value shorter than its length {size}", pos)
        target = known if tag in KNOWN_TAGS else unknown
        if tag in known or tag in unknown:
            raise Field63Error(f"tag {tag} repeated", pos)
        target[tag] = value
        pos += 5 + size
    return known, unknown


def format(tags: dict[str, str]) -> str:  # noqa: A001 - the module's verb, used as field63.format
    """`{"PT": "120", "MS": "Thank you"}` -> `PT003120MS009Thank you` (in the dict's order)."""
    parts = []
    for tag, value in tags.items():
        if not _is_tag(tag):
            raise ValueError(f"field 63 tag {tag!r} is not two capital letters")
        if len(value) > 999:
            raise ValueError(f"field 63 tag {tag} value longer than 999")
        parts.append(f"{tag}{len(value):03d}{value}")
    text = "".join(parts)
    if len(text) > MAX_FIELD_LEN:
        raise ValueError(f"field 63 would be {len(text)} characters, more than {MAX_FIELD_LEN}")
    return text
