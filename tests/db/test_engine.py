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
from api.db.engine import create_engine, normalize_url, session_factory
from tests.conftest import settings_for_tests
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
