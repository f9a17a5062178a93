"""A database that goes away and comes back: 503s with ``Retry-After`` on both transports, one warning
line per outage, recovery without a restart, and nothing acknowledged lost.

PostgreSQL is reached through a TCP proxy in the test, which the test stops (closing its listener and
cutting the live connections) and starts again on the same port. SQLite cannot go away that way: its
outage is a pool whose only connection is held, and a write lock held past the busy timeout.
"""

import asyncio
import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from api.app import create_app
from api.bus import Bus
from api.db.base import Base
from api.db.engine import Database, _configure_sqlite, create_engine
from api.db.models import User
from api.db.outages import Outage, unavailable
from api.db.pool import measured_pool
from api.errors import Overloaded, ServiceUnavailable
from tests.conftest import POSTGRES_URL, settings_for_tests
from tests.factories import PASSWORD
from tests.processes import free_port
from tests.waiting import until


class Proxy:
    """A TCP forwarder on 127.0.0.1 to ``upstream``: the database as the app sees it, which the
    test can take away (``stop``) and bring back on the same port (``start``)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


@asynccontextmanager
async def proxied(engine: AsyncEngine) -> AsyncIterator[tuple[Proxy, str]]:
    url = engine.url
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
    await proxy.start()
    try:
        yield proxy, url.set(port=proxy.port).render_as_string(hide_password=False)
    finally:
        await proxy.stop()


@asynccontextmanager
async def app_on(database: Database) -> AsyncIterator[httpx2.AsyncClient]:
    app: FastAPI = create_app(settings_for_tests(), database=database)
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    async with database.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(table.delete())


async def sign_up(client: httpx2.AsyncClient) -> tuple[str, httpx2.Response]:
    email = f"u{uuid.uuid4().hex[:12]}@example.com"
    return email, await client.post("/api/v1/users", json={"email": email, "password": PASSWORD})


REGISTER = "mutation($input: RegisterInput!) { register(input: $input) { user { id } } }"


async def register(client: httpx2.AsyncClient, **headers: str) -> httpx2.Response:
    variables = {"input": {"email": f"g{uuid.uuid4().hex[:12]}@example.com", "password": PASSWORD}}
    return await client.post("/graphql", json={"query": REGISTER, "variables": variables}, headers=headers)


def assert_refused(rest: httpx2.Response, graphql: httpx2.Response) -> None:
    assert rest.status_code == 503, rest.text
    assert rest.headers["content-type"] == "application/problem+json"
    assert rest.headers["retry-after"] == "2"
    problem = rest.json()
    assert (problem["status"], problem["code"], problem["retry_after"]) == (503, "SERVICE_UNAVAILABLE", 2)
    assert graphql.status_code == 503, graphql.text
    assert graphql.headers["retry-after"] == "2"
    (error,) = graphql.json()["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert error["extensions"]["retryAfter"] == 2
    assert error["message"] == problem["detail"]  # the 503's words, never the driver's


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "switchboard.db" or r.levelno >= logging.ERROR]


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs SWITCHBOARD_TEST_POSTGRES_URL")
async def test_postgres_going_away_is_a_503_logged_once_and_recovers_with_nothing_acknowledged_lost(
    engine: AsyncEngine, bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the PostgreSQL run")
    caplog.set_level(logging.INFO, "switchboard")
    async with proxied(engine) as (proxy, url):
        database = Database.of(create_engine(url, pool_size=3, max_overflow=0), bus=bus)
        async with app_on(database) as client:
            assert (await sign_up(client))[1].status_code == 201
            acknowledged: list[str] = []
            answers: list[int] = []
            blinking = True

            async def keep_signing_up() -> None:
                while blinking:
                    email, response = await sign_up(client)
                    answers.append(response.status_code)
                    if response.status_code == 201:
                        acknowledged.append(email)

            writers = [asyncio.create_task(keep_signing_up()) for _ in range(3)]
            await until(lambda: asyncio.sleep(0, len(answers) > 5), what="sign-ups before the blink")
            caplog.clear()
            await proxy.stop()
            try:
                # Pooled connections that are cut, then connections that are refused.
                for _ in range(3):
                    assert_refused((await sign_up(client))[1], await register(client))
                await asyncio.sleep(1)
                assert_refused((await sign_up(client))[1], await register(client))
            finally:
                await proxy.start()
            await until(lambda: asyncio.sleep(0.05, answers[-1] == 201), what="sign-ups to succeed again")
            blinking = False
            await asyncio.gather(*writers)
            assert set(answers) == {201, 503}  # no 500, no dropped connection
            assert (await register(client)).status_code == 200

            lines = outage_lines(caplog)
            assert [r.levelname for r in lines] == ["WARNING", "INFO"], [r.getMessage() for r in lines]
            assert lines[0].getMessage().startswith("database unavailable: ")
            assert lines[0].exc_info is None
            assert lines[1].getMessage().startswith("database back after ")
            async with database.session() as session:
                stored = set(await session.scalars(select(User.email).where(User.email.in_(acknowledged))))
            assert acknowledged
            assert stored == set(acknowledged)
        await database.dispose()


async def test_sqlite_out_of_connections_is_a_503_logged_once_and_recovers(
    engine: AsyncEngine, bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    """The pool's one connection held by someone else: a pool timeout, refused, then served."""
    if engine.dialect.name != "sqlite":
        pytest.skip("the SQLite run")
    caplog.set_level(logging.INFO, "switchboard")
    small = create_async_engine(
        engine.url, pool_size=1, max_overflow=0, pool_timeout=0.2, **measured_pool(engine.url)
    )
    _configure_sqlite(small)
    database = Database.of(small, bus=bus)
    async with app_on(database) as client:
        assert (await sign_up(client))[1].status_code == 201
        caplog.clear()
        async with small.connect() as held:
            await held.execute(text("SELECT 1"))
            assert_refused((await sign_up(client))[1], await register(client))
            assert_refused((await sign_up(client))[1], await register(client))
        assert (await sign_up(client))[1].status_code == 201
        lines = outage_lines(caplog)
        assert [r.levelname for r in lines] == ["WARNING", "INFO"], [r.getMessage() for r in lines]
        assert "QueuePool limit" in lines[0].getMessage()
        assert lines[1].getMessage().endswith(", 4 requests refused")
    await small.dispose()


