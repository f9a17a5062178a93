"""Documents named by their hash: trusted documents from a manifest (GraphQL Codegen's format), under
each policy, and automatic persisted queries stored in the database for every worker."""

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx2
import pytest
from pydantic import ValidationError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from api.app import create_app
from api.db.engine import Database
from api.settings import Settings
from tests.conftest import Serve, asgi_client, running_app, settings_for_tests
from tests.factories import bearer, make_user
from tests.sockets import PROTOCOLS, socket
from tests.sql import statements

ME = "query Me { me { email } }"
USERS = "query Users($n: Int) { users(first: $n) { nodes { email } } }"
OTHER = "{ me { id } }"


def sha(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "persisted-documents.json"
    path.write_text(json.dumps({sha(ME): ME, sha(USERS): USERS}))
    return path


async def ask(
    client: httpx2.AsyncClient, body: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = await client.post("/graphql", json=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def test_trusted_documents_run_by_id_beside_arbitrary_ones(database: Database, manifest: Path) -> None:
    settings = settings_for_tests(
        graphql_trusted_documents=manifest, graphql_document_policy="allowed-and-arbitrary"
    )
    user = await make_user(database, email="trusting@example.com")
    headers = bearer(settings, user)
    async with running_app(settings, database) as app, asgi_client(app) as client:
        for document_id in (sha(ME), f"sha256:{sha(ME)}"):
            body = await ask(client, {"documentId": document_id}, headers)
            assert body == {"data": {"me": {"email": "trusting@example.com"}}}
        by_apq = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha(ME)}}}
        assert (await ask(client, by_apq, headers))["data"]["me"]["email"] == "trusting@example.com"
        got = await client.get("/graphql", params={"documentId": sha(ME)}, headers=headers)
        assert got.json() == {"data": {"me": {"email": "trusting@example.com"}}}
        assert "errors" not in await ask(client, {"query": OTHER}, headers)  # arbitrary ones too
        batch = await client.post(
            "/graphql", json=[{"query": OTHER}, {"documentId": sha(ME)}], headers=headers
        )
        assert batch.json()[1] == {"data": {"me": {"email": "trusting@example.com"}}}
        assert codes(await ask(client, {"documentId": sha(OTHER)}, headers)) == ["PERSISTED_QUERY_NOT_FOUND"]
        assert codes(await ask(client, {"documentId": "me"}, headers)) == ["BAD_REQUEST"]
        strict = await client.post(
            "/graphql",
            json={"documentId": sha(OTHER)},
            headers={"Accept": "application/graphql-response+json"},
        )
        assert strict.status_code == 400
        assert "data" not in strict.json()


async def test_only_trusted_documents_run_but_for_administrators_and_keys_allowed_any(
    database: Database, manifest: Path
) -> None:
    settings = settings_for_tests(graphql_trusted_documents=manifest, graphql_document_policy="allowed-only")
    user, admin = await make_user(database), await make_user(database, admin=True)
    async with running_app(settings, database) as app, asgi_client(app) as client:
        refused = await ask(client, {"query": OTHER}, bearer(settings, user))
        assert codes(refused) == ["PERSISTED_QUERY_NOT_ALLOWED"]
        assert codes(await ask(client, {"query": OTHER})) == ["PERSISTED_QUERY_NOT_ALLOWED"]  # anonymous
        assert "errors" not in await ask(client, {"query": ME}, bearer(settings, user))  # a trusted text
        assert "errors" not in await ask(client, {"documentId": sha(ME)}, bearer(settings, user))
        assert "errors" not in await ask(client, {"query": OTHER}, bearer(settings, admin))
        create = 'mutation($s: [String!]!) { createApiKey(name: "ci", scopes: $s) { secret } }'
        key = await ask(
            client,
            {"query": create, "variables": {"s": ["users:read", "graphql:arbitrary"]}},
            bearer(settings, admin),
        )
        assert "errors" not in key  # sent by an administrator: the mutation is any document
        secret = key["data"]["createApiKey"]["secret"]
        assert "errors" not in await ask(client, {"query": OTHER}, {"X-API-Key": secret})
        plain = await ask(
            client, {"query": create, "variables": {"s": ["users:read"]}}, bearer(settings, admin)
        )
        assert codes(
            await ask(client, {"query": OTHER}, {"X-API-Key": plain["data"]["createApiKey"]["secret"]})
        ) == ["PERSISTED_QUERY_NOT_ALLOWED"]


