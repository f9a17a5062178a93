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
from api.services import events
from api.services.events import UserEventKind
from tests.conftest import POSTGRES_URL, fetch_settings, settings_for_tests
from tests.factories import PASSWORD, bearer, make_user
from tests.processes import free_port
from tests.sockets import PROTOCOLS, socket, subscribed
from tests.targets import gate, serving
from tests.waiting import until, until_true


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


async def test_a_rest_list_answers_again_by_itself_once_postgres_is_back(
    engine: AsyncEngine, bus: Bus
) -> None:
    """Only list reads, which the compiled path answers: the first one after the blink goes to the
    service, whose commit ends the outage (the compiled path alone refuses during one)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the PostgreSQL run")
    async with proxied(engine) as (proxy, url):
        database = Database.of(create_engine(url, pool_size=3, max_overflow=0), bus=bus)
        admin = await make_user(database, admin=True)
        async with app_on(database) as client:
            headers = bearer(settings_for_tests(), admin)
            assert (await client.get("/api/v1/users", headers=headers)).status_code == 200
            await proxy.stop()
            try:
                refused = await client.get("/api/v1/users", headers=headers)
                assert refused.status_code == 503, refused.text
            finally:
                await proxy.start()

            async def listed() -> bool:
                return (await client.get("/api/v1/users", headers=headers)).status_code == 200

            await until(listed, within=10, what="the list to answer again")
            assert database.outage.since is None
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


JOB_STATUS = "subscription ($id: ID!) { fetchJobEvents(id: $id) { job { status } } }"


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs SWITCHBOARD_TEST_POSTGRES_URL")
async def test_live_streams_and_a_running_job_ride_out_a_postgres_outage(
    engine: AsyncEngine, bus: Bus, live_database: Database, targets: str, caplog: pytest.LogCaptureFixture
) -> None:
    """While the database is away: a subscription whose event cannot be read ends with
    ``SERVICE_UNAVAILABLE`` (the socket stays open), a new event stream is a 503, and a job whose
    result cannot be written stops with one warning; once it is back, the job is taken over and
    finishes, nothing lost, a job stream opened before the outage follows it to the end, and
    nothing along the way was logged as a bug."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the PostgreSQL run")
    caplog.set_level(logging.INFO, "switchboard")
    admin, user = await make_user(live_database, admin=True), await make_user(live_database)
    async with proxied(engine) as (proxy, url), gate(targets) as page:
        database = Database.of(create_engine(url, pool_size=3, max_overflow=0), bus=bus)
        app = create_app(fetch_settings(fetch_job_lease=1.0), database=database)
        async with (
            serving(app, lifespan="on") as base,
            httpx2.AsyncClient(base_url=base) as client,
            socket(base, PROTOCOLS[0]) as ws,
            socket(base, PROTOCOLS[0]) as follower,
        ):
            headers = bearer(app.state.settings, user)
            started = await client.post("/api/v1/fetch-jobs", json={"urls": [page.url]}, headers=headers)
            assert started.status_code == 202, started.text
            job = started.json()["id"]
            await until_true(lambda: page.arrived == 1, what="the job to fetch its page")
            await ws.init(bearer(app.state.settings, admin))
            await ws.subscribe("1", "subscription { userEvents { kind user { email } } }")
            await follower.init(headers)
            await follower.subscribe("1", JOB_STATUS, {"id": started.json()["node_id"]})
            assert (await follower.next("1"))["data"]["fetchJobEvents"]["job"]["status"] == "RUNNING"
            await subscribed(app, 3)  # the two, and the runner's watch over its job

            await proxy.stop()
            try:
                async with live_database.session() as session:  # the bus and the test still reach it
                    newcomer = User(email="during@example.com", password_hash="-")
                    session.add(newcomer)
                    await session.flush()
                    await events.user_changed(session, kind=UserEventKind.CREATED, user=newcomer)
                told = await asyncio.wait_for(ws.receive(), 5)  # the operation ends with the code
                errors = told["payload"] if told["type"] == "error" else told["payload"]["errors"]
                assert [e["extensions"]["code"] for e in errors] == ["SERVICE_UNAVAILABLE"], told
                if told["type"] == "next":
                    assert (await asyncio.wait_for(ws.receive(), 5))["type"] == "complete"

                stream = await client.get(f"/api/v1/fetch-jobs/{job}/events", headers=headers)
                assert stream.status_code == 503, stream.text
                assert stream.headers["retry-after"] == "2"

                page.open()  # its result cannot be written now
                await until_true(
                    lambda: any("stopped on a database error" in r.getMessage() for r in caplog.records),
                    what="the job to stop on the outage",
                )
            finally:
                await proxy.start()

            async def done() -> dict[str, Any]:
                answer = (await client.get(f"/api/v1/fetch-jobs/{job}", headers=headers)).json()
                return answer if answer.get("status") == "DONE" else {}

            finished = await until(done, within=10, what="the job to be taken over and finish")
            assert finished["completed"] == finished["total"] == 1
            seen = [(await follower.next("1"))["data"]["fetchJobEvents"]["job"]["status"]]
            while seen[-1] != "DONE":  # the stream opened before the outage follows the job to its end
                seen.append(
                    (await asyncio.wait_for(follower.next("1"), 5))["data"]["fetchJobEvents"]["job"]["status"]
                )
            await ws.subscribe("2", "subscription { userEvents { kind } }")  # the socket serves on
            await subscribed(app, 1)
        await database.dispose()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in caplog.records
    ]
