"""`tillgate sim run` (scenario files) and `tillgate sim load` (a load run): their options."""

from __future__ import annotations


def register_run(modes, conn) -> None:
    pass


def register_load(modes, conn) -> None:
    pass