async def test_a_trusted_document_by_id_is_one_compiled_statement(database: Database, manifest: Path) -> None:
    if database.engine.dialect.name != "postgresql":
        pytest.skip("reads are compiled on PostgreSQL")
    settings = settings_for_tests(graphql_trusted_documents=manifest, graphql_document_policy="allowed-only")
    admin = await make_user(database, admin=True, email="first@example.com")
    async with running_app(settings, database) as app, asgi_client(app) as client:
        ask_users = {"documentId": sha(USERS), "variables": {"n": 1}}
        await ask(client, ask_users, bearer(settings, admin))  # the first time: validated by the executor
        with statements(database.engine) as sent:
            body = await ask(client, ask_users, bearer(settings, admin))
    assert body["data"]["users"]["nodes"] == [{"email": "first@example.com"}]
    assert len(sent) == 1
    assert "json_build_object" in sent[0]


async def test_automatic_persisted_queries_are_stored_for_every_worker(database: Database) -> None:
    settings = settings_for_tests(graphql_apq=True)
    user = await make_user(database, email="apq@example.com")
    headers = bearer(settings, user)
    hashed = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha(OTHER)}}}
    async with running_app(settings, database) as app, asgi_client(app) as client:
        assert codes(await ask(client, hashed, headers)) == ["PERSISTED_QUERY_NOT_FOUND"]
        mismatch = {**hashed, "query": ME}
        assert codes(await ask(client, mismatch, headers)) == ["BAD_REQUEST"]
        registered = await ask(client, {**hashed, "query": OTHER}, headers)
        assert registered["data"]["me"]["id"]
        assert (await ask(client, hashed, headers)) == registered
    async with running_app(settings, database) as other, asgi_client(other) as client:  # another worker
        assert (await ask(client, hashed, headers)) == registered
        assert (await ask(client, {"documentId": sha(OTHER)}, headers)) == registered
    async with running_app(settings_for_tests(), database) as off, asgi_client(off) as client:
        assert codes(await ask(client, hashed, headers)) == ["PERSISTED_QUERY_NOT_SUPPORTED"]


async def test_under_allowed_only_nobody_else_registers_a_document(
    database: Database, manifest: Path
) -> None:
    settings = settings_for_tests(
        graphql_trusted_documents=manifest, graphql_document_policy="allowed-only", graphql_apq=True
    )
    user = await make_user(database)
    registration = {
        "query": OTHER,
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha(OTHER)}},
    }
    async with running_app(settings, database) as app, asgi_client(app) as client:
        assert codes(await ask(client, registration, bearer(settings, user))) == [
            "PERSISTED_QUERY_NOT_ALLOWED"
        ]


def test_a_manifest_that_does_not_hold_is_refused_at_start(tmp_path: Path) -> None:
    path = tmp_path / "documents.json"
    path.write_text(json.dumps({sha(ME): OTHER}))
    settings = settings_for_tests(graphql_trusted_documents=path, graphql_document_policy="allowed-only")
    with pytest.raises(SystemExit, match="not under their SHA-256"):
        create_app(settings)
    with pytest.raises(ValidationError, match="needs SWITCHBOARD_GRAPHQL_TRUSTED_DOCUMENTS"):
        Settings(_env_file=None, graphql_document_policy="allowed-only")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_sockets_hold_to_the_policy_too(
    serve: Serve, live_database: Database, tmp_path: Path, protocol: str
) -> None:
    """Under ``allowed-only`` a socket runs the manifest's documents, named by id, and refuses others
    as HTTP does."""
    events = "subscription Events { userEvents { kind } }"
    path = tmp_path / "documents.json"
    path.write_text(json.dumps({sha(events): events}))
    user = await make_user(live_database)
    strict = serve(graphql_trusted_documents=path, graphql_document_policy="allowed-only")
    async with strict as (url, app), socket(url, protocol) as ws:
        await ws.init(bearer(app.state.settings, user))
        await ws.subscribe("1", "subscription { userEvents { kind } }")
        refused = await ws.receive()
        assert (refused["type"], refused["id"]) == ("error", "1")
        assert "PERSISTED_QUERY_NOT_ALLOWED" in json.dumps(refused["payload"])
        kind = "subscribe" if protocol == GRAPHQL_TRANSPORT_WS_PROTOCOL else "start"
        await ws.send({"type": kind, "id": "2", "payload": {"documentId": sha(events)}})
        answer = await ws.receive()  # a trusted document: it runs (and refuses a non-admin)
        assert answer["id"] == "2"
        assert "FORBIDDEN" in json.dumps(answer["payload"])
