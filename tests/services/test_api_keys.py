"""API keys over both transports: created with the secret shown once, sent as X-API-Key, limited to
their scopes in the service layer, revocable, and invisible to anyone but their owner."""

import uuid
from typing import Any

import httpx2
import pytest

from api.db.engine import Database
from api.db.models import User
from api.ids import NodeType, to_global_id
from api.settings import Settings
from tests.factories import bearer, graphql, make_user


async def create_key(
    client: httpx2.AsyncClient, via: str, headers: dict[str, str], scopes: list[str]
) -> tuple[dict[str, Any] | None, str | None]:
    """(the key with its secret, or None; the error code, or None), over one transport."""
    if via == "rest":
        response = await client.post(
            "/api/v1/api-keys", json={"name": "ci script", "scopes": scopes}, headers=headers
        )
        if response.status_code != 201:
            return None, response.json()["code"]
        body = response.json()
        return {
            "id": body["api_key"]["node_id"],
            "secret": body["secret"],
            "scopes": body["api_key"]["scopes"],
        }, None
    result = await graphql(
        client,
        'mutation($s: [String!]!) { createApiKey(name: "ci script", scopes: $s) { secret apiKey { id scopes } } }',
        {"s": scopes},
        headers=headers,
    )
    if result.get("errors"):
        return None, result["errors"][0]["extensions"]["code"]
    payload = result["data"]["createApiKey"]
    return {
        "id": payload["apiKey"]["id"],
        "secret": payload["secret"],
        "scopes": payload["apiKey"]["scopes"],
    }, None


def key_headers(secret: str) -> dict[str, str]:
    return {"X-API-Key": secret}


