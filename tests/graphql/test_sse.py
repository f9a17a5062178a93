"""GraphQL over Server-Sent Events (the graphql-sse protocol), in both of its modes: checked with the
protocol's own client from npm against a live server, and request by request for the refusals."""

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI

from api.db.engine import Database
from api.security import create_access_token
from tests.conftest import Serve
from tests.factories import make_user
from tests.sockets import subscribed

CLIENT = Path(__file__).parent.parent / "sse_client"
USER_EVENTS = "subscription { userEvents { kind user { email } } }"
STREAM = "/graphql/stream"
EVENTS = {"Accept": "text/event-stream"}


def needs_the_client() -> None:
    if shutil.which("node") is None or not (CLIENT / "node_modules" / "graphql-sse").is_dir():
        pytest.skip("the graphql-sse client is not installed (make sse-client; it needs npm)")


async def client_run(url: str, mode: str, token: str, count: int, query: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "node",
        str(CLIENT / "client.mjs"),
        url + STREAM,
        mode,
        token,
        str(count),
        query,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def printed(process: asyncio.subprocess.Process) -> list[Any]:
    out, err = await asyncio.wait_for(process.communicate(), timeout=20)
    lines = out.decode().splitlines()
    assert lines[-1:] == ["done"], (out.decode(), err.decode())
    return [json.loads(line) for line in lines[:-1]]


@pytest.mark.parametrize("mode", ["distinct", "single"])
async def test_the_protocols_own_client_follows_a_subscription(
    serve: Serve, live_database: Database, mode: str
) -> None:
    needs_the_client()
    admin = await make_user(live_database, admin=True)
    async with serve() as (url, app):
        token = create_access_token(app.state.settings, admin.id).token
        process = await client_run(url, mode, token, 2, USER_EVENTS)
        await subscribed(app, 1)
        await make_user(live_database, email=f"first-{mode}@example.com")
        await make_user(live_database, email=f"second-{mode}@example.com")
        results = await printed(process)
        assert [r["data"]["userEvents"]["user"]["email"] for r in results] == [
            f"first-{mode}@example.com",
            f"second-{mode}@example.com",
        ]
        await subscribed(app, 0)  # the client left: the server follows no more


@pytest.mark.parametrize("mode", ["distinct", "single"])
async def test_the_protocols_own_client_runs_a_query_and_hears_refusals(
    serve: Serve, live_database: Database, mode: str
) -> None:
    needs_the_client()
    user = await make_user(live_database, email=f"sse-{mode}@example.com")
    async with serve() as (url, app):
        token = create_access_token(app.state.settings, user.id).token
        [answer] = await printed(await client_run(url, mode, token, 10, "{ me { email } }"))
        assert answer == {"data": {"me": {"email": f"sse-{mode}@example.com"}}}
        [refused] = await printed(await client_run(url, mode, token, 10, USER_EVENTS))
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"  # not an admin


async def events(response: httpx2.Response) -> list[tuple[str, Any]]:
    """The (event, data) pairs of a whole event stream."""
    found, name = [], ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: ") or line == "data:":
            data = line.removeprefix("data:").strip()
            found.append((name, json.loads(data) if data else None))
    return found


async def test_distinct_mode_reports_errors_inside_the_stream(
    client: httpx2.AsyncClient, app: FastAPI
) -> None:
    async with client.stream("POST", STREAM, json={"query": "{ nope }"}, headers=EVENTS) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        (first, error), (last, _) = await events(response)
    assert (first, last) == ("next", "complete")
    assert error["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    refused = await client.post(
        STREAM, json={"query": "{ me { id } }"}, headers={**EVENTS, "Authorization": "Bearer x"}
    )
    assert (refused.status_code, refused.json()["errors"][0]["extensions"]["code"]) == (
        401,
        "UNAUTHENTICATED",
    )
    plain = await client.post(STREAM, json={"query": "{ me { id } }"})
    assert plain.status_code == 422  # this endpoint only streams


async def test_a_reservation_opens_one_stream_once(serve: Serve, live_database: Database) -> None:
    """A browser's EventSource: a PUT signed in with a header, then the stream opened with the
    reservation's short-lived token in the URL; the token is spent once used."""
    user = await make_user(live_database, email="browser@example.com")
    async with serve() as (url, app), httpx2.AsyncClient(base_url=url) as client:
        signed_in = {"Authorization": f"Bearer {create_access_token(app.state.settings, user.id).token}"}
        reserved = await client.put(STREAM, headers=signed_in)
        assert reserved.status_code == 201
        token = reserved.text
        params = {"token": token, "query": "{ me { email } }"}
        async with client.stream("GET", STREAM, params=params, headers=EVENTS) as response:
            assert await events(response) == [
                ("next", {"data": {"me": {"email": "browser@example.com"}}}),
                ("complete", None),
            ]
        again = await client.get(STREAM, params=params, headers=EVENTS)
        assert again.status_code == 401
        unknown = await client.post(
            STREAM, json={"query": "{ me { id } }"}, headers={"x-graphql-event-stream-token": "nope"}
        )
        assert unknown.status_code == 404


async def test_single_mode_runs_and_stops_operations_by_id(serve: Serve, live_database: Database) -> None:
    admin = await make_user(live_database, admin=True)
    async with serve() as (url, app), httpx2.AsyncClient(base_url=url, timeout=10) as client:
        signed_in = {"Authorization": f"Bearer {create_access_token(app.state.settings, admin.id).token}"}
        token = (await client.put(STREAM, headers=signed_in)).text
        ticket = {"x-graphql-event-stream-token": token}
        async with client.stream("GET", STREAM, headers={**EVENTS, **ticket}) as stream:
            again = await client.get(STREAM, headers={**EVENTS, **ticket})
            assert again.status_code == 422  # one stream per reservation
            lines = stream.aiter_lines()
            missing = await client.post(STREAM, json={"query": USER_EVENTS}, headers=ticket)
            assert missing.status_code == 422  # no operationId
            started = await client.post(
                STREAM, json={"query": USER_EVENTS, "extensions": {"operationId": "u"}}, headers=ticket
            )
            assert started.status_code == 202
            await subscribed(app, 1)
            await make_user(live_database, email="seen@example.com")
            assert await anext(lines) == "event: next"
            message = json.loads((await anext(lines)).removeprefix("data: "))
            assert message["id"] == "u"
            assert message["payload"]["data"]["userEvents"]["user"]["email"] == "seen@example.com"
            stopped = await client.delete(STREAM, params={"operationId": "u"}, headers=ticket)
            assert stopped.status_code == 200
            await subscribed(app, 0)
