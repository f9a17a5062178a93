"""Database trouble, told apart from bugs, and logged once per outage.

A database that refuses connections, drops them, runs out of them, cancels a statement on its
timeout, or (SQLite) stays locked past the busy timeout is no fault of the request: the answer is a
503 (``ServiceUnavailable``) the client may retry, and the log gets one line when the trouble starts
and one when it is over, not a traceback per request. What counts was found by making each happen
(``tests/test_outages.py``):

- a connection cut under a pooled or busy connection: ``DBAPIError`` with ``connection_invalidated``
  (asyncpg's ``ConnectionDoesNotExistError``, SQLSTATE 08003);
- connection refused: asyncpg raises the bare ``ConnectionRefusedError`` from ``connect``, which
  SQLAlchemy does not wrap; ``report_connect_errors`` makes it a ``DBAPIError`` with SQLSTATE 08001,
  so that every database failure is a ``SQLAlchemyError`` (the job runner relies on it);
- a statement timeout (57014), too many connections (53300), an administrator's shutdown or a server
  starting up (57P01, 57P03), a lock timeout (55P03): SQLSTATE classes 08, 53, 57, 58 and 55P03;
- the pool's own timeout: ``sqlalchemy.exc.TimeoutError``;
- SQLite: ``SQLITE_BUSY``/``SQLITE_LOCKED`` ("database is locked"), ``SQLITE_CANTOPEN``,
  ``SQLITE_IOERR``, ``SQLITE_FULL``. Its other ``OperationalError``s ("no such table") are bugs.
"""

import logging
import sqlite3
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import Overloaded, ServiceUnavailable

logger = logging.getLogger("switchboard.db")

_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")  # connection, resources, operator intervention, system
_UNAVAILABLE_STATES = frozenset({"55P03"})  # lock_not_available (lock_timeout)
_SQLITE_UNAVAILABLE = frozenset(
    {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN}
    | {sqlite3.SQLITE_FULL}
)
CONNECT_FAILED = "08001"  # sqlclient_unable_to_establish_sqlconnection
_REASON_LENGTH = 200


def _is_unavailable(error: BaseException) -> bool:
    if isinstance(error, PoolTimeout):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    state = getattr(error, "sqlstate", None)
    if isinstance(state, str):
        return state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_STATES
    if isinstance(error, sqlite3.Error):
        return getattr(error, "sqlite_errorcode", 0) & 0xFF in _SQLITE_UNAVAILABLE
    return False


def unavailable(exc: BaseException) -> ServiceUnavailable | None:
    """The 503 that ``exc`` stands for when it (or the driver error it wraps) is database trouble,
    else ``None``: a bug, to be masked and logged as one."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ServiceUnavailable):
            return error
        if _is_unavailable(error):
            return ServiceUnavailable(_reason(error))
        if isinstance(error, DBAPIError) and error.orig is not None:
            error = error.orig
        else:
            error = error.__cause__ or error.__context__
    return None


def _reason(error: BaseException) -> str:
    """The driver's words, without the SQL that SQLAlchemy appends."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        error = error.orig.__cause__ or error.orig  # the driver's own exception, under its adapter's
    text = str(error).split("\n", 1)[0][:_REASON_LENGTH]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def report_connect_errors(engine: AsyncEngine) -> None:
    """Make a connection that cannot be opened (refused, unreachable, timed out: ``OSError`` from
    the driver) a DBAPI ``OperationalError`` with SQLSTATE 08001, which SQLAlchemy wraps like any
    other: so nothing else needs to know that asyncpg raises ``OSError`` from ``connect``."""

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except OSError as exc:
            error = dialect.loaded_dbapi.OperationalError(f"cannot connect: {exc}")
            error.sqlstate = error.pgcode = CONNECT_FAILED
            raise error from exc


class Outage:
    """One database's trouble as the log tells it: a warning when the first request is refused, the
    later ones counted silently, and an info line when a session succeeds again."""

    def __init__(self) -> None:
        self.since: float | None = None
        self.refused = 0

    def refuse(self, refusal: ServiceUnavailable, *, request: bool = True) -> None:
        """Note a refusal (``request``: one answered 503, rather than background work that failed);
        one for a bound of ours (``Overloaded``) is not the database's and is not noted."""
        if isinstance(refusal, Overloaded):
            return
        if self.since is None:
            self.since, self.refused = time.monotonic(), 0
            logger.warning("database unavailable: %s", refusal.reason)
        self.refused += request

    def refusal_for(self, exc: BaseException, *, request: bool = True) -> ServiceUnavailable | None:
        """The 503 that ``exc`` stands for, noted as ``refuse`` notes it; ``None`` for a bug."""
        down = unavailable(exc)
        if down is not None:
            self.refuse(down, request=request)
        return down

    def recovered(self) -> None:
        """The database answered: if it was out, say for how long."""
        if self.since is not None:
            took, self.since = time.monotonic() - self.since, None
            logger.info("database back after %.1f s, %d requests refused", took, self.refused)
