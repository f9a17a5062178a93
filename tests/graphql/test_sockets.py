"""The GraphQL WebSocket protocols over real sockets, both of them, against a live uvicorn server:
sign-in from ``connection_init``, the close codes, pings, the cap on subscriptions, and what a
socket frees when an operation or the socket ends."""

import asyncio
import gc
import json
from contextlib import AsyncExitStack
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from strawberry.types.execution import ExecutionResult

from api import memory
from api.db.engine import Database
from api.graphql.context import SocketContext
from api.graphql.relay import encoded
from api.graphql.sockets import LegacyWSHandler, TransportWSHandler
from api.security import create_access_token
from api.services import fetch_jobs
from tests.conftest import Serve
from tests.factories import PASSWORD, bearer, make_user
from tests.sockets import PROTOCOLS, socket, subscribed
from tests.waiting import until_true

USER_EVENTS = "subscription { userEvents { kind user { email isAdmin } } }"


async def token_for(app: FastAPI, user_email: str) -> str:
    """An access token from a real sign-in (so it belongs to a session that can be revoked)."""
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.post(
            "/api/v1/auth/token", data={"username": user_email, "password": PASSWORD}
        )
    token: str = response.json()["access_token"]
    return token


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_sockets_sign_in_from_connection_init(
    serve: Serve, live_database: Database, protocol: str
) -> None:
    admin = await make_user(live_database, admin=True)
    async with serve() as (url, app):
        token = create_access_token(app.state.settings, admin.id).token
        for payload in ({"Authorization": f"Bearer {token}"}, {"authToken": token}):
            async with socket(url, protocol) as ws:
                assert (await ws.init(payload))["type"] == "connection_ack"
                await ws.subscribe("1", USER_EVENTS)
                await subscribed(app, 1)
                await make_user(live_database, email=f"new-{len(str(payload))}@example.com")
                assert (await ws.next("1"))["data"]["userEvents"]["kind"] == "CREATED"
        async with socket(url, protocol) as ws:  # no credentials: the subscription is refused
            assert (await ws.init())["type"] == "connection_ack"
            await ws.subscribe("1", USER_EVENTS)
            message = await ws.receive()
            assert message["type"] == "error"
            assert "UNAUTHENTICATED" in str(message["payload"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "payload", [{"Authorization": "Bearer not-a-token"}, {"authToken": 42}, {"Authorization": "Basic abc"}]
)
async def test_bad_credentials_close_the_socket_with_4403(serve: Serve, protocol: str, payload: Any) -> None:
    async with serve() as (url, _), socket(url, protocol) as ws:
        await ws.send({"type": "connection_init", "payload": payload})
        assert await ws.closed_with() == 4403


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_socket_without_connection_init_is_closed_with_4408(serve: Serve, protocol: str) -> None:
    async with serve(ws_connection_init_timeout=0.3) as (url, _), socket(url, protocol) as ws:
        assert await asyncio.wait_for(ws.closed_with(), 5) == 4408


MALFORMED: list[object] = [
    [1, 2],
    42,
    "text",
    None,
    {"type": 7},
    {"type": "connection_init", "payload": "a string"},
    {"type": "SUBSCRIBE", "id": "1", "payload": "a string"},
    {"type": "SUBSCRIBE", "id": "1", "payload": None},
    {"type": "SUBSCRIBE", "id": "1", "payload": {"query": 5}},
    {"type": "SUBSCRIBE", "id": 1, "payload": {"query": "{ me { id } }"}},
    {"type": "SUBSCRIBE", "id": "1", "payload": {"query": "{ me { id } }", "variables": [1]}},
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("message", MALFORMED, ids=range(len(MALFORMED)))
async def test_malformed_messages_close_with_4400(serve: Serve, protocol: str, message: object) -> None:
    if isinstance(message, dict) and message.get("type") == "SUBSCRIBE":
        message = {**message, "type": "subscribe" if protocol == "graphql-transport-ws" else "start"}
    async with serve() as (url, _), socket(url, protocol) as ws:
        if not (isinstance(message, dict) and message.get("type") == "connection_init"):
            assert (await ws.init())["type"] == "connection_ack"
        await ws.send(message)
        assert await ws.closed_with() == 4400


async def test_the_server_pings_and_drops_a_peer_that_does_not_answer(serve: Serve) -> None:
    async with serve(ws_ping_interval=0.2, ws_ping_timeout=0.3) as (url, _), socket(url, PROTOCOLS[0]) as ws:
        await ws.init()
        assert (await ws.receive(skip_keepalive=False))["type"] == "ping"
        await ws.send({"type": "pong"})
        assert (await ws.receive(skip_keepalive=False))["type"] == "ping"
        assert await asyncio.wait_for(ws.closed_with(), 5) == 1011


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_an_expired_or_revoked_token_closes_the_socket_with_4403(
    serve: Serve, live_database: Database, protocol: str
) -> None:
    user = await make_user(live_database)
    async with serve(access_token_ttl=1, ws_ping_interval=0.2) as (url, app), socket(url, protocol) as ws:
        await ws.init({"Authorization": f"Bearer {await token_for(app, user.email)}"})
        assert await asyncio.wait_for(ws.closed_with(), 5) == 4403
    async with serve(ws_ping_interval=0.2) as (url, app), httpx2.AsyncClient(base_url=url) as http:
        signed_in = await http.post("/api/v1/auth/token", data={"username": user.email, "password": PASSWORD})
        tokens = signed_in.json()
        async with socket(url, protocol) as ws:
            await ws.init({"Authorization": f"Bearer {tokens['access_token']}"})
            await http.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
            assert await asyncio.wait_for(ws.closed_with(), 5) == 4403


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_each_event_reads_with_a_short_session_and_a_disconnect_frees_everything(
    serve: Serve, live_database: Database, protocol: str
) -> None:
    admin = await make_user(live_database, admin=True)
    async with serve() as (url, app):
        pool = live_database.engine.pool
        async with socket(url, protocol) as ws:
            await ws.init(bearer(app.state.settings, admin))
            await ws.subscribe("1", USER_EVENTS)
            await subscribed(app, 1)
            for n in range(3):
                await make_user(live_database, email=f"short-{n}@example.com")
                assert (await ws.next("1"))["data"]["userEvents"]["user"]["email"] == f"short-{n}@example.com"
                assert pool.checkedout() == 0  # type: ignore[attr-defined]
        await subscribed(app, 0)
        assert pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_subscriptions_per_socket_are_capped(
    serve: Serve, live_database: Database, protocol: str
) -> None:
    admin = await make_user(live_database, admin=True)
    async with serve(ws_max_subscriptions=2) as (url, app), socket(url, protocol) as ws:
        await ws.init(bearer(app.state.settings, admin))
        for id in ("1", "2", "3"):
            await ws.subscribe(id, USER_EVENTS)
        message = await ws.receive()
        assert (message["type"], message["id"]) == ("error", "3")
        assert "Subscription limit reached" in str(message["payload"])


async def test_a_subscriber_leaving_while_its_event_executes_leaves_no_connection_behind(
    serve: Serve, live_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The execution of an event runs in the subscriber's own task and session scope: ``complete``
    sent while it reads stops it with its session, and nothing stays checked out of the pool."""
    reading, interrupted = asyncio.Event(), asyncio.Event()
    read_jobs = fetch_jobs.jobs_of_owners

    async def slow_read(*args: Any, **kwargs: Any) -> Any:  # the real read, made slow enough to interrupt
        reading.set()
        try:
            await asyncio.sleep(0.5)  # slow on purpose: the window in which ``complete`` arrives
        except asyncio.CancelledError:
            interrupted.set()
            raise
        return await read_jobs(*args, **kwargs)

    monkeypatch.setattr(fetch_jobs, "jobs_of_owners", slow_read)
    admin = await make_user(live_database, admin=True)
    query = "subscription { userEvents { user { fetchJobs(first: 5) { edges { node { id } } } } } }"
    async with serve() as (url, app), socket(url, PROTOCOLS[0]) as ws:
        await ws.init({"authToken": create_access_token(app.state.settings, admin.id).token})
        await ws.subscribe("1", query)
        await subscribed(app, 1)
        await make_user(live_database)
        await asyncio.wait_for(reading.wait(), 5)
        await ws.send({"type": "complete", "id": "1"})
        await subscribed(app, 0)
        await asyncio.wait_for(interrupted.wait(), 5)  # the read was stopped, not left to run on

        def none_checked_out() -> bool:
            return bool(live_database.engine.pool.checkedout() == 0)  # type: ignore[attr-defined]

        await until_true(none_checked_out, within=1, what="the event's session to give its connection back")


def test_a_shared_response_is_encoded_once_for_every_socket_of_the_event() -> None:
    data = {"userEvents": {"kind": "UPDATED"}}
    shared: dict[Any, Any] = {}
    first = encoded(shared, ExecutionResult(data=data, errors=None))
    second = encoded(shared, ExecutionResult(data=data, errors=None))  # another subscriber's result
    assert first is second  # the same text object goes to each socket
    assert json.loads(first) == {"data": data}
    assert encoded(shared, ExecutionResult(data=dict(data), errors=None)) is not first  # its own data


async def test_closed_sockets_leave_no_socket_state_behind(
    serve: Serve, live_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thirty subscribed sockets that go away (half of them cut off without a close) leave no socket
    context, handler or bus subscription behind: what a socket held is freed with it, so what a
    server holds does not grow with the sockets it has seen. Much of it is reference cycles, which
    the server collects itself once the closes have settled (``api.memory``): the collector's own
    runs are off here, so nothing else frees them."""
    admin = await make_user(live_database, admin=True)
    monkeypatch.setattr(memory, "trimmer", memory.Trimmer(min_gap=0))  # not held back by earlier tests

    def alive() -> int:
        kinds = (SocketContext, TransportWSHandler, LegacyWSHandler)
        return sum(isinstance(thing, kinds) for thing in gc.get_objects())

    async with serve() as (url, app):
        gc.collect()
        before = alive()
        gc.disable()
        try:
            async with AsyncExitStack() as stack:
                opened = []
                for n in range(30):
                    ws = await stack.enter_async_context(socket(url, PROTOCOLS[n % 2]))
                    await ws.init(bearer(app.state.settings, admin))
                    await ws.subscribe("1", USER_EVENTS)
                    opened.append(ws)
                await subscribed(app, 30)
                assert alive() >= before + 30
                for ws in opened[:15]:
                    ws.connection.transport.abort()  # gone without a word
            await subscribed(app, 0)
            await until_true(lambda: alive() <= before, within=5, what="every socket's state to be freed")
        finally:
            gc.enable()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_subscription_past_the_limits_is_refused_before_it_starts(
    serve: Serve, live_database: Database, protocol: str
) -> None:
    """The cost and depth limits hold for subscriptions as for queries, and a refused one takes
    nothing from the socket: the next subscription on it runs."""
    admin = await make_user(live_database, admin=True)
    deep = "subscription { myFetchJobEvents { job { owner { fetchJobs { nodes { owner { id } } } } } } }"
    async with serve(graphql_max_depth=5) as (url, app), socket(url, protocol) as ws:
        await ws.init(bearer(app.state.settings, admin))
        await ws.subscribe("1", deep)
        [error] = (await ws.next("1"))["errors"]
        assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX", "depth": 6, "maxDepth": 5}
        assert (await ws.receive())["type"] == "complete"
        await ws.subscribe("2", USER_EVENTS)
        await subscribed(app, 1)
        await make_user(live_database, email="after-the-refusal@example.com")
        assert (await ws.next("2"))["data"]["userEvents"]["kind"] == "CREATED"