@pytest.fixture(params=["graphql", "rest"])
def via(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


async def test_a_key_works_within_its_scopes(
    via: str, client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    user = await make_user(database)
    key, error = await create_key(client, via, bearer(settings, user), ["users:read"])
    assert error is None
    assert key is not None
    assert key["secret"].startswith("sbk_")
    assert key["scopes"] == ["users:read"]
    me = await client.get("/api/v1/users/me", headers=key_headers(key["secret"]))
    assert me.json()["email"] == user.email
    gql_me = await graphql(client, "{ me { email } }", headers=key_headers(key["secret"]))
    assert gql_me["data"]["me"]["email"] == user.email
    # users:write is not among its scopes: refused on both transports, nothing changed.
    patched = await client.patch(
        "/api/v1/users/me", json={"display_name": "x"}, headers=key_headers(key["secret"])
    )
    assert (patched.status_code, patched.json()["code"]) == (403, "FORBIDDEN")
    gql_patch = await graphql(
        client, 'mutation { updateMe(input: {displayName: "x"}) { id } }', headers=key_headers(key["secret"])
    )
    assert gql_patch["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await client.get("/api/v1/users/me", headers=bearer(settings, user))).json()[
        "display_name"
    ] is None


async def test_an_admins_key_needs_the_admin_scope_for_admin_work(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    admin = await make_user(database, admin=True)
    plain, _ = await create_key(client, "rest", bearer(settings, admin), ["users:read"])
    full, _ = await create_key(client, "rest", bearer(settings, admin), ["users:read", "admin"])
    assert plain is not None
    assert full is not None
    assert (await client.get("/api/v1/users", headers=key_headers(plain["secret"]))).status_code == 403
    assert (await client.get("/api/v1/users", headers=key_headers(full["secret"]))).status_code == 200


async def test_the_admin_scope_is_for_administrators(
    via: str, client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    user = await make_user(database)
    assert await create_key(client, via, bearer(settings, user), ["admin"]) == (None, "BAD_USER_INPUT")
    assert await create_key(client, via, bearer(settings, user), ["root"]) == (None, "BAD_USER_INPUT")
    assert await create_key(client, via, bearer(settings, user), []) == (None, "BAD_USER_INPUT")


async def test_a_key_cannot_manage_credentials(
    via: str, client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    user = await make_user(database)
    key, _ = await create_key(client, via, bearer(settings, user), ["users:read", "users:write"])
    assert key is not None
    assert await create_key(client, via, key_headers(key["secret"]), ["users:read"]) == (None, "FORBIDDEN")
    changed = await client.put(
        "/api/v1/users/me/password",
        json={"current_password": "x", "new_password": "a long new password"},
        headers=key_headers(key["secret"]),
    )
    assert changed.json()["code"] == "FORBIDDEN"


async def test_listing_shows_no_secret_and_keeps_last_use(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    user = await make_user(database)
    key, _ = await create_key(client, "rest", bearer(settings, user), ["users:read"])
    assert key is not None
    listed = (await client.get("/api/v1/api-keys", headers=bearer(settings, user))).json()["items"]
    assert listed[0]["last_used_at"] is None
    assert "secret" not in listed[0]
    assert key["secret"] not in str(listed)
    await client.get("/api/v1/users/me", headers=key_headers(key["secret"]))
    result = await graphql(
        client, "{ apiKeys { id name prefix lastUsedAt } }", headers=bearer(settings, user)
    )
    (gql_key,) = result["data"]["apiKeys"]
    assert gql_key["id"] == key["id"]
    assert gql_key["lastUsedAt"] is not None
    assert key["secret"].startswith(gql_key["prefix"])


async def test_a_revoked_key_stops_working(
    via: str, client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    user = await make_user(database)
    key, _ = await create_key(client, via, bearer(settings, user), ["users:read"])
    assert key is not None
    if via == "rest":
        listed = (await client.get("/api/v1/api-keys", headers=bearer(settings, user))).json()["items"]
        key_id = next(k["id"] for k in listed if k["node_id"] == key["id"])  # REST takes the UUID
        assert (
            await client.delete(f"/api/v1/api-keys/{key_id}", headers=bearer(settings, user))
        ).status_code == 204
    else:
        result = await graphql(
            client,
            "mutation($id: ID!) { revokeApiKey(id: $id) }",
            {"id": key["id"]},
            headers=bearer(settings, user),
        )
        assert result == {"data": {"revokeApiKey": True}}
    refused = await client.get("/api/v1/users/me", headers=key_headers(key["secret"]))
    assert (refused.status_code, refused.json()["code"]) == (401, "UNAUTHENTICATED")


async def _other_users_key(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> tuple[User, str, str]:
    owner = await make_user(database)
    await create_key(client, "rest", bearer(settings, owner), ["users:read"])
    (row,) = (await client.get("/api/v1/api-keys", headers=bearer(settings, owner))).json()["items"]
    return owner, row["id"], row["node_id"]


async def test_another_users_key_is_not_found_everywhere(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    owner, key_id, node_id = await _other_users_key(client, database, settings)
    for intruder in (await make_user(database), await make_user(database, admin=True)):
        headers = bearer(settings, intruder)
        deleted = await client.delete(f"/api/v1/api-keys/{key_id}", headers=headers)
        assert (deleted.status_code, deleted.json()["code"]) == (404, "NOT_FOUND")
        revoked = await graphql(
            client, "mutation($id: ID!) { revokeApiKey(id: $id) }", {"id": node_id}, headers=headers
        )
        assert revoked["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert await graphql(
            client, "query($id: ID!) { node(id: $id) { id } }", {"id": node_id}, headers=headers
        ) == {"data": {"node": None}}
        assert (await client.get("/api/v1/api-keys", headers=headers)).json()["items"] == []
    # Unknown ids answer the same as another user's.
    unknown = await client.delete(f"/api/v1/api-keys/{'0' * 32}", headers=bearer(settings, owner))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "NOT_FOUND")
    own = await graphql(
        client, "query($id: ID!) { node(id: $id) { id } }", {"id": node_id}, headers=bearer(settings, owner)
    )
    assert own == {"data": {"node": {"id": node_id}}}
    assert node_id == to_global_id(NodeType.API_KEY, uuid.UUID(key_id))
