"""Engine and session factory for SQLite (embedded default) and PostgreSQL (production)."""

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar, cast

import asyncpg
from sqlalchemy import event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql import Executable

from api.db.hooks import Publisher, echo_to, publish_with
from api.db.outages import Outage, report_connect_errors
from api.db.pool import measured_pool
from api.db.writers import take_write_turns
from api.errors import DomainError

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
    "PRAGMA synchronous=NORMAL",
)
# Seconds one statement may run; the app's engines take GRAPHQL_TIMEOUT, the time one operation has.
STATEMENT_TIMEOUT = 30.0
COMPILED_STATEMENTS = 4096  # read_value's statements, least recently used dropped first
DIRECT_CONNECT_TIMEOUT = 5.0  # seconds for one of read_value's connections to open


def server_settings(statement_timeout: float) -> dict[str, str]:
    return {"statement_timeout": str(round(statement_timeout * 1000)), "timezone": "UTC"}


# read_value's statements are planned once per connection: each compiled read is built for the
# arguments a request gives (``api.services.reads``), so its generic plan is as good as one made for
# the request's values, and PostgreSQL's default would make such a plan anew for each execution (it
# judges the generic one by a guess at ``LIMIT $1``).
DIRECT_SETTINGS = {"plan_cache_mode": "force_generic_plan"}
READ_ONLY = "switchboard_read_only"
T = TypeVar("T")


def normalize_url(raw: str) -> URL:
    """Map the URL spellings people paste (``postgres://``, ``sqlite://``) to the async drivers."""
    url = make_url(raw)
    if url.drivername in {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}:
        return url.set(drivername="postgresql+asyncpg")
    if url.drivername == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    return url


