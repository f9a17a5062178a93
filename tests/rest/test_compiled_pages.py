"""REST list reads answered by one compiled statement (``api.rest.pages.CompiledPages``) answer
exactly what the services' usual path answers: status, body with its key order, and ``Link``, for
every kind of reader, on both databases (SQLite always takes the usual path)."""

import uuid
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI

from tests.compiled_world import World, ordered
from tests.conftest import asgi_client
from tests.sql import statements

ADMIN = {"admin"}
JOBS = {"admin", "alice", "bob", "bob, signed in", "alice's fetch key"}
NOBODY: set[str] = set()


def _requests(world: World) -> list[tuple[str, set[str]]]:
    """Each request, and the readers whose request runs the compiled statement on PostgreSQL (where
    it finds the job missing, for one who may not see it, the usual path answers the 404)."""
    done, bobs = world.jobs["done"].id, world.jobs["bobs"].id
    cursor = world.cursors[1]
    return [
        ("/api/v1/users", ADMIN),
        ("/api/v1/users?limit=2", ADMIN),
        (f"/api/v1/users?limit=2&cursor={cursor}", ADMIN),
        ("/api/v1/users?search=ALICE%20%25_", ADMIN),
        ("/api/v1/users?search=", ADMIN),
        ("/api/v1/users?cursor=not-a-cursor", NOBODY),
        ("/api/v1/users?limit=101", NOBODY),
        ("/api/v1/fetch-jobs", JOBS),
        ("/api/v1/fetch-jobs?limit=1", JOBS),
        (f"/api/v1/fetch-jobs?limit=1&cursor={cursor}", JOBS),
        ("/api/v1/fetch-jobs?status=DONE", JOBS),
        ("/api/v1/fetch-jobs?status=done", NOBODY),
        (f"/api/v1/fetch-jobs/{done}/results", JOBS),
        (f"/api/v1/fetch-jobs/{done}/results?outcome=OK", JOBS),
        (f"/api/v1/fetch-jobs/{done}/results?outcome=ok", NOBODY),
        (f"/api/v1/fetch-jobs/{bobs}/results", JOBS),
        (f"/api/v1/fetch-jobs/{uuid.uuid4()}/results", JOBS),
    ]


def _answer(response: httpx2.Response) -> tuple[Any, ...]:
    headers = {name: response.headers.get(name) for name in ("content-type", "link", "cache-control")}
    return response.status_code, headers, ordered(response.text)


async def test_compiled_pages_answer_as_the_services(app: FastAPI, plain_app: FastAPI, world: World) -> None:
    postgres = app.state.database.engine.dialect.name == "postgresql"
    differ: list[str] = []
    planned_wrongly: list[str] = []
    async with asgi_client(app) as compiled, asgi_client(plain_app) as plain:
        for path, planned in _requests(world):
            answered: set[str] = set()
            for reader, headers in world.readers.items():
                with statements(app.state.database.engine) as sent:
                    ours = _answer(await compiled.get(path, headers=headers))
                theirs = _answer(await plain.get(path, headers=headers))
                if ours != theirs:
                    differ.append(f"{path} as {reader}: {ours} != {theirs}")
                if any("json_build_object" in statement for statement in sent):
                    answered.add(reader)
            if answered != (planned if postgres else set()):
                planned_wrongly.append(f"{path}: {sorted(answered)}")
    assert differ == []
    assert planned_wrongly == [], "\n".join(planned_wrongly)


async def test_a_compiled_page_follows_its_link_to_the_end(
    app: FastAPI, client: httpx2.AsyncClient, world: World
) -> None:
    """Every account once, in order, by following ``Link`` one account at a time."""
    headers = world.readers["admin"]
    seen: list[str] = []
    url: str | None = "/api/v1/users?limit=1"
    while url is not None:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200
        page = response.json()
        seen += [item["email"] for item in page["items"]]
        link = response.headers.get("link")
        assert (link is None) == (page["next_cursor"] is None)
        url = link[1 : link.index(">")] if link else None
    assert len(seen) == len(world.users)
    assert len(set(seen)) == len(seen)


@pytest.mark.parametrize("limit", [1, 3, 100])
async def test_a_compiled_page_is_one_statement_whatever_its_size(
    app: FastAPI, client: httpx2.AsyncClient, world: World, limit: int
) -> None:
    if app.state.database.engine.dialect.name != "postgresql":
        pytest.skip("reads are compiled on PostgreSQL; SQLite takes the usual path")
    headers = world.readers["admin"]
    await client.get("/api/v1/fetch-jobs", headers=headers)  # the reader is known from here on
    with statements(app.state.database.engine) as sent:
        response = await client.get(f"/api/v1/fetch-jobs?limit={limit}", headers=headers)
    assert response.status_code == 200
    assert len(sent) == 1
    assert "json_build_object" in sent[0]  # the compiled statement, not the service's own
