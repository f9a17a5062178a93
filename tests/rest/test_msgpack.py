"""MessagePack on every REST route: asked for with ``Accept``, sent as request bodies, problem
documents included; the answers are the JSON documents, in another form."""

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx2
import msgpack
from fastapi import FastAPI

from api.db.engine import Database
from api.jobs import JobRunner
from api.settings import Settings
from tests.factories import PASSWORD, bearer, make_user

MSGPACK = "application/msgpack"
OPENAPI = Path(__file__).parents[2] / "openapi.json"
# Answered as files or event streams, whatever ``Accept`` says: shown untouched below.
NOT_DOCUMENTS = {
    ("GET", "/api/v1/fetch-jobs/{job_id}/events"),
    ("GET", "/api/v1/fetch-jobs/{job_id}/results.csv"),
    ("GET", "/api/v1/fetch-jobs/{job_id}/results.ndjson"),
}


class Session:
    """A client that speaks only MessagePack, and the route templates it has called."""

    def __init__(self, client: httpx2.AsyncClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers
        self.called: set[tuple[str, str]] = set()

    async def call(
        self, method: str, template: str, body: Any = None, params: Any = None, **values: str
    ) -> httpx2.Response:
        self.called.add((method, template))
        path = template.format(**values)
        headers = {**self.headers, "Accept": MSGPACK}
        content = None
        if body is not None:
            content = msgpack.packb(body)
            headers["Content-Type"] = MSGPACK
        response = await self.client.request(method, path, content=content, headers=headers, params=params)
        if response.content:
            assert response.headers["content-type"] == MSGPACK, (method, path, response.text)
        return response

    async def same_as_json(self, template: str, **values: str) -> Any:
        """A read answered twice, as MessagePack and as JSON: the same document."""
        packed = await self.call("GET", template, **values)
        assert packed.status_code == 200, packed.content
        plain = await self.client.get(template.format(**values), headers=self.headers)
        document = msgpack.unpackb(packed.content)
        assert document == plain.json()
        assert packed.headers["etag"] == plain.headers["etag"][:-1] + '-msgpack"'
        assert "Accept" in packed.headers["vary"]
        return document


def _operations() -> set[tuple[str, str]]:
    paths = json.loads(OPENAPI.read_text())["paths"]
    return {
        (method.upper(), path) for path, ops in paths.items() if path.startswith("/api/v1") for method in ops
    }


async def test_every_route_speaks_messagepack(
    live_app: FastAPI,
    live_client: httpx2.AsyncClient,
    live_database: Database,
    live_settings: Settings,
    targets: str,
) -> None:
    admin = await make_user(live_database, admin=True)
    anonymous = Session(live_client, {})
    me = Session(live_client, bearer(live_settings, admin))

    created = await anonymous.call(
        "POST", "/api/v1/users", {"email": "pack@example.com", "password": PASSWORD}
    )
    assert created.status_code == 201
    user = msgpack.unpackb(created.content)
    assert user["email"] == "pack@example.com"
    token = await anonymous.call("POST", "/api/v1/auth/token", None)  # a form route: its refusal, packed
    assert token.status_code == 400
    assert msgpack.unpackb(token.content)["error"] == "invalid_request"
    form = {"username": "pack@example.com", "password": PASSWORD}
    signed = await live_client.post("/api/v1/auth/token", data=form, headers={"Accept": MSGPACK})
    tokens = msgpack.unpackb(signed.content)
    refreshed = await anonymous.call(
        "POST", "/api/v1/auth/refresh", {"refresh_token": tokens["refresh_token"]}
    )
    tokens = msgpack.unpackb(refreshed.content)
    assert tokens["token_type"].lower() == "bearer"
    them = Session(live_client, {"Authorization": f"Bearer {tokens['access_token']}"})

    await me.same_as_json("/api/v1/users/me")
    await me.same_as_json("/api/v1/users")
    await me.same_as_json("/api/v1/users/{user_id}", user_id=user["id"])
    patched = await them.call("PATCH", "/api/v1/users/me", {"display_name": "Packed"})
    assert msgpack.unpackb(patched.content)["display_name"] == "Packed"
    password = {"current_password": PASSWORD, "new_password": PASSWORD + " again"}
    assert (await them.call("PUT", "/api/v1/users/me/password", password)).status_code == 204
    updated = await me.call("PATCH", "/api/v1/users/{user_id}", {"display_name": "P"}, user_id=user["id"])
    assert msgpack.unpackb(updated.content)["display_name"] == "P"
    replaced = {"display_name": "Q", "is_active": True, "is_admin": False}
    assert (await me.call("PUT", "/api/v1/users/{user_id}", replaced, user_id=user["id"])).status_code == 200

    key = await me.call("POST", "/api/v1/api-keys", {"name": "packed", "scopes": ["users:read"]})
    assert key.status_code == 201
    key_id = msgpack.unpackb(key.content)["api_key"]["id"]
    await me.same_as_json("/api/v1/api-keys")
    assert (await me.call("DELETE", "/api/v1/api-keys/{key_id}", key_id=key_id)).status_code == 204

    now = await me.call("GET", "/api/v1/fetch", params={"urls": f"{targets}/ok"})
    assert [result["outcome"] for result in msgpack.unpackb(now.content)["items"]] == ["OK"]
    started = await me.call("POST", "/api/v1/fetch-jobs", {"urls": [f"{targets}/ok"]})
    assert started.status_code == 202
    job_id = msgpack.unpackb(started.content)["id"]
    jobs: JobRunner = live_app.state.jobs
    await jobs.wait(uuid.UUID(job_id))
    await me.same_as_json("/api/v1/fetch-jobs")
    await me.same_as_json("/api/v1/fetch-jobs/{job_id}", job_id=job_id)
    await me.same_as_json("/api/v1/fetch-jobs/{job_id}/results", job_id=job_id)
    for method, template in NOT_DOCUMENTS - {("GET", "/api/v1/fetch-jobs/{job_id}/events")}:
        me.called.add((method, template))
        export = await live_client.get(
            template.format(job_id=job_id), headers={**me.headers, "Accept": MSGPACK}
        )
        assert not re.search("msgpack", export.headers["content-type"])
    me.called.add(("GET", "/api/v1/fetch-jobs/{job_id}/events"))  # streamed: tests/rest/test_events.py
    assert (await me.call("DELETE", "/api/v1/fetch-jobs/{job_id}", job_id=job_id)).status_code in (200, 409)

    assert (
        await them.call("POST", "/api/v1/auth/logout", {"refresh_token": tokens["refresh_token"]})
    ).status_code == 204
    assert (await me.call("DELETE", "/api/v1/users/{user_id}", user_id=user["id"])).status_code == 204
    assert me.called | them.called | anonymous.called == _operations()


async def test_problem_documents_come_packed(client: httpx2.AsyncClient) -> None:
    missing = await client.get("/api/v1/users/me", headers={"Accept": MSGPACK})
    assert missing.status_code == 401
    assert missing.headers["content-type"] == MSGPACK
    assert msgpack.unpackb(missing.content)["code"] == "UNAUTHENTICATED"
    invalid = await client.post(
        "/api/v1/users", content=msgpack.packb({"email": "nope"}), headers={"Content-Type": MSGPACK}
    )
    assert invalid.status_code == 422
    assert invalid.headers["content-type"] == "application/problem+json"  # asked for no MessagePack
    assert set(invalid.json()["errors"]) == {"email", "password"}


async def test_a_body_that_is_no_messagepack_document_is_a_400(client: httpx2.AsyncClient) -> None:
    nested = b"\x91" * 1020 + b"\xc0"  # deeper than json.dumps goes
    for body in (b"\xc1", msgpack.packb({"a": 1}) + b"\x00", msgpack.packb({"raw": b"\x00\x01"}), nested):
        response = await client.post(
            "/api/v1/users", content=body, headers={"Content-Type": MSGPACK, "Accept": MSGPACK}
        )
        assert response.status_code == 400, body
        assert msgpack.unpackb(response.content)["code"] == "BAD_REQUEST"


async def test_x_msgpack_and_weights(client: httpx2.AsyncClient) -> None:
    old = await client.get("/healthz", headers={"Accept": "application/x-msgpack"})
    assert old.headers["content-type"] == "application/x-msgpack"
    refused = await client.get("/healthz", headers={"Accept": "application/json, application/msgpack;q=0"})
    assert refused.headers["content-type"] == "application/json"
    preferred = await client.get(
        "/healthz", headers={"Accept": "application/json;q=0.5, application/msgpack"}
    )
    assert preferred.headers["content-type"] == MSGPACK


async def test_a_body_over_the_limit_is_a_413_as_json_or_as_sent(
    client: httpx2.AsyncClient, settings: Settings
) -> None:
    """Counted as sent (a chunked body, no length declared) and again as the JSON it becomes,
    which can be several times longer: ``false`` is one byte of MessagePack."""
    limit = settings.request_max_bytes

    async def chunks(total: int):  # type: ignore[no-untyped-def]
        for _ in range(total // 65536 + 1):
            yield b"\xc2" * 65536

    packed = {"Content-Type": MSGPACK, "Accept": MSGPACK}
    sent = await client.post("/api/v1/users", content=chunks(limit + 1), headers=packed)
    assert sent.status_code == 413
    assert msgpack.unpackb(sent.content)["code"] == "PAYLOAD_TOO_LARGE"
    grown = msgpack.packb([False] * (limit // 5))  # under the limit as MessagePack, over it as JSON
    assert len(grown) < limit
    answer = await client.post("/api/v1/users", content=grown, headers=packed)
    assert answer.status_code == 413
    assert msgpack.unpackb(answer.content)["code"] == "PAYLOAD_TOO_LARGE"
