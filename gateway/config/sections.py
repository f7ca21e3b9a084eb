"""Reading untyped TOML into typed config while collecting every error with its path.

The style is buildbot's `ConfigErrors` with synapse's path-naming: nothing raises on the first
bad value; each reader records `path: problem` and returns a harmless default so that one run of
`tillgate config check` lists all the mistakes of a file at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_MISSING = object()


class ConfigError(Exception):
    """Raised once, at the end of loading, with every problem found."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class Section:
    """A view of one TOML table at `path`, recording errors into a shared list."""

    def __init__(self, data: Any, path: str, errors: list[str]):
        self.path = path
        self.errors = errors
        if not isinstance(data, dict):
            self.error("", "must be a table")
            data = {}
        self.data: dict[str, Any] = data
        self._seen: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> None:
        where = self.at(key) if key else (self.path or "(top level)")
        self.errors.append(f"{where}: {message}")

    def _get(self, key: str, default: Any) -> Any:
        self._seen.add(key)
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                self.error(key, "is required")
            return _MISSING
        return value

    def string(self, key: str, default: Any = _MISSING, *, choices: tuple[str, ...] | None = None,
            pattern: Callable[[str], object] | None = None, what: str = "") -> Any:
        value = self._get(key, default)
        if value is _MISSING:
            return None if default is _MISSING else default
        if not isinstance(value, str):
            self.error(key, "must be a string")
            return None if default is _MISSING else default
        if choices is not None and value not in choices:
            self.error(key, f"must be one of {', '.join(choices)} (got {value!r})")
        elif pattern is not None and not pattern(value):
            self.error(key, f"must be {what} (got {value!r})")
        return value

    def integer(self, key: str, default: Any = _MISSING, *, minimum: int | None = None,
            maximum: int | None = None) -> Any:
        value = self._get(key, default)
        if value is _MISSING:
            return None if default is _MISSING else default
        # bool is an int subclass in Python; `true` is never a valid count or amount.
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(key, _int_message(minimum))
            return None if default is _MISSING else default
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            if maximum is None:
                self.error(key, _int_message(minimum))
            else:
                self.error(key, f"must be an integer from {minimum} to {maximum}")
        return value

    def boolean(self, key: str, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if value is _MISSING:
            return None if default is _MISSING else default
        if not isinstance(value, bool):
            self.error(key, "must be true or false")
            return None if default is _MISSING else default
        return value

    def auto_boolean(self, key: str) -> bool | None:
        """true or false, or None for "auto" (and when absent): decided at run time."""
        value = self._get(key, "auto")
        if value is _MISSING or value == "auto":
            return None
        if not isinstance(value, bool):
            self.error(key, 'must be true, false or "auto"')
            return None
        return value

    def array(self, key: str, default: Any = _MISSING, *, item: type = str) -> Any:
        value = self._get(key, default)
        if value is _MISSING:
            return [] if default is _MISSING else default
        if not isinstance(value, list) or not all(
            isinstance(v, item) and not isinstance(v, bool) for v in value
        ):
            self.error(key, f"must be a list of {item.__name__}s")
            return [] if default is _MISSING else default
        return value

    def table(self, key: str, required: bool = False) -> Section:
        value = self._get(key, _MISSING if required else {})
        return Section({} if value is _MISSING else value, self.at(key), self.errors)

    def tables(self, key: str) -> dict[str, Section]:
        """A table of named tables, such as `[programs.gift]`."""
        outer = self.table(key)
        return {name: outer.table(name) for name in list(outer.data)}

    def array_of_tables(self, key: str) -> list[Section]:
        value = self._get(key, [])
        if value is _MISSING:
            return []
        if not isinstance(value, list):
            self.error(key, "must be an array of tables")
            return []
        return [Section(v, f"{self.at(key)}[{i}]", self.errors) for i, v in enumerate(value)]

    def reject_unknown(self) -> None:
        """Name keys nobody read: a typo in a config must not pass silently."""
        for key in self.data:
            if key not in self._seen:
                self.error(key, "is not a known setting")


def _int_message(minimum: int | None) -> str:
    if minimum == 1:
        return "must be a positive integer"
    if minimum == 0:
        return "must be a non-negative integer"
    return "must be an integer"
