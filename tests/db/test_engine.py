"""The engine set-up on each backend: SQLite pragmas, PostgreSQL's statement timeout, URL
spellings, one session shared by concurrent resolvers, and concurrent writers on SQLite with real
commits (outside the per-test rollback)."""

import asyncio
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api import migrations
from api.app import create_app
from api.db.engine import Database, SessionEnded, create_engine, normalize_url, session_factory
from tests.conftest import asgi_client, fetch_settings, settings_for_tests
from tests.factories import PASSWORD


async def test_sqlite_connections_get_wal_foreign_keys_and_a_busy_timeout(engine: AsyncEngine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    async with engine.connect() as connection:
        pragmas = [
            (await connection.execute(text(f"PRAGMA {name}"))).scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        ]
    assert pragmas == ["wal", 1, 5000]


async def test_postgresql_connections_get_a_statement_timeout(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL settings")
    async with engine.connect() as connection:
        assert (await connection.execute(text("SHOW statement_timeout"))).scalar() == "30s"


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgres://u@h/db", "postgresql+asyncpg"),
        ("postgresql://u@h/db", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg"),
        ("sqlite:///./x.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///./x.db", "sqlite+aiosqlite"),
    ],
)
def test_database_urls_are_mapped_to_the_async_drivers(given: str, driver: str) -> None:
    assert normalize_url(given).drivername == driver


async def test_a_session_shared_by_concurrent_resolvers_runs_their_statements_in_turn(
    engine: AsyncEngine,
) -> None:
    """GraphQL resolves a query's root fields (and each level's loaders) concurrently, on one session."""
    async with session_factory(engine)() as session:
        first = await asyncio.gather(*(session.scalar(text(f"SELECT {n}")) for n in range(5)))
        again = await asyncio.gather(*(session.execute(text(f"SELECT {n}")) for n in range(5)))
    assert first == [0, 1, 2, 3, 4]
    assert [result.scalar() for result in again] == [0, 1, 2, 3, 4]


async def test_concurrent_registrations_on_sqlite_all_succeed(tmp_path: Path) -> None:
    """Each request reads (is the email taken?) and then writes; with deferred transactions the second
    writer would fail at once with "database is locked"."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'concurrent.db'}"
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(migrations.upgrade)
    await engine.dispose()

    app = create_app(settings_for_tests(database_url=url))
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
            responses = await asyncio.gather(
                *(
                    client.post("/api/v1/users", json={"email": f"u{n}@example.com", "password": PASSWORD})
                    for n in range(8)
                )
            )
            assert [r.status_code for r in responses] == [201] * 8
            same = await asyncio.gather(
                *(
                    client.post("/api/v1/users", json={"email": "same@example.com", "password": PASSWORD})
                    for _ in range(4)
                )
            )
            assert sorted(r.status_code for r in same) == [201, 409, 409, 409]


async def _migrated_file_database(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'writers.db'}"
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(migrations.upgrade)
    await engine.dispose()
    return url


async def test_a_hundred_sign_ups_beside_a_hundred_job_starts_on_sqlite_never_see_a_locked_database(
    tmp_path: Path, targets: str
) -> None:
    """Writers take turns in the process (``api.db.writers``), not by SQLite's busy timeout."""
    url = await _migrated_file_database(tmp_path)
    app = create_app(fetch_settings(database_url=url))
    async with app.router.lifespan_context(app), asgi_client(app) as client:
        created = await client.post("/api/v1/users", json={"email": "jobs@example.com", "password": PASSWORD})
        assert created.status_code == 201
        signed_in = await client.post(
            "/api/v1/auth/token", data={"username": "jobs@example.com", "password": PASSWORD}
        )
        token = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        sign_ups = [
            client.post("/api/v1/users", json={"email": f"w{n}@example.com", "password": PASSWORD})
            for n in range(100)
        ]
        starts = [
            client.post("/api/v1/fetch-jobs", json={"urls": [f"{targets}/ok?n={n}"]}, headers=token)
            for n in range(100)
        ]
        responses = await asyncio.gather(*sign_ups, *starts)
        assert sorted({r.status_code for r in responses}) == [201, 202], [
            r.text for r in responses if r.status_code >= 300
        ][:3]
        assert not [r.text for r in responses if "locked" in r.text or r.status_code >= 500]
        listed = await client.get("/api/v1/fetch-jobs", params={"limit": 100}, headers=token)
        assert len(listed.json()["items"]) == 100


async def test_a_read_completes_while_a_writer_holds_the_write_turn(tmp_path: Path) -> None:
    url = await _migrated_file_database(tmp_path)
    database = Database.from_url(url)
    try:
        async with database.session() as writer:
            await writer.execute(
                text(
                    "INSERT INTO rate_limit_windows (key, window_start, hits) "
                    "VALUES ('k', CURRENT_TIMESTAMP, 1)"
                )
            )
            async with asyncio.timeout(1), database.session(read_only=True) as reader:
                assert await reader.scalar(text("SELECT count(*) FROM users")) == 0
            waiting = asyncio.create_task(_write_once(database))
            await asyncio.sleep(0.1)
            assert not waiting.done()  # the second writer waits its turn, in the process
        await asyncio.wait_for(waiting, 1)
    finally:
        await database.dispose()


async def _write_once(database: Database) -> None:
    async with database.session() as session:
        await session.execute(text("DELETE FROM rate_limit_windows"))


async def test_a_statement_after_the_session_block_is_refused_and_holds_nothing(
    live_database: Database,
) -> None:
    """A late caller (a resolver or a DataLoader batch that graphql-core settles in the background,
    after the answer has gone) must not begin a transaction nobody ends: a plain session would, and
    on SQLite that one holds the write lock for good. Here the late statement is refused, no
    connection stays checked out, and the next writer goes through."""
    async with live_database.session() as kept:
        await kept.execute(text("SELECT 1"))
    with pytest.raises(SessionEnded):
        await kept.execute(text("DELETE FROM rate_limit_windows"))
    assert live_database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    await asyncio.wait_for(_write_once(live_database), 2)


async def test_a_statement_queued_behind_the_last_commit_is_refused_too(live_database: Database) -> None:
    """A late caller that asked before the block ended, and waited for its turn behind the block's
    own commit, must not run after it either."""
    async with live_database.session() as session:
        await session.execute(text("SELECT 1"))
        late = asyncio.create_task(session.execute(text("SELECT 1")))
    with pytest.raises(SessionEnded):
        await late
    assert live_database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_statement_cancelled_while_it_runs_leaves_its_connection_usable(database: Database) -> None:
    """graphql-core cancels the siblings of a field that failed, DataLoader batches in the middle of
    their statements included. The cancellation waits for the statement's end: cut off in the
    middle, the connection would be thrown away, and everything sharing it would fail after."""
    slow = text(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) SELECT count(*) FROM n"
    )
    async with database.session() as session:
        running = asyncio.create_task(session.execute(slow))
        await asyncio.sleep(0.02)  # it is running now
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
    async with database.session() as later:
        assert (await later.execute(text("SELECT 2"))).scalar_one() == 2


async def test_direct_reads_take_their_connections_in_arrival_order(live_database: Database) -> None:
    """A reader waiting for a connection is not passed by readers that come after it, as requests
    arrive under load: asyncpg's pool alone hands a released connection to whoever asks next."""
    if live_database.engine.dialect.name != "postgresql":
        pytest.skip("read_value has a pool of its own on PostgreSQL only")
    live_database.direct_pool_size = 1
    done: list[int] = []
    read = text("SELECT 1")

    async def reader(number: int) -> None:
        await live_database.read_value(read, {})
        done.append(number)

    await live_database.read_value(read, {})  # the pool is open
    loop = asyncio.get_running_loop()
    readers: list[asyncio.Task[None]] = []
    all_arrived = asyncio.Event()

    def arrive() -> None:  # a newcomer on every turn of the loop, as a busy server's requests
        readers.append(asyncio.create_task(reader(len(readers))))
        if len(readers) < 200:
            loop.call_soon(arrive)
        else:
            all_arrived.set()

    arrive()
    await all_arrived.wait()
    await asyncio.gather(*readers)
    overtaken = sum(1 for place, number in enumerate(done) if number < place - 1)
    assert overtaken == 0, done
