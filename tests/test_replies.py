"""A store `Reply`: awaited like an asyncio Future, but its waiter runs in place when resolved
from outside any task (a pipe's read), and through call_soon when resolved inside one."""

from __future__ import annotations

import asyncio

import pytest
import pytest_twisted

from gateway.reactor import deferred_from_coro
from gateway.replies import Reply


async def _waiter_runs_in_place() -> list[str]:
    loop = asyncio.get_running_loop()
    reply, events = Reply(loop), []

    async def request() -> None:
        events.append(f"got {await reply}")

    task = asyncio.ensure_future(request())
    await asyncio.sleep(0)  # the task is now waiting on the reply

    def pipe_read() -> None:  # a plain loop callback, like a transport's data_received
        reply.set_result("OK")
        events.append("after set_result")

    loop.call_soon(pipe_read)
    await task
    return events


async def _waiter_inside_a_task_is_scheduled() -> list[str]:
    reply, events = Reply(asyncio.get_running_loop()), []

    async def request() -> None:
        events.append(f"got {await reply}")

    task = asyncio.ensure_future(request())
    await asyncio.sleep(0)
    reply.set_result("OK")  # we are a task ourselves: the waiter must not run inside us
    events.append("after set_result")
    await task
    return events


async def _errors_cancels_and_gather() -> None:
    loop = asyncio.get_running_loop()
    failing = Reply(loop)
    loop.call_soon(failing.set_exception, KeyError("gone"))
    with pytest.raises(KeyError):
        await failing
    a, b = Reply(loop), Reply(loop)
    loop.call_soon(a.set_result, 1)
    loop.call_soon(b.set_result, 2)
    assert await asyncio.gather(a, b) == [1, 2]
    waiting = Reply(loop)
    task = asyncio.ensure_future(_await(waiting))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert waiting.cancelled()
    done, _ = await asyncio.wait([a, Reply(loop)], timeout=0.01)  # type: ignore[type-var]
    assert done == {a}


async def _await(reply: Reply):
    return await reply


@pytest_twisted.ensureDeferred
async def test_a_waiter_resumes_inside_the_read_that_resolves_it():
    events = await deferred_from_coro(_waiter_runs_in_place())
    assert events == ["got OK", "after set_result"]


@pytest_twisted.ensureDeferred
async def test_resolved_inside_a_task_the_waiter_is_scheduled():
    events = await deferred_from_coro(_waiter_inside_a_task_is_scheduled())
    assert events == ["after set_result", "got OK"]


@pytest_twisted.ensureDeferred
async def test_exceptions_gather_wait_and_cancellation():
    await deferred_from_coro(_errors_cancels_and_gather())


def test_a_reply_resolves_once():
    reply = Reply(asyncio.new_event_loop())
    reply.set_result(1)
    with pytest.raises(asyncio.InvalidStateError):
        reply.set_result(2)
    assert not reply.cancel() and reply.result() == 1
    reply.get_loop().close()
