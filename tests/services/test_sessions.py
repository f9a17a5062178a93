"""Refresh tokens: rotation on every use, reuse detection, logout; the same over GraphQL and REST."""

from typing import Any, Protocol

import httpx2
import pytest

from api.db.engine import Database
from tests.factories import PASSWORD, make_user


class Client(Protocol):
    async def login(self, email: str) -> dict[str, Any]: ...
    async def refresh(self, token: str) -> tuple[dict[str, Any] | None, str | None]: ...
    async def logout(self, token: str) -> None: ...


class GraphQL:
    def __init__(self, client: httpx2.AsyncClient) -> None:
        self.client = client

    async def _run(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = (
            await self.client.post("/graphql", json={"query": query, "variables": variables})
        ).json()
        return body

    async def login(self, email: str) -> dict[str, Any]:
        body = await self._run(
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken } }",
            {"e": email, "p": PASSWORD},
        )
        return {
            "access": body["data"]["login"]["accessToken"],
            "refresh": body["data"]["login"]["refreshToken"],
        }

    async def refresh(self, token: str) -> tuple[dict[str, Any] | None, str | None]:
        body = await self._run(
            "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }",
            {"t": token},
        )
        if body.get("errors"):
            return None, body["errors"][0]["extensions"]["code"]
        pair = body["data"]["refreshToken"]
        return {"access": pair["accessToken"], "refresh": pair["refreshToken"]}, None

    async def logout(self, token: str) -> None:
        body = await self._run("mutation($t: String!) { logout(refreshToken: $t) }", {"t": token})
        assert body == {"data": {"logout": True}}


class Rest:
    def __init__(self, client: httpx2.AsyncClient) -> None:
        self.client = client

    async def login(self, email: str) -> dict[str, Any]:
        pair = (
            await self.client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
        ).json()
        return {"access": pair["access_token"], "refresh": pair["refresh_token"]}

    async def refresh(self, token: str) -> tuple[dict[str, Any] | None, str | None]:
        response = await self.client.post("/api/v1/auth/refresh", json={"refresh_token": token})
        if response.status_code != 200:
            return None, response.json()["code"]
        return {"access": response.json()["access_token"], "refresh": response.json()["refresh_token"]}, None

    async def logout(self, token: str) -> None:
        assert (
            await self.client.post("/api/v1/auth/logout", json={"refresh_token": token})
        ).status_code == 204


@pytest.fixture(params=["graphql", "rest"])
def transport(request: pytest.FixtureRequest, client: httpx2.AsyncClient) -> Client:
    return GraphQL(client) if request.param == "graphql" else Rest(client)


async def _me(client: httpx2.AsyncClient, access: str) -> int:
    return (await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {access}"})).status_code


async def test_each_refresh_rotates_the_pair(
    transport: Client, client: httpx2.AsyncClient, database: Database
) -> None:
    user = await make_user(database)
    first = await transport.login(user.email)
    second, error = await transport.refresh(first["refresh"])
    assert error is None
    assert second is not None
    assert second["refresh"] != first["refresh"]
    assert await _me(client, second["access"]) == 200
    third, error = await transport.refresh(second["refresh"])
    assert (error, third is not None) == (None, True)


async def test_reusing_a_spent_token_revokes_the_whole_family(
    transport: Client, client: httpx2.AsyncClient, database: Database
) -> None:
    user = await make_user(database)
    first = await transport.login(user.email)
    second, _ = await transport.refresh(first["refresh"])
    assert second is not None
    # An attacker replays the first token: refused, and the legitimate holder's newer token dies too.
    assert await transport.refresh(first["refresh"]) == (None, "UNAUTHENTICATED")
    assert await transport.refresh(second["refresh"]) == (None, "UNAUTHENTICATED")
    # Another session of the same user is untouched.
    other = await transport.login(user.email)
    assert (await transport.refresh(other["refresh"]))[1] is None


async def test_logout_ends_the_session(transport: Client, database: Database) -> None:
    user = await make_user(database)
    pair = await transport.login(user.email)
    await transport.logout(pair["refresh"])
    assert await transport.refresh(pair["refresh"]) == (None, "UNAUTHENTICATED")
    await transport.logout("never-issued")  # no error, nothing revealed


async def test_unknown_tokens_and_tokens_of_deactivated_accounts_are_refused(
    transport: Client, client: httpx2.AsyncClient, database: Database
) -> None:
    assert await transport.refresh("never-issued") == (None, "UNAUTHENTICATED")
    admin = await make_user(database, admin=True)
    user = await make_user(database)
    pair = await transport.login(user.email)
    admin_access = (await transport.login(admin.email))["access"]
    await client.patch(
        f"/api/v1/users/{user.id}",
        json={"is_active": False},
        headers={"Authorization": f"Bearer {admin_access}"},
    )
    assert await transport.refresh(pair["refresh"]) == (None, "UNAUTHENTICATED")


async def test_the_token_endpoint_takes_the_refresh_token_grant(
    client: httpx2.AsyncClient, database: Database
) -> None:
    user = await make_user(database)
    pair = await Rest(client).login(user.email)
    grant = {"grant_type": "refresh_token", "refresh_token": pair["refresh"]}
    renewed = await client.post("/api/v1/auth/token", data=grant)
    assert renewed.status_code == 200
    assert renewed.headers["cache-control"] == "no-store"
    replay = await client.post("/api/v1/auth/token", data=grant)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    # The replay was a reuse: the renewed token is revoked too, and that revocation was committed.
    again = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": renewed.json()["refresh_token"]},
    )
    assert again.json()["error"] == "invalid_grant"


