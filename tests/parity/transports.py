"""One client interface over both transports, so a scenario can be run through GraphQL and REST and
the two outcomes compared. Each call answers an ``Outcome``: the resource in a common shape
(``tests/shapes.py``), or the error code.

A credential is a string: an API key's secret (``sbk_…``) is sent as ``X-API-Key``, anything else as a
bearer token; ``None`` calls anonymously.
"""

import gc
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2

from api.ids import NodeType, from_global_id, to_global_id
from tests.parity.shapes import (
    common_api_key,
    common_job,
    common_new_api_key,
    common_page,
    common_result,
    common_tokens,
    common_user,
)

USER_FIELDS = "id email displayName isActive isAdmin createdAt"
KEY_FIELDS = "id name prefix scopes createdAt lastUsedAt"
JOB_FIELDS = "id owner { id } status total completed error createdAt startedAt finishedAt"
RESULT_FIELDS = "position url outcome statusCode finalUrl contentType bytes elapsedMs error fetchedAt"
API_KEY_PREFIX = "sbk_"

Id = uuid.UUID | str  # a string stands for an id as a client might send it, malformed or not


@dataclass(frozen=True)
class Outcome:
    data: Any = None
    code: str | None = None


def steps(*outcomes: Outcome) -> Outcome:
    """Several calls as one outcome: every call's data and code, and the last one's code."""
    return Outcome(data=[(o.data, o.code) for o in outcomes], code=outcomes[-1].code)


def _shaped(outcome: Outcome, shape: Callable[[Any], Any]) -> Outcome:
    return Outcome(data=shape(outcome.data)) if outcome.code is None else outcome


class Transport(Protocol):
    name: str

    # users
    async def register(self, data: dict[str, Any]) -> Outcome: ...
    async def me(self, token: str | None) -> Outcome: ...
    async def get_user(self, token: str | None, user_id: Id) -> Outcome: ...
    async def list_users(self, token: str | None, limit: int, search: str | None = None) -> Outcome: ...
    async def update_me(self, token: str | None, data: dict[str, Any]) -> Outcome: ...
    async def update_user(self, token: str | None, user_id: Id, data: dict[str, Any]) -> Outcome: ...
    async def delete_user(self, token: str | None, user_id: Id) -> Outcome: ...

    # auth
    async def login(self, email: str, password: str) -> Outcome: ...
    async def refresh(self, refresh_token: str | None) -> Outcome: ...
    async def logout(self, refresh_token: str | None) -> Outcome: ...
    async def change_password(self, token: str | None, current: str, new: str) -> Outcome: ...

    # API keys
    async def create_api_key(self, token: str | None, name: str, scopes: list[str]) -> Outcome: ...
    async def list_api_keys(self, token: str | None) -> Outcome: ...
    async def revoke_api_key(self, token: str | None, key_id: Id) -> Outcome: ...

    # fetch
    async def fetch(self, token: str | None, urls: list[str]) -> Outcome: ...
    async def start_job(self, token: str | None, urls: list[str]) -> Outcome: ...
    async def start_job_from_file(self, token: str | None, content: bytes) -> Outcome: ...
    async def get_job(self, token: str | None, job_id: Id) -> Outcome: ...
    async def list_jobs(
        self, token: str | None, limit: int, cursor: str | None = None, status: str | None = None
    ) -> Outcome: ...
    async def cancel_job(self, token: str | None, job_id: Id) -> Outcome: ...
    async def job_results(self, token: str | None, job_id: Id, outcome: str | None = None) -> Outcome: ...


def _headers(token: str | None) -> dict[str, str]:
    if token is None:
        return {}
    if token.startswith(API_KEY_PREFIX):
        return {"X-API-Key": token}
    return {"Authorization": f"Bearer {token}"}


def _global(node_type: NodeType, key: Id) -> str:
    return key if isinstance(key, str) else to_global_id(node_type, key)


