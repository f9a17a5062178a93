"""One client interface over both transports, so a scenario can be run through GraphQL and REST and
the two outcomes compared. Each call answers an ``Outcome``: the resource in a common shape, or the
error code."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx2

from api.ids import to_global_id

USER_FIELDS = "id email displayName isActive isAdmin createdAt"


@dataclass(frozen=True)
class Outcome:
    data: Any = None
    code: str | None = None


def common_user(raw: dict[str, Any]) -> dict[str, Any]:
    """A user from either transport, with GraphQL's and REST's field names mapped to one set."""

    def pick(camel: str, snake: str) -> Any:
        return raw[camel] if camel in raw else raw[snake]

    return {
        "id": raw["node_id"] if "node_id" in raw else raw["id"],
        "email": raw["email"],
        "display_name": pick("displayName", "display_name"),
        "is_active": pick("isActive", "is_active"),
        "is_admin": pick("isAdmin", "is_admin"),
        "created_at": datetime.fromisoformat(pick("createdAt", "created_at")),
    }


class Transport(Protocol):
    name: str

    async def register(self, data: dict[str, Any]) -> Outcome: ...
    async def login(self, email: str, password: str) -> Outcome: ...
    async def me(self, token: str | None) -> Outcome: ...
    async def get_user(self, token: str | None, user_id: uuid.UUID | str) -> Outcome: ...
    async def list_users(self, token: str | None, limit: int, search: str | None = None) -> Outcome: ...
    async def update_me(self, token: str | None, data: dict[str, Any]) -> Outcome: ...
    async def update_user(
        self, token: str | None, user_id: uuid.UUID | str, data: dict[str, Any]
    ) -> Outcome: ...
    async def delete_user(self, token: str | None, user_id: uuid.UUID | str) -> Outcome: ...


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _global(user_id: uuid.UUID | str) -> str:
    """A user's global id; a string stands for an id as a client might send it, malformed or not."""
    return user_id if isinstance(user_id, str) else to_global_id("User", user_id)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class GraphQLTransport:
    name = "graphql"

    def __init__(self, client: httpx2.AsyncClient) -> None:
        self.client = client

    async def _run(self, token: str | None, query: str, variables: dict[str, Any], field: str) -> Outcome:
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=_headers(token)
        )
        body = response.json()
        if body.get("errors"):
            return Outcome(code=body["errors"][0]["extensions"]["code"])
        return Outcome(data=body["data"][field])

    async def register(self, data: dict[str, Any]) -> Outcome:
        query = f"mutation($i: RegisterInput!) {{ register(input: $i) {{ user {{ {USER_FIELDS} }} }} }}"
        outcome = await self._run(None, query, {"i": {_camel(k): v for k, v in data.items()}}, "register")
        return Outcome(data=common_user(outcome.data["user"])) if outcome.data else outcome

    async def login(self, email: str, password: str) -> Outcome:
        """Sign in, then read ``me`` with the new token: the outcome is whom the token opens."""
        query = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }"
        outcome = await self._run(None, query, {"e": email, "p": password}, "login")
        return await self.me(outcome.data["accessToken"]) if outcome.data else outcome

    async def me(self, token: str | None) -> Outcome:
        outcome = await self._run(token, f"{{ me {{ {USER_FIELDS} }} }}", {}, "me")
        return Outcome(data=common_user(outcome.data)) if outcome.data else outcome

    async def get_user(self, token: str | None, user_id: uuid.UUID | str) -> Outcome:
        query = f"query($id: ID!) {{ user(id: $id) {{ {USER_FIELDS} }} }}"
        outcome = await self._run(token, query, {"id": _global(user_id)}, "user")
        return Outcome(data=common_user(outcome.data)) if outcome.data else outcome

    async def list_users(self, token: str | None, limit: int, search: str | None = None) -> Outcome:
        query = (
            f"query($n: Int, $s: String) {{ users(first: $n, search: $s) {{ nodes {{ {USER_FIELDS} }} }} }}"
        )
        outcome = await self._run(token, query, {"n": limit, "s": search}, "users")
        return Outcome(data=[common_user(u) for u in outcome.data["nodes"]]) if outcome.data else outcome

    async def update_me(self, token: str | None, data: dict[str, Any]) -> Outcome:
        query = f"mutation($i: UpdateMeInput!) {{ updateMe(input: $i) {{ {USER_FIELDS} }} }}"
        outcome = await self._run(token, query, {"i": {_camel(k): v for k, v in data.items()}}, "updateMe")
        return Outcome(data=common_user(outcome.data)) if outcome.data else outcome

    async def update_user(self, token: str | None, user_id: uuid.UUID | str, data: dict[str, Any]) -> Outcome:
        query = f"mutation($id: ID!, $i: UpdateUserInput!) {{ updateUser(id: $id, input: $i) {{ {USER_FIELDS} }} }}"
        variables = {"id": _global(user_id), "i": {_camel(k): v for k, v in data.items()}}
        outcome = await self._run(token, query, variables, "updateUser")
        return Outcome(data=common_user(outcome.data)) if outcome.data else outcome

    async def delete_user(self, token: str | None, user_id: uuid.UUID | str) -> Outcome:
        query = "mutation($id: ID!) { deleteUser(id: $id) }"
        return await self._run(token, query, {"id": _global(user_id)}, "deleteUser")


class RestTransport:
    name = "rest"

    def __init__(self, client: httpx2.AsyncClient) -> None:
        self.client = client

    async def _run(self, method: str, url: str, token: str | None, json: Any = None) -> Outcome:
        response = await self.client.request(method, url, json=json, headers=_headers(token))
        if response.status_code >= 400:
            return Outcome(code=response.json()["code"])
        return Outcome(data=response.json() if response.content else True)

    async def _user(self, method: str, url: str, token: str | None, json: Any = None) -> Outcome:
        outcome = await self._run(method, url, token, json)
        return Outcome(data=common_user(outcome.data)) if outcome.data else outcome

    async def register(self, data: dict[str, Any]) -> Outcome:
        return await self._user("POST", "/api/v1/users", None, data)

    async def login(self, email: str, password: str) -> Outcome:
        response = await self.client.post(
            "/api/v1/auth/token", data={"username": email, "password": password}
        )
        if response.status_code == 200:
            return await self.me(response.json()["access_token"])
        # RFC 6749 names the error; it is the refusal GraphQL calls UNAUTHENTICATED.
        assert response.json()["error"] == "invalid_grant"
        return Outcome(code="UNAUTHENTICATED")

    async def me(self, token: str | None) -> Outcome:
        return await self._user("GET", "/api/v1/users/me", token)

    async def get_user(self, token: str | None, user_id: uuid.UUID | str) -> Outcome:
        return await self._user("GET", f"/api/v1/users/{user_id}", token)

    async def list_users(self, token: str | None, limit: int, search: str | None = None) -> Outcome:
        params = f"limit={limit}" + (f"&search={search}" if search is not None else "")
        outcome = await self._run("GET", f"/api/v1/users?{params}", token)
        return Outcome(data=[common_user(u) for u in outcome.data["items"]]) if outcome.data else outcome

    async def update_me(self, token: str | None, data: dict[str, Any]) -> Outcome:
        return await self._user("PATCH", "/api/v1/users/me", token, data)

    async def update_user(self, token: str | None, user_id: uuid.UUID | str, data: dict[str, Any]) -> Outcome:
        return await self._user("PATCH", f"/api/v1/users/{user_id}", token, data)

    async def delete_user(self, token: str | None, user_id: uuid.UUID | str) -> Outcome:
        return await self._run("DELETE", f"/api/v1/users/{user_id}", token)
