"""``@defer`` and ``@stream``: the parts come over ``multipart/mixed`` when the client takes it (a
406 saying so otherwise), the later parts' errors are rendered as any others, and the compiled read
path leaves such documents to the executor."""

import json
from typing import Any

import httpx2

from api.db.engine import Database
from api.services import api_keys
from api.services.callers import Caller
from api.services.commands import ApiKeyCreate
from api.settings import Settings
from tests.factories import bearer, make_user
from tests.sql import statements

MULTIPART = {"Accept": "multipart/mixed"}


def parts(response: httpx2.Response) -> list[dict[str, Any]]:
    """The JSON parts of a multipart/mixed body, in order."""
    assert response.headers["content-type"].startswith("multipart/mixed")
    return [json.loads(line) for line in response.text.splitlines() if line.startswith("{")]


async def test_a_deferred_fragment_comes_after_the_rest(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    user = await make_user(database, email="deferred@example.com")
    query = '{ me { email ... @defer(label: "jobs") { fetchJobs { nodes { id } } } } }'
    with statements(database.engine) as sent:
        response = await client.post(
            "/graphql", json={"query": query}, headers={**MULTIPART, **bearer(settings, user)}
        )
    assert response.status_code == 200
    first, later = parts(response)
    assert first["data"] == {"me": {"email": "deferred@example.com"}}
    assert first["hasNext"] is True
    assert first["pending"] == [{"id": "0", "path": ["me"], "label": "jobs"}]
    assert later["incremental"] == [
        {"data": {"fetchJobs": {"nodes": []}}, "id": "0", "path": ["me"], "label": "jobs"}
    ]
    assert later["hasNext"] is False
    assert not any("json_build_object" in statement for statement in sent)  # the executor answered


async def test_a_streamed_list_comes_item_by_item(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    user = await make_user(database)
    async with database.session() as session:
        for name in ("first", "second", "third"):
            await api_keys.create_api_key(
                session, actor=Caller(user=user), data=ApiKeyCreate(name=name, scopes=["fetch"])
            )
    query = "{ apiKeys @stream(initialCount: 1) { name } }"
    response = await client.post(
        "/graphql", json={"query": query}, headers={**MULTIPART, **bearer(settings, user)}
    )
    first, *later = parts(response)
    assert len(first["data"]["apiKeys"]) == 1
    streamed = [item for part in later for piece in part.get("incremental", []) for item in piece["items"]]
    assert len(first["data"]["apiKeys"]) + len(streamed) == 3
    assert later[-1]["hasNext"] is False


async def test_a_later_parts_refusal_keeps_its_code(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    user = await make_user(database)
    query = "{ me { id } ... @defer { users { nodes { id } } } }"
    response = await client.post(
        "/graphql", json={"query": query}, headers={**MULTIPART, **bearer(settings, user)}
    )
    first, later = parts(response)
    assert first["data"]["me"]["id"]
    [completed] = later["completed"]
    assert [error["extensions"]["code"] for error in completed["errors"]] == ["FORBIDDEN"]


async def test_parts_need_a_client_that_takes_them(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    user = await make_user(database)
    query = "{ me { id ... @defer { email } } }"
    response = await client.post("/graphql", json={"query": query}, headers=bearer(settings, user))
    assert response.status_code == 406
    [error] = response.json()["errors"]
    assert "multipart/mixed" in error["message"]