def _uuid(key: Id) -> str:
    """The UUID REST takes for an id, from a global id too (the common shape's ``id``)."""
    decoded = from_global_id(key) if isinstance(key, str) else None
    return str(decoded[1]) if decoded is not None else str(key)


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
        return self._outcome(response, field)

    @staticmethod
    def _outcome(response: httpx2.Response, field: str) -> Outcome:
        body = response.json()
        if body.get("errors"):
            return Outcome(code=body["errors"][0]["extensions"]["code"])
        return Outcome(data=body["data"][field])

    # users

    async def register(self, data: dict[str, Any]) -> Outcome:
        query = f"mutation($i: RegisterInput!) {{ register(input: $i) {{ user {{ {USER_FIELDS} }} }} }}"
        outcome = await self._run(None, query, {"i": {_camel(k): v for k, v in data.items()}}, "register")
        return _shaped(outcome, lambda d: common_user(d["user"]))

    async def me(self, token: str | None) -> Outcome:
        outcome = await self._run(token, f"{{ me {{ {USER_FIELDS} }} }}", {}, "me")
        return Outcome(data=common_user(outcome.data)) if outcome.data else outcome

    async def get_user(self, token: str | None, user_id: Id) -> Outcome:
        query = f"query($id: ID!) {{ user(id: $id) {{ {USER_FIELDS} }} }}"
        return _shaped(
            await self._run(token, query, {"id": _global(NodeType.USER, user_id)}, "user"), common_user
        )

    async def list_users(self, token: str | None, limit: int, search: str | None = None) -> Outcome:
        query = (
            f"query($n: Int, $s: String) {{ users(first: $n, search: $s) {{ nodes {{ {USER_FIELDS} }} }} }}"
        )
        outcome = await self._run(token, query, {"n": limit, "s": search}, "users")
        return _shaped(outcome, lambda d: [common_user(u) for u in d["nodes"]])

    async def update_me(self, token: str | None, data: dict[str, Any]) -> Outcome:
        query = f"mutation($i: UpdateMeInput!) {{ updateMe(input: $i) {{ {USER_FIELDS} }} }}"
        outcome = await self._run(token, query, {"i": {_camel(k): v for k, v in data.items()}}, "updateMe")
        return _shaped(outcome, common_user)

    async def update_user(self, token: str | None, user_id: Id, data: dict[str, Any]) -> Outcome:
        query = f"mutation($id: ID!, $i: UpdateUserInput!) {{ updateUser(id: $id, input: $i) {{ {USER_FIELDS} }} }}"
        variables = {"id": _global(NodeType.USER, user_id), "i": {_camel(k): v for k, v in data.items()}}
        return _shaped(await self._run(token, query, variables, "updateUser"), common_user)

    async def delete_user(self, token: str | None, user_id: Id) -> Outcome:
        query = "mutation($id: ID!) { deleteUser(id: $id) }"
        return await self._run(token, query, {"id": _global(NodeType.USER, user_id)}, "deleteUser")

    # auth

    async def login(self, email: str, password: str) -> Outcome:
        """Sign in, then read ``me`` with the new token: the outcome is whom the token opens."""
        query = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }"
        outcome = await self._run(None, query, {"e": email, "p": password}, "login")
        return await self.me(outcome.data["accessToken"]) if outcome.data else outcome

    async def refresh(self, refresh_token: str | None) -> Outcome:
        query = (
            "mutation($r: String!) { refreshToken(refreshToken: $r) "
            "{ accessToken refreshToken tokenType expiresIn scope } }"
        )
        outcome = await self._run(None, query, {"r": refresh_token}, "refreshToken")
        if outcome.code is not None:
            return outcome
        return Outcome(data=common_tokens(outcome.data, await self.me(outcome.data["accessToken"])))

    async def logout(self, refresh_token: str | None) -> Outcome:
        return await self._run(
            None, "mutation($r: String!) { logout(refreshToken: $r) }", {"r": refresh_token}, "logout"
        )

    async def change_password(self, token: str | None, current: str, new: str) -> Outcome:
        query = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }"
        return await self._run(token, query, {"c": current, "n": new}, "changePassword")

    # API keys

    async def create_api_key(self, token: str | None, name: str, scopes: list[str]) -> Outcome:
        query = (
            "mutation($n: String!, $s: [String!]!) { createApiKey(name: $n, scopes: $s) "
            f"{{ apiKey {{ {KEY_FIELDS} }} secret }} }}"
        )
        outcome = await self._run(token, query, {"n": name, "s": scopes}, "createApiKey")
        return _shaped(outcome, common_new_api_key)

    async def list_api_keys(self, token: str | None) -> Outcome:
        outcome = await self._run(token, f"{{ apiKeys {{ {KEY_FIELDS} }} }}", {}, "apiKeys")
        return _shaped(outcome, lambda d: [common_api_key(k) for k in d])

    async def revoke_api_key(self, token: str | None, key_id: Id) -> Outcome:
        query = "mutation($id: ID!) { revokeApiKey(id: $id) }"
        return await self._run(token, query, {"id": _global(NodeType.API_KEY, key_id)}, "revokeApiKey")

    # fetch

    async def fetch(self, token: str | None, urls: list[str]) -> Outcome:
        query = f"query($u: [String!]!) {{ fetch(urls: $u) {{ {RESULT_FIELDS} }} }}"
        outcome = await self._run(token, query, {"u": urls}, "fetch")
        return _shaped(outcome, lambda d: [common_result(r) for r in d])

    async def start_job(self, token: str | None, urls: list[str]) -> Outcome:
        query = f"mutation($u: [String!]!) {{ startFetchJob(urls: $u) {{ {JOB_FIELDS} }} }}"
        return _shaped(await self._run(token, query, {"u": urls}, "startFetchJob"), common_job)

    async def start_job_from_file(self, token: str | None, content: bytes) -> Outcome:
        """The GraphQL multipart request specification, with the header its CSRF guard asks for."""
        query = f"mutation($f: Upload!) {{ startFetchJobFromFile(file: $f) {{ {JOB_FIELDS} }} }}"
        data = {
            "operations": json.dumps({"query": query, "variables": {"f": None}}),
            "map": json.dumps({"0": ["variables.f"]}),
        }
        response = await self.client.post(
            "/graphql",
            data=data,
            files={"0": ("urls.txt", content, "text/plain")},
            headers=_headers(token) | {"GraphQL-Require-Preflight": "1"},
        )
        # An upload the server leaves open warns when it is collected: here, in the scenario that sent
        # it, rather than in whichever test runs when the collector does.
        gc.collect()
        return _shaped(self._outcome(response, "startFetchJobFromFile"), common_job)

    async def get_job(self, token: str | None, job_id: Id) -> Outcome:
        query = f"query($id: ID!) {{ fetchJob(id: $id) {{ {JOB_FIELDS} }} }}"
        return _shaped(
            await self._run(token, query, {"id": _global(NodeType.FETCH_JOB, job_id)}, "fetchJob"), common_job
        )

    async def list_jobs(
        self, token: str | None, limit: int, cursor: str | None = None, status: str | None = None
    ) -> Outcome:
        query = (
            "query($n: Int, $a: String, $s: FetchJobStatus) { fetchJobs(first: $n, after: $a, status: $s) "
            f"{{ nodes {{ {JOB_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }} }}"
        )
        outcome = await self._run(token, query, {"n": limit, "a": cursor, "s": status}, "fetchJobs")

        def page(data: dict[str, Any]) -> dict[str, Any]:
            info = data["pageInfo"]
            return common_page(
                [common_job(j) for j in data["nodes"]], info["endCursor"] if info["hasNextPage"] else None
            )

        return _shaped(outcome, page)

    async def cancel_job(self, token: str | None, job_id: Id) -> Outcome:
        query = f"mutation($id: ID!) {{ cancelFetchJob(id: $id) {{ {JOB_FIELDS} }} }}"
        outcome = await self._run(token, query, {"id": _global(NodeType.FETCH_JOB, job_id)}, "cancelFetchJob")
        return _shaped(outcome, common_job)

    async def job_results(self, token: str | None, job_id: Id, outcome: str | None = None) -> Outcome:
        query = (
            "query($id: ID!, $o: FetchOutcome) { fetchJob(id: $id) "
            f"{{ results(outcome: $o) {{ {RESULT_FIELDS} }} }} }}"
        )
        found = await self._run(
            token, query, {"id": _global(NodeType.FETCH_JOB, job_id), "o": outcome}, "fetchJob"
        )
        return _shaped(found, lambda d: [common_result(r) for r in d["results"]])


