"""SQLite's one writer, taken in turn inside the process rather than fought for with the busy timeout.

SQLite lets one connection write at a time. Left to itself, every writer that finds the lock taken
polls for it (the busy handler) and gives up with "database is locked" after the busy timeout, in
no particular order: under a hundred concurrent sign-ups some wait the whole timeout and fail while
later ones get through. So writers of one process queue on an ``asyncio.Lock`` (first come, first
served) before they emit ``BEGIN IMMEDIATE``, and give it back when their connection goes back to
the pool, which is when the transaction is over whatever ended it: a commit, a rollback, a session
closed, a connection invalidated or garbage-collected. Read-only connections (``BEGIN`` deferred;
WAL lets them read beside a writer) never take it.

A writer that waits longer than ``WRITE_WAIT`` is refused with ``ServiceUnavailable`` (503 with
``Retry-After``): a clear refusal rather than a pool or busy timeout. Another process writing to the
same file still meets the busy timeout, as before.
"""

import asyncio
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_only

from api.errors import ServiceUnavailable

WRITE_WAIT = 10.0  # seconds a writer queues for its turn before it is refused
_HOLDS = "switchboard.holds_write_turn"


class WriteTurns:
    """The write lock of one SQLite engine, held per DBAPI connection (in its pool record's info)."""

    def __init__(self, wait: float = WRITE_WAIT) -> None:
        self.wait = wait
        self.lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def take(self, info: dict[str, Any]) -> None:
        """Wait (inside SQLAlchemy's greenlet) for the turn of the connection whose ``info`` this is;
        a connection that holds it already (a second transaction before it went back) keeps it."""
        if info.get(_HOLDS):
            return
        self._loop = asyncio.get_running_loop()
        try:
            await_only(asyncio.wait_for(self.lock.acquire(), self.wait))
        except TimeoutError:
            raise ServiceUnavailable(f"no SQLite write turn within {self.wait:g} s", retry_after=1) from None
        info[_HOLDS] = True

    def give_back(self, info: dict[str, Any]) -> None:
        """Release the turn of a connection that holds one; safe from any thread (the garbage
        collector may finalize a connection anywhere)."""
        if not info.pop(_HOLDS, False):
            return
        loop = self._loop
        try:
            on_loop = loop is None or asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop or loop is None or loop.is_closed():
            self.lock.release()
        else:
            loop.call_soon_threadsafe(self.lock.release)


def take_write_turns(engine: AsyncEngine, *, read_only_option: str) -> WriteTurns:
    """Make the writers of ``engine`` take turns (see the module's docstring); connections with the
    execution option ``read_only_option`` are readers and do not. Register before the listener
    that emits ``BEGIN IMMEDIATE``, so the turn is taken first."""
    turns = WriteTurns()

    @event.listens_for(engine.sync_engine, "begin")
    def _take(connection: Any) -> None:
        if not connection.get_execution_options().get(read_only_option, False):
            turns.take(connection.info)

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _give_back(_dbapi_connection: Any, record: ConnectionPoolEntry | None) -> None:
        if record is not None:
            turns.give_back(record.info)

    @event.listens_for(engine.sync_engine.pool, "invalidate")
    def _invalidated(_dbapi_connection: Any, record: ConnectionPoolEntry, _exc: Any) -> None:
        turns.give_back(record.info)

    return turns
