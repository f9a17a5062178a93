"""Each GraphQL operation has GRAPHQL_TIMEOUT: past it, it stops with TIMEOUT (a 504 under GraphQL
over HTTP's media type) and what it wrote is rolled back. A one-shot fetch is bounded by the fetch
limits instead, and runs past it."""

import asyncio

import pytest
from sqlalchemy import text

from api.db.engine import Database
from api.graphql.compiled import GRAPHQL_RESPONSE
from tests.conftest import asgi_client, fetch_settings, running_app
from tests.factories import bearer, make_user

RENAME = 'mutation { updateMe(input: {displayName: "Renamed"}) { displayName } }'


async def test_an_operation_past_its_time_stops_and_keeps_nothing(live_database: Database) -> None:
    """The rename waits on a row another transaction holds, past the operation's half second. The
    app opens its own engine, whose statements have the operation's time too: the statement that
    waits ends by itself (a session lets a statement end before the cancellation takes effect)."""
    if live_database.engine.dialect.name != "postgresql":
        pytest.skip("a row lock to wait on is PostgreSQL's")
    url = live_database.engine.url.render_as_string(hide_password=False)
    settings = fetch_settings(graphql_timeout=0.5, database_url=url)
    user = await make_user(live_database, display_name="Before")
    async with running_app(settings, None) as app, asgi_client(app) as client:
        async with live_database.engine.connect() as holder:
            await holder.execute(text("SELECT 1 FROM users WHERE id = :id FOR UPDATE"), {"id": user.id})
            started = asyncio.get_running_loop().time()
            response = await client.post(
                "/graphql",
                json={"query": RENAME},
                headers={"Accept": GRAPHQL_RESPONSE, **bearer(settings, user)},
            )
            took = asyncio.get_running_loop().time() - started
            await holder.rollback()
        assert response.status_code == 504
        [error] = response.json()["errors"]
        assert error["extensions"] == {"code": "TIMEOUT"}
        assert "0.5 s" in error["message"]
        assert 0.5 <= took < 2.5  # the operation's time, and at most as long again for its statement
        me = await client.post(
            "/graphql", json={"query": "{ me { displayName } }"}, headers=bearer(settings, user)
        )
        assert me.json() == {"data": {"me": {"displayName": "Before"}}}  # the rename is not kept


async def test_a_one_shot_fetch_is_bounded_by_its_own_limits(database: Database, targets: str) -> None:
    settings = fetch_settings(graphql_timeout=0.2)
    user = await make_user(database)
    query = "query($u: [String!]!) { fetch(urls: $u) { outcome } }"
    async with running_app(settings, database) as app, asgi_client(app) as client:
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": {"u": [f"{targets}/slow?s=0.5"]}},
            headers=bearer(settings, user),
        )
    assert response.json() == {"data": {"fetch": [{"outcome": "OK"}]}}


async def test_statements_on_postgresql_have_the_operations_time(database: Database) -> None:
    if database.engine.dialect.name != "postgresql":
        pytest.skip("statement_timeout is PostgreSQL's")
    served = Database.from_url(
        database.engine.url.render_as_string(hide_password=False), statement_timeout=1.5
    )
    try:
        async with served.engine.connect() as connection:
            assert (await connection.execute(text("SHOW statement_timeout"))).scalar() == "1500ms"
    finally:
        await served.dispose()