class RestTransport:
    name = "rest"

    def __init__(self, client: httpx2.AsyncClient) -> None:
        self.client = client

    async def _run(
        self, method: str, url: str, token: str | None, json: Any = None, **kwargs: Any
    ) -> Outcome:
        response = await self.client.request(method, url, json=json, headers=_headers(token), **kwargs)
        if response.status_code >= 400:
            return Outcome(code=response.json()["code"])
        return Outcome(data=response.json() if response.content else True)

    async def _user(self, method: str, url: str, token: str | None, json: Any = None) -> Outcome:
        return _shaped(await self._run(method, url, token, json), common_user)

    # users

    async def register(self, data: dict[str, Any]) -> Outcome:
        return await self._user("POST", "/api/v1/users", None, data)

    async def me(self, token: str | None) -> Outcome:
        return await self._user("GET", "/api/v1/users/me", token)

    async def get_user(self, token: str | None, user_id: Id) -> Outcome:
        return await self._user("GET", f"/api/v1/users/{_uuid(user_id)}", token)

    async def list_users(self, token: str | None, limit: int, search: str | None = None) -> Outcome:
        params = {"limit": limit} | ({"search": search} if search is not None else {})
        outcome = await self._run("GET", "/api/v1/users", token, params=params)
        return _shaped(outcome, lambda d: [common_user(u) for u in d["items"]])

    async def update_me(self, token: str | None, data: dict[str, Any]) -> Outcome:
        return await self._user("PATCH", "/api/v1/users/me", token, data)

    async def update_user(self, token: str | None, user_id: Id, data: dict[str, Any]) -> Outcome:
        return await self._user("PATCH", f"/api/v1/users/{_uuid(user_id)}", token, data)

    async def delete_user(self, token: str | None, user_id: Id) -> Outcome:
        return await self._run("DELETE", f"/api/v1/users/{_uuid(user_id)}", token)

    # auth

    async def login(self, email: str, password: str) -> Outcome:
        response = await self.client.post(
            "/api/v1/auth/token", data={"username": email, "password": password}
        )
        if response.status_code == 200:
            return await self.me(response.json()["access_token"])
        # RFC 6749 names the error; it is the refusal GraphQL calls UNAUTHENTICATED.
        assert response.json()["error"] == "invalid_grant"
        return Outcome(code="UNAUTHENTICATED")

    async def refresh(self, refresh_token: str | None) -> Outcome:
        outcome = await self._run("POST", "/api/v1/auth/refresh", None, {"refresh_token": refresh_token})
        if outcome.code is not None:
            return outcome
        return Outcome(data=common_tokens(outcome.data, await self.me(outcome.data["access_token"])))

    async def logout(self, refresh_token: str | None) -> Outcome:
        return await self._run("POST", "/api/v1/auth/logout", None, {"refresh_token": refresh_token})

    async def change_password(self, token: str | None, current: str, new: str) -> Outcome:
        body = {"current_password": current, "new_password": new}
        return await self._run("PUT", "/api/v1/users/me/password", token, body)

    # API keys

    async def create_api_key(self, token: str | None, name: str, scopes: list[str]) -> Outcome:
        outcome = await self._run("POST", "/api/v1/api-keys", token, {"name": name, "scopes": scopes})
        return _shaped(outcome, common_new_api_key)

    async def list_api_keys(self, token: str | None) -> Outcome:
        outcome = await self._run("GET", "/api/v1/api-keys", token)
        return _shaped(outcome, lambda d: [common_api_key(k) for k in d["items"]])

    async def revoke_api_key(self, token: str | None, key_id: Id) -> Outcome:
        return await self._run("DELETE", f"/api/v1/api-keys/{_uuid(key_id)}", token)

    # fetch

    async def fetch(self, token: str | None, urls: list[str]) -> Outcome:
        outcome = await self._run("GET", "/api/v1/fetch", token, params={"urls": urls})
        return _shaped(outcome, lambda d: [common_result(r) for r in d["items"]])

    async def start_job(self, token: str | None, urls: list[str]) -> Outcome:
        return _shaped(await self._run("POST", "/api/v1/fetch-jobs", token, {"urls": urls}), common_job)

    async def start_job_from_file(self, token: str | None, content: bytes) -> Outcome:
        files = {"file": ("urls.txt", content, "text/plain")}
        return _shaped(await self._run("POST", "/api/v1/fetch-jobs", token, files=files), common_job)

    async def get_job(self, token: str | None, job_id: Id) -> Outcome:
        return _shaped(await self._run("GET", f"/api/v1/fetch-jobs/{_uuid(job_id)}", token), common_job)

    async def list_jobs(
        self, token: str | None, limit: int, cursor: str | None = None, status: str | None = None
    ) -> Outcome:
        params = {"limit": limit, "cursor": cursor, "status": status}
        present = {k: v for k, v in params.items() if v is not None}
        outcome = await self._run("GET", "/api/v1/fetch-jobs", token, params=present)
        return _shaped(outcome, lambda d: common_page([common_job(j) for j in d["items"]], d["next_cursor"]))

    async def cancel_job(self, token: str | None, job_id: Id) -> Outcome:
        return _shaped(await self._run("DELETE", f"/api/v1/fetch-jobs/{_uuid(job_id)}", token), common_job)

    async def job_results(self, token: str | None, job_id: Id, outcome: str | None = None) -> Outcome:
        params = {"outcome": outcome} if outcome is not None else {}
        found = await self._run("GET", f"/api/v1/fetch-jobs/{_uuid(job_id)}/results", token, params=params)
        return _shaped(found, lambda d: [common_result(r) for r in d["items"]])
