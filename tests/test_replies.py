"""A store `Reply`: awaited like an asyncio Future, but its waiter runs in place when resolved
from outside any task (a pipe's read), and through call_soon when resolved inside one."""

from __future__ import annotations

import asyncio

import pytest
import pytest_twisted

from gateway.ledger.replies import Reply, run_in_place
from gateway.reactor import deferred_from_coro


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


async def _run_in_place_steps() -> list[str]:
    """A coroutine run without a Task: first step at once, each next one where its reply is
    resolved; asyncio futures, gather, sleep(0) and a failed reply work as under a Task."""
    loop = asyncio.get_running_loop()
    first, failing, future = Reply(loop), Reply(loop), loop.create_future()
    events: list[str] = []
    finished = loop.create_future()

    async def request() -> None:
        events.append(f"task {asyncio.current_task()}")
        events.append(f"got {await first}")
        try:
            await failing
        except KeyError as e:
            events.append(f"raised {e}")
        await asyncio.sleep(0)
        later = Reply(loop)
        loop.call_soon(later.set_result, 3)
        events.append(f"gathered {await asyncio.gather(future, _await(later))}")
        finished.set_result(None)

    def start() -> None:  # a plain loop callback, as the Processor's batch start is
        run_in_place(request(), loop)
        events.append("started")

    loop.call_soon(start)

    def pipe_read() -> None:
        first.set_result("OK")
        events.append("after set_result")
        failing.set_exception(KeyError("gone"))
        future.set_result(2)

    loop.call_soon(pipe_read)
    await asyncio.wait_for(finished, 5)
    return events


async def _run_in_place_reports(body) -> list[dict]:
    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        run_in_place(body(), loop)
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    return reported


async def _raises() -> None:
    raise ValueError("broken")


async def _yields_a_non_future() -> None:
    class NotAFuture:
        def __await__(self):
            yield "this"

    await NotAFuture()


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


@pytest_twisted.ensureDeferred
async def test_run_in_place_steps_where_replies_are_resolved():
    events = await deferred_from_coro(_run_in_place_steps())
    assert events == ["task None", "started", "got OK", "after set_result", "raised 'gone'",
                      "gathered [2, 3]"]


@pytest_twisted.ensureDeferred
async def test_run_in_place_reports_a_coroutine_that_breaks_its_contract():
    raised = await deferred_from_coro(_run_in_place_reports(_raises))
    assert [type(c["exception"]) for c in raised] == [ValueError]
    bad_yield = await deferred_from_coro(_run_in_place_reports(_yields_a_non_future))
    assert [str(c["exception"]) for c in bad_yield] == ["run_in_place needs futures"]


def test_a_reply_resolves_once():
    reply = Reply(asyncio.new_event_loop())
    reply.set_result(1)
    with pytest.raises(asyncio.InvalidStateError):
        reply.set_result(2)
    assert not reply.cancel() and reply.result() == 1
    reply.get_loop().close()