async def _raised(engine: AsyncEngine, *statements: str) -> BaseException:
    """What running ``statements`` on a new connection of ``engine`` raised."""
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    except (SQLAlchemyError, OSError) as exc:
        return exc
    raise AssertionError(f"{statements} ran")


async def test_database_trouble_is_told_apart_from_bugs(engine: AsyncEngine, tmp_path: Any) -> None:
    """Real failures of each kind, classified: trouble is a 503, a missing table is a bug."""
    assert unavailable(await _raised(engine, "SELECT * FROM no_such_table")) is None
    if engine.dialect.name == "postgresql":
        timeout = await _raised(engine, "SET LOCAL statement_timeout = 50", "SELECT pg_sleep(1)")
        assert unavailable(timeout) is not None
        closed = create_engine(engine.url.set(port=free_port()).render_as_string(hide_password=False))
        refused = await _raised(closed)
        assert isinstance(refused, SQLAlchemyError)  # not the bare ConnectionRefusedError
        assert unavailable(refused) is not None
        await closed.dispose()
        return
    path = tmp_path / "locked.db"
    locked = create_engine(f"sqlite+aiosqlite:///{path}")

    @event.listens_for(locked.sync_engine, "connect")
    def _short_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=50")

    async with locked.begin() as connection:
        await connection.execute(text("CREATE TABLE t (x INTEGER)"))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        busy = await _raised(locked, "INSERT INTO t VALUES (1)")
    finally:
        holder.rollback()
        holder.close()
    assert "database is locked" in str(busy)
    assert unavailable(busy) is not None
    await locked.dispose()
    missing = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    assert unavailable(await _raised(missing)) is not None
    await missing.dispose()


def test_a_bound_of_ours_that_is_full_is_no_database_outage(caplog: pytest.LogCaptureFixture) -> None:
    """Every hashing slot busy is a 503 to the client, but the database's outage log says nothing."""
    outage = Outage()
    outage.refuse(Overloaded("every password-hashing slot is busy"))
    assert outage.since is None
    assert not caplog.records
    outage.refuse(ServiceUnavailable("ConnectionRefusedError: refused"))
    assert outage.since is not None
