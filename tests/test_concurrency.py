"""Concurrent writers on the embedded database, with real commits (outside the per-test rollback)."""

import asyncio
from pathlib import Path

import httpx2

from api import migrations
from api.app import create_app
from api.db.engine import create_engine
from tests.conftest import settings_for_tests
from tests.factories import PASSWORD


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