def create_engine(
    raw_url: str, *, pool_size: int = 10, max_overflow: int = 10, statement_timeout: float = STATEMENT_TIMEOUT
) -> AsyncEngine:
    url = normalize_url(raw_url)
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url, **measured_pool(url))
        _configure_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {"server_settings": server_settings(statement_timeout)}
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        connect_args=connect_args,
        **measured_pool(url),
    )
    report_connect_errors(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Set the pragmas on every new connection and let SQLAlchemy, not the driver, begin transactions.

    The sqlite3 module opens transactions on its own terms, which breaks SAVEPOINT and transactional DDL;
    turning that off and emitting BEGIN ourselves is SQLAlchemy's documented remedy. It is ``BEGIN
    IMMEDIATE``: a request reads before it writes, and a deferred transaction that later needs the write
    lock fails at once with "database is locked" when another holds it, busy timeout or not. Taking the
    lock up front makes concurrent writers wait their turn instead (readers are not blocked in WAL mode).
    A connection with the ``READ_ONLY`` execution option begins a plain deferred transaction.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    if engine.url.database not in (None, "", ":memory:"):  # one writer at a time, in turn (api/db/writers.py)
        take_write_turns(engine, read_only_option=READ_ONLY)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


async def _kept_as_is(_connection: "asyncpg.Connection[Any]") -> None:
    """``read_value``'s connections go back to their pool as they are: a single read statement in
    autocommit leaves nothing to undo, and asyncpg's own reset is a round trip per request."""


class SessionEnded(RuntimeError):
    """A statement on a session whose block is over (a bug of the caller's, reported as one)."""


class SerialSession(AsyncSession):
    """An ``AsyncSession`` that runs one statement at a time, whoever asks.

    A GraphQL operation shares its session among resolvers that graphql-core runs concurrently (the
    root fields of a query, DataLoaders of one level); a plain ``AsyncSession`` fails then ("concurrent
    operations are not permitted"). Each method that enters the synchronous session waits its turn
    here; ``scalars`` and ``stream_scalars`` go through ``execute`` and ``stream``.
    """

    _turn: asyncio.Lock | None = None
    _ended = False

    def end(self) -> None:
        """No statement after this one: the block that owned the session is over (``Database.session``).

        A plain session would begin a new transaction for a late caller, a resolver or a DataLoader
        batch that graphql-core lets finish in the background after the answer has gone, and nobody
        would end it: a pooled connection lost, and on SQLite the write lock held for good."""
        self._ended = True

    @asynccontextmanager
    async def _serial(self) -> AsyncIterator[None]:
        if self._turn is None:
            self._turn = asyncio.Lock()
        async with self._turn:
            if self._ended:  # checked once it is this caller's turn: it may have ended meanwhile
                raise SessionEnded("this session's request or event is over; it runs no more statements")
            yield

    async def _settled(self, statement: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """``statement`` run in its turn and to its end: a cancellation that arrives meanwhile (graphql-core
        cancels the siblings of a field that failed, a client goes away) takes effect once it is over.

        Cancelled in the middle, SQLAlchemy cannot know what state the connection is in, so it throws it
        away, and a session or a test's transaction sharing it fails from then on. A statement is bounded
        by ``statement_timeout``, so the wait is too.
        """
        async with self._serial():
            running = asyncio.ensure_future(statement())
            try:
                return await asyncio.shield(running)
            except asyncio.CancelledError:
                while not running.done():  # cancelled again meanwhile: still to its end
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait({running})
                if not running.cancelled():
                    running.exception()  # its failure, if any, is taken: the caller is told it was cancelled
                raise

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return await self._settled(partial(super().execute, *args, **kwargs))

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return await self._settled(partial(super().scalar, *args, **kwargs))

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        return await self._settled(partial(super().get, *args, **kwargs))

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        return await self._settled(partial(super().stream, *args, **kwargs))

    async def flush(self, *args: Any, **kwargs: Any) -> None:
        await self._settled(partial(super().flush, *args, **kwargs))

    async def delete(self, instance: object) -> None:
        await self._settled(partial(super().delete, instance))

    async def refresh(self, *args: Any, **kwargs: Any) -> None:
        await self._settled(partial(super().refresh, *args, **kwargs))

    async def commit(self) -> None:
        await self._settled(partial(super().commit))

    async def rollback(self) -> None:
        await self._settled(partial(super().rollback))


@asynccontextmanager
async def outside_transaction(session: AsyncSession) -> AsyncIterator[None]:
    """Commit, and let nothing begin another transaction on ``session`` until the block ends.

    For work that waits on the network: no transaction (on SQLite, no write lock; on PostgreSQL, no
    pooled connection) may stay open meanwhile, and other resolvers sharing a ``SerialSession``
    wait their turn rather than open one.
    """
    if isinstance(session, SerialSession):
        async with session._serial():
            await AsyncSession.commit(session)
            yield
    else:
        await session.commit()
        yield


def session_factory(bind: AsyncEngine | AsyncConnection, **options: Any) -> async_sessionmaker[AsyncSession]:
    """Sessions as the app uses them: serial, and not expiring objects on commit (a response is
    built from them after the commit)."""
    return async_sessionmaker(bind, class_=SerialSession, expire_on_commit=False, **options)


class Database:
    """An engine, its session factories and the bus its sessions publish to (``bus``: none for one
    that announces nothing, as the CLI's). The app's lifespan owns one, a test may bring its own."""

    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        reads: async_sessionmaker[AsyncSession] | None = None,
        *,
        bus: Publisher | None = None,
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        # Sessions that only read: on SQLite their transactions begin deferred, so they neither take
        # nor wait for the write lock (WAL lets them read beside a writer). A thousand subscribers
        # signing in at once would otherwise queue on that lock past the busy timeout.
        self.reads = reads or sessions
        self.bus = bus
        # Who in this process hears at once of the events its own sessions publish (``hooks.echo_to``):
        # the sign-in cache of each app using this database.
        self.listeners: list[Callable[[Any], None]] = []
        self.direct_pool_size = 10
        self.statement_timeout = STATEMENT_TIMEOUT  # read_value's, as its engine's
        self._direct: asyncpg.Pool[Any] | None = None  # read_value's, opened on first use
        self._direct_turns: asyncio.Semaphore | None = None  # its connections, taken in arrival order
        self._opening = asyncio.Lock()
        self.direct_reads = 0  # statements ``read_value`` sent to asyncpg itself
        self._compiled: OrderedDict[int, tuple[Executable, str, tuple[str, ...]]] = OrderedDict()
        self.outage = Outage()  # told by the transports when they refuse a request for the database

    @classmethod
    def from_url(
        cls,
        raw_url: str,
        *,
        bus: Publisher | None = None,
        pool_size: int = 10,
        max_overflow: int = 10,
        statement_timeout: float = STATEMENT_TIMEOUT,
    ) -> "Database":
        engine = create_engine(
            raw_url, pool_size=pool_size, max_overflow=max_overflow, statement_timeout=statement_timeout
        )
        database = cls.of(engine, bus=bus)
        database.statement_timeout = statement_timeout
        # As large as the engine's pool, beside it: on a worker that mostly reads, the compiled reads
        # are most of its statements. A worker may then hold 2 * pool_size + max_overflow connections.
        database.direct_pool_size = pool_size
        return database

    @classmethod
    def of(cls, engine: AsyncEngine, *, bus: Publisher | None = None) -> "Database":
        """Sessions of ``engine``: ones that write, and ones that only read."""
        reads = session_factory(engine.execution_options(**{READ_ONLY: True}))
        return cls(engine, session_factory(engine), reads, bus=bus)

    @asynccontextmanager
    async def session(self, *, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits when the block succeeds and rolls back when it raises,
        unless what it raises is a refusal that keeps its changes (``DomainError.keeps_changes``).
        ``read_only``: one that will not write (``reads``)."""
        async with (self.reads if read_only else self.sessions)() as session:
            if self.bus is not None:
                publish_with(session, self.bus)
            if self.listeners:
                echo_to(session, self._echo)
            try:
                try:
                    yield session
                except DomainError as exc:
                    await (session.commit() if exc.keeps_changes else session.rollback())
                    raise
                except BaseException:
                    await session.rollback()
                    raise
                if session.in_transaction():  # one that never read needs no round trip
                    await session.commit()
                    self.outage.recovered()
            finally:
                cast(SerialSession, session).end()

    def _echo(self, event: Any) -> None:
        for listener in self.listeners:
            listener(event)

    async def read_value(self, statement: Executable, parameters: dict[str, Any]) -> Any:
        """The one value of a statement that only reads, with no transaction around it: one round trip
        (a session's would add its BEGIN and COMMIT). Sessions bound to one connection (a test's, in
        its transaction) read on that connection.

        On PostgreSQL it goes straight to asyncpg, on a pool of its own (``direct_pool_size``
        connections, the engine's server settings): the statement compiled once, prepared once per
        connection by asyncpg's cache. Checking a connection out of SQLAlchemy's pool and through
        its layers costs more than the rest of a compiled read. A driver error is a ``DBAPIError``,
        as SQLAlchemy's would be, so database trouble reads the same to the callers."""
        bind = self.reads.kw.get("bind")
        if isinstance(bind, AsyncConnection):
            return (await bind.execute(statement, parameters)).scalar_one()
        if self.engine.dialect.name != "postgresql":
            async with self.engine.connect() as connection:
                return (await connection.execute(statement, parameters)).scalar_one()
        sql, names = self._driver_sql(statement)
        if self.outage.since is not None:  # no connection attempt to wait out: the caller falls back
            down = ConnectionError("the database is unavailable")
            raise DBAPIError(sql, None, down, connection_invalidated=True)
        try:
            pool, turns = await self._open_direct()
            async with turns, pool.acquire() as connection:
                value = await connection.fetchval(sql, *(parameters[name] for name in names))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise DBAPIError(
                sql, None, exc, connection_invalidated=not isinstance(exc, asyncpg.PostgresError)
            ) from exc
        self.direct_reads += 1
        self.outage.recovered()
        return value

    def _driver_sql(self, statement: Executable) -> tuple[str, tuple[str, ...]]:
        known = self._compiled.get(id(statement))
        if known is not None and known[0] is statement:
            self._compiled.move_to_end(id(statement))
        else:
            compiled = statement.compile(dialect=self.engine.dialect)  # type: ignore[attr-defined]
            names = tuple(compiled.positiontup or ())
            known = self._compiled[id(statement)] = (statement, compiled.string, names)
            if len(self._compiled) > COMPILED_STATEMENTS:
                self._compiled.popitem(last=False)
        return known[1], known[2]

    async def _open_direct(self) -> "tuple[asyncpg.Pool[Any], asyncio.Semaphore]":
        """``read_value``'s pool and the turns its callers take. asyncpg's pool hands a released
        connection to whoever asks next, a waiter woken for it or a newcomer, and a waiter that lost
        it waits again at the back: under load some requests waited for tens of milliseconds while
        others went straight through. Waiting on a semaphore of the pool's size first, in arrival
        order, leaves the pool a free connection for everyone who reaches it."""
        if self._direct is not None and self._direct_turns is not None:
            return self._direct, self._direct_turns
        async with self._opening:
            if self._direct is None:
                url = self.engine.url.set(drivername="postgresql")
                self._direct = await asyncpg.create_pool(
                    url.render_as_string(hide_password=False),
                    min_size=1,
                    max_size=self.direct_pool_size,
                    timeout=DIRECT_CONNECT_TIMEOUT,
                    server_settings={**server_settings(self.statement_timeout), **DIRECT_SETTINGS},
                    reset=_kept_as_is,
                )
                self._direct_turns = asyncio.Semaphore(self.direct_pool_size)
        assert self._direct_turns is not None
        return self._direct, self._direct_turns

    async def ping(self) -> bool:
        """Whether the database answers a trivial query."""
        try:
            async with self.engine.connect() as connection:
                await connection.execution_options(**{READ_ONLY: True})
                await connection.execute(text("SELECT 1"))
        except (OSError, SQLAlchemyError):
            return False
        self.outage.recovered()
        return True

    async def release(self) -> None:
        """Close what this object opened beside its engine (``read_value``'s pool), for an owner that
        keeps the engine (a test's)."""
        if self._direct is not None:
            await self._direct.close()
            self._direct = self._direct_turns = None

    async def dispose(self) -> None:
        await self.release()
        await self.engine.dispose()
