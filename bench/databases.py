"""A fresh database for a benchmark: created if missing (PostgreSQL), emptied, migrated by alembic."""

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from api import migrations
from api.db.engine import create_engine


async def fresh(url: str) -> None:
    """Rebuild the schema at ``url`` from the migrations. A PostgreSQL database that does not exist is
    created; one holding tables that are not ours is refused, since its ``public`` schema is dropped."""
    target = make_url(url)
    if target.get_backend_name() == "postgresql":
        server = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        async with server.connect() as connection:
            exists = await connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            )
            if not exists:
                await connection.execute(text(f'CREATE DATABASE "{target.database}"'))
        await server.dispose()
    engine = create_engine(url)
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            if foreign := await connection.run_sync(migrations.foreign_tables):
                raise SystemExit(f"bench: {target.database} holds tables not ours: {sorted(foreign)}")
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
        await connection.run_sync(migrations.upgrade)
    await engine.dispose()
