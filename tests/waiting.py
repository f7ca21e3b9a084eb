"""Waiting, in a blocking test, for what a gateway does in its own time: a condition polled
until a deadline, and a failure that names what did not come."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float, what: str) -> T:
    """Poll `condition` every 50 ms until it is true and return its value; fail the test
    `timeout` seconds on, naming `what`."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)
    return value