async def _change_password(
    client: httpx2.AsyncClient, via: str, access: str, current: str, new: str
) -> str | None:
    """Change the password over one transport; the error code, or None on success."""
    headers = {"Authorization": f"Bearer {access}"}
    if via == "rest":
        response = await client.put(
            "/api/v1/users/me/password",
            json={"current_password": current, "new_password": new},
            headers=headers,
        )
        return None if response.status_code == 204 else response.json()["code"]
    body = (
        await client.post(
            "/graphql",
            json={
                "query": "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
                "variables": {"c": current, "n": new},
            },
            headers=headers,
        )
    ).json()
    return body["errors"][0]["extensions"]["code"] if body.get("errors") else None


@pytest.mark.parametrize("via", ["graphql", "rest"])
async def test_changing_the_password_ends_every_other_session(
    via: str, client: httpx2.AsyncClient, database: Database
) -> None:
    user = await make_user(database)
    rest = Rest(client)
    mine, other = await rest.login(user.email), await rest.login(user.email)
    assert (
        await _change_password(client, via, mine["access"], "wrong password", "a new long password")
        == "BAD_USER_INPUT"
    )
    assert await _change_password(client, via, mine["access"], PASSWORD, "short") == "BAD_USER_INPUT"
    assert await _change_password(client, via, mine["access"], PASSWORD, "a new long password") is None
    assert await rest.refresh(other["refresh"]) == (None, "UNAUTHENTICATED")
    assert (await rest.refresh(mine["refresh"]))[1] is None  # the caller's own session goes on
    relogin = await client.post(
        "/api/v1/auth/token", data={"username": user.email, "password": "a new long password"}
    )
    assert relogin.status_code == 200


@pytest.mark.parametrize("via", ["graphql", "rest"])
async def test_changing_the_password_needs_a_signed_in_caller(via: str, client: httpx2.AsyncClient) -> None:
    headers_free = await _change_password(client, via, "", PASSWORD, "short")
    assert headers_free == "UNAUTHENTICATED"


async def test_deactivating_an_account_ends_its_sessions(
    client: httpx2.AsyncClient, database: Database
) -> None:
    admin = await make_user(database, admin=True)
    user = await make_user(database)
    rest = Rest(client)
    pair = await rest.login(user.email)
    admin_access = (await rest.login(admin.email))["access"]
    headers = {"Authorization": f"Bearer {admin_access}"}
    await client.patch(f"/api/v1/users/{user.id}", json={"is_active": False}, headers=headers)
    await client.patch(f"/api/v1/users/{user.id}", json={"is_active": True}, headers=headers)
    # Reactivated, but the sessions from before stay ended.
    assert await rest.refresh(pair["refresh"]) == (None, "UNAUTHENTICATED")


async def test_an_access_token_is_not_a_refresh_token(transport: Client, database: Database) -> None:
    user = await make_user(database)
    pair = await transport.login(user.email)
    assert await transport.refresh(pair["access"]) == (None, "UNAUTHENTICATED")


async def test_graphql_answers_that_carry_tokens_are_not_cached(
    client: httpx2.AsyncClient, database: Database
) -> None:
    user = await make_user(database)
    response = await client.post(
        "/graphql",
        json={
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { refreshToken } }",
            "variables": {"e": user.email, "p": PASSWORD},
        },
    )
    assert response.headers["cache-control"] == "no-store"
