"""Liveness, readiness, and the root redirect to GraphiQL."""

import httpx2
from fastapi import FastAPI

from api.db.engine import Database


async def test_healthz(client: httpx2.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_checks_the_database(client: httpx2.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert (response.status_code, response.json()["database"]) == (200, "ok")


async def test_readyz_says_so_when_the_database_is_gone(client: httpx2.AsyncClient, app: FastAPI) -> None:
    working = app.state.database
    app.state.database = Database.from_url("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        response = await client.get("/readyz")
    finally:
        await app.state.database.dispose()
        app.state.database = working
    assert (response.status_code, response.json()["database"]) == (503, "unreachable")


async def test_root_redirects_to_graphiql(client: httpx2.AsyncClient) -> None:
    response = await client.get("/")
    assert (response.status_code, response.headers["location"]) == (307, "/graphql")
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
