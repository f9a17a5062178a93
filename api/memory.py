"""Giving memory back to the system once a crowd of sockets has gone.

A thousand sockets hold some 80 MB between them (buffers, tasks, handlers). What a closed socket held
is mostly reference cycles (a cancelled task's exception and traceback hold its frames, which hold
the task): only the cyclic collector frees them, and it runs on allocations, which stop when the
sockets have gone. So the garbage stays, and RSS at its peak, until the next burst of work. Once a
burst of closes has settled, this collects it, and asks glibc's allocator to hand the free pages
back (``malloc_trim``; other C libraries get the collection only). A full collection costs some
milliseconds for a large heap: it runs once, a moment after the last close, never per socket.
"""

import asyncio
import ctypes
import ctypes.util
import gc
import math
import time
from collections.abc import Callable

SETTLE_SECONDS = 1.0  # a burst of closes ends when none came for this long
MIN_GAP_SECONDS = 30.0


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or ``None`` on a C library without it (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim  # type: ignore[no-any-return]


class Trimmer:
    """Collects and trims the heap once the closes it was told of have settled, and not more often
    than once every ``min_gap`` seconds (a collection blocks the event loop while it runs)."""

    def __init__(
        self,
        trim: Callable[[int], int] | None = None,
        settle: float = SETTLE_SECONDS,
        min_gap: float = MIN_GAP_SECONDS,
    ) -> None:
        self.trim = trim if trim is not None else _malloc_trim()
        self.settle, self.min_gap = settle, min_gap
        self.trims = 0
        self._last = -math.inf
        self._pending: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def released(self) -> None:
        """Something large was let go (a socket closed): collect and trim once things are quiet."""
        loop = asyncio.get_running_loop()
        if self._pending is not None and self._loop is loop:  # another loop's timer is its own
            self._pending.cancel()
        wait = max(self.settle, self._last + self.min_gap - time.monotonic())
        self._loop, self._pending = loop, loop.call_later(wait, self._run)

    def _run(self) -> None:
        self._pending = None
        self._last = time.monotonic()
        gc.collect()
        if self.trim is not None:
            self.trim(0)
        self.trims += 1


trimmer = Trimmer()
