"""Running an admin command that needs the store: the command's coroutine on its own loop, and an
unreachable store, or a write the replicas did not confirm (`redis.acknowledge_after_replicas`),
said in one line with exit status 2 (gateway/ledger/storeconnect.py opens it)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from gateway.cli.main import fail
from gateway.ledger.store import StoreError
from gateway.ledger.storeconnect import StoreUnavailable


def run_command(coro: Coroutine[Any, Any, int]) -> int:
    """Run an admin command's coroutine; an unreachable store is one line and exit 2."""
    try:
        return asyncio.run(coro)
    except (StoreUnavailable, StoreError) as e:  # StoreError: e.g. not yet on replicas
        return fail(str(e))
