"""Waiting for what a test expects to happen, rather than sleeping a fixed time and hoping it has.

Where there is an event, a future or a message to await, a test awaits it. Where the state lives
elsewhere (a row, a gauge, another process, a flag of a server in this loop) with nothing to wait on,
``until`` asks again and again until the answer is there or the deadline passes.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

INTERVAL = 0.02


async def until(check: Callable[[], Awaitable[T]], *, within: float = 5.0, what: str = "") -> T:
    """The first truthy answer of ``check``, asked every 20 ms; ``AssertionError`` after ``within``
    seconds (naming ``what``, and the last answer)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        answer = await check()
        if answer:
            return answer
        if asyncio.get_running_loop().time() >= deadline:
            raise AssertionError(f"not within {within} s: {what or check.__name__} (last: {answer!r})")
        await asyncio.sleep(INTERVAL)


async def until_true(holds: Callable[[], T], *, within: float = 5.0, what: str = "") -> T:
    """``until`` for a check that needs no awaiting (a counter, a flag)."""

    async def check() -> T:
        return holds()

    check.__name__ = getattr(holds, "__name__", "check")
    return await until(check, within=within, what=what)


def blocking_until(holds: Callable[[], T], *, within: float = 10.0, what: str = "") -> T:
    """``until_true`` for a synchronous test (one that drives a subprocess, say)."""
    deadline = time.monotonic() + within
    while True:
        answer = holds()
        if answer:
            return answer
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {within} s: {what or holds.__name__} (last: {answer!r})")
        time.sleep(INTERVAL)
