"""The engine set-up on each backend: SQLite pragmas, UTC timestamps, URL spellings, time-ordered ids."""

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.engine import Database, normalize_url, session_factory
from api.db.models import User
from api.db.types import uuid7
from tests.factories import make_user


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


async def test_timestamps_come_back_aware_and_in_utc(database: Database) -> None:
    created = await make_user(database)
    async with database.session() as session:
        row = await session.get_one(User, created.id)
        row.updated_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    async with database.sessions() as session:
        user = await session.get_one(User, created.id)
    assert user.updated_at == datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert user.updated_at.tzinfo == UTC
    assert user.created_at.tzinfo == UTC


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


def test_ids_are_version_7_and_ordered_by_creation() -> None:
    ids = [uuid7() for _ in range(1000)]
    assert {i.version for i in ids} == {7}
    # Ordered across milliseconds; within one millisecond the order is random.
    millis = [i.int >> 80 for i in ids]
    assert millis == sorted(millis)


async def test_a_session_shared_by_concurrent_resolvers_runs_their_statements_in_turn(
    engine: AsyncEngine,
) -> None:
    """GraphQL resolves a query's root fields (and each level's loaders) concurrently, on one session."""
    async with session_factory(engine)() as session:
        first = await asyncio.gather(*(session.scalar(text(f"SELECT {n}")) for n in range(5)))
        again = await asyncio.gather(*(session.execute(text(f"SELECT {n}")) for n in range(5)))
    assert first == [0, 1, 2, 3, 4]
    assert [result.scalar() for result in again] == [0, 1, 2, 3, 4]
