"""Alembic owns the schema: it migrates both ways, and the models match what it builds."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from api import migrations
from api.db.base import Base


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_upgrade_downgrade_upgrade(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        transaction = await connection.begin()  # DDL is transactional on both: nothing outlives the test
        await connection.run_sync(migrations.downgrade, "base")
        assert await connection.run_sync(_tables) <= {"alembic_version"}
        await connection.run_sync(migrations.upgrade, "head")
        assert {"users", "alembic_version"} <= await connection.run_sync(_tables)
        await transaction.rollback()


async def test_autogenerate_finds_no_difference(engine: AsyncEngine) -> None:
    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []
