"""The refusals of the card-data decoders, defined once and raised by both twins.

Every decoder in protocols._carddata_py and protocols._carddata_c raises one of these, never
anything else, for bad card data. `kind` is a short stable name (the "error" names of the test
vectors) and `position` the 0-based index in the text as given where the fault was found. Messages
never quote the input (it may hold a whole card number), only the single offending character.
"""

from __future__ import annotations


class CardDataError(ValueError):
    """Card data the gateway refuses: `kind` says why, `position` says where."""

    kind: str = "format"

    def __init__(self, kind: str, position: int, message: str) -> None:
        super().__init__(kind, position, message)
        self.kind = kind
        self.position = position
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} (at position {self.position})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kind!r}, {self.position}, {self.message!r})"

    # Equal when the same refusal: lets tests compare the two twins' decode_many lists directly.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CardDataError):
            return NotImplemented
        return (type(self), self.kind, self.position, self.message) == (
            type(other), other.kind, other.position, other.message)

    def __hash__(self) -> int:
        return hash((type(self), self.kind, self.position, self.message))

    def __reduce__(self):  # pickles with the base signature whatever the subclass
        return (_rebuild, (type(self), self.kind, self.position, self.message))


def _rebuild(cls: type[CardDataError], kind: str, position: int, message: str) -> CardDataError:
    error = CardDataError.__new__(cls)
    CardDataError.__init__(error, kind, position, message)
    return error


class _Kinded(CardDataError):
    """A refusal whose kind is fixed by its class: raise Cls(position, message)."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(type(self).kind, position, message)


class LRCError(_Kinded):
    """The longitudinal redundancy check character after a track's end sentinel does not match."""

    kind = "lrc"


class CharacterError(_Kinded):
    """A character outside the set the track, field or symbology allows."""

    kind = "character"


class LengthError(_Kinded):
    """A track, card number, name or GS1 field too long or too short."""

    kind = "length"


class FormatError(_Kinded):
    """Structure: a missing separator, wrong format code, unknown GS1 AI, no card number, ..."""

    kind = "format"


class UnreadableError(_Kinded):
    """The reader reported every track of a swipe as unreadable (`%E?`, `;E?`, `+E?`)."""

    kind = "unreadable"


class CheckDigitError(_Kinded):
    """A UPC/EAN/GTIN (GS1 mod 10) check digit that does not match."""

    kind = "check_digit"


ERROR_CLASSES: dict[str, type[CardDataError]] = {
    cls.kind: cls
    for cls in (
        LRCError, CharacterError, LengthError, FormatError, UnreadableError, CheckDigitError
    )
}

__all__ = [
    "CardDataError",
    "CharacterError",
    "CheckDigitError",
    "ERROR_CLASSES",
    "FormatError",
    "LRCError",
    "LengthError",
    "UnreadableError",
]
