"""GraphQL subscriptions over real sockets, on both protocols, against a live uvicorn server."""

import asyncio
import uuid
from contextlib import AsyncExitStack
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from api.db.engine import Database
from api.security import create_access_token
from api.services import fetch_jobs, users
from api.services.commands import UserCreate
from tests.conftest import Serve
from tests.factories import PASSWORD, bearer, graphql, make_user
from tests.sockets import PROTOCOLS, Socket, socket
from tests.sql import statements

JOB_EVENTS = """subscription ($id: ID!) { fetchJobEvents(id: $id) {
  job { id status completed total } result { position url outcome } } }"""
MY_JOB_EVENTS = """subscription { myFetchJobEvents {
  job { id status completed total } result { position url outcome } } }"""
USER_EVENTS = "subscription { userEvents { kind user { email isAdmin } } }"
START_JOB = "mutation ($urls: [String!]!) { startFetchJob(urls: $urls) { id } }"


async def subscribed(app: FastAPI, count: int) -> None:
    """Until the server has ``count`` subscribers on its bus (a subscribe message is handled
    asynchronously: an event sent before would not reach it)."""
    for _ in range(250):
        if app.state.feeds.bus.subscribers == count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{app.state.feeds.bus.subscribers} subscribers, not {count}")


async def token_for(app: FastAPI, user_email: str) -> str:
    """An access token from a real sign-in (so it belongs to a session that can be revoked)."""
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.post(
            "/api/v1/auth/token", data={"username": user_email, "password": PASSWORD}
        )
    token: str = response.json()["access_token"]
    return token


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_job_streams_its_state_each_result_and_its_end(
    serve: Serve, live_database: Database, targets: str, protocol: str
) -> None:
    user = await make_user(live_database)
    async with serve() as (url, app), httpx2.AsyncClient(base_url=url) as http:
        headers = bearer(app.state.settings, user)
        urls = [f"{targets}/slow?s=0.2", f"{targets}/ok", f"{targets}/status/404"]
        started = await http.post("/api/v1/fetch-jobs", json={"urls": urls}, headers=headers)
        job_id = started.json()["node_id"]
        async with socket(url, protocol) as ws:
            assert (await ws.init({"Authorization": headers["Authorization"]}))["type"] == "connection_ack"
            await ws.subscribe("1", JOB_EVENTS, {"id": job_id})
            first = (await ws.next("1"))["data"]["fetchJobEvents"]
            assert first["result"] is None
            assert first["job"]["id"] == job_id
            seen = first["job"]["completed"]
            events = []
            while True:
                event = (await ws.next("1"))["data"]["fetchJobEvents"]
                events.append(event)
                if event["job"]["status"] == "DONE" and event["result"] is None:
                    break
            assert (await ws.receive())["type"] == "complete"
    positions = sorted(e["result"]["position"] for e in events if e["result"])
    assert len(positions) == 3 - seen
    assert len(set(positions)) == len(positions)
    assert events[-1]["job"]["completed"] == 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_my_job_events_follow_the_callers_new_jobs_and_no_one_elses(
    serve: Serve, live_database: Database, targets: str, protocol: str
) -> None:
    user, other = await make_user(live_database), await make_user(live_database)
    async with serve() as (url, app), httpx2.AsyncClient(base_url=url) as http:
        mine, theirs = bearer(app.state.settings, user), bearer(app.state.settings, other)
        async with socket(url, protocol) as ws:
            assert (await ws.init(mine))["type"] == "connection_ack"
            await ws.subscribe("1", MY_JOB_EVENTS)
            await subscribed(app, 1)
            their_job = await http.post(
                "/api/v1/fetch-jobs", json={"urls": [f"{targets}/ok"]}, headers=theirs
            )
            await app.state.jobs.wait(uuid.UUID(their_job.json()["id"]))
            their_status = await http.get(f"/api/v1/fetch-jobs/{their_job.json()['id']}", headers=theirs)
            assert their_status.json()["status"] == "DONE"
            urls = [f"{targets}/slow?s=0.3", f"{targets}/slow?s=0.4", f"{targets}/slow?s=0.5"]
            started = await graphql(http, START_JOB, {"urls": urls}, headers=mine)
            # Its start, its claim, one per result, its end: every event of the caller's jobs, none skipped.
            events = [
                (await asyncio.wait_for(ws.next("1"), 5))["data"]["myFetchJobEvents"]
                for _ in range(len(urls) + 3)
            ]
    # The other user's job never showed (it ran while we listened, before ours started).
    assert {event["job"]["id"] for event in events} == {started["data"]["startFetchJob"]["id"]}
    opened, claimed, *fetched, ended = events
    # No state first: the stream opens on the job's start, read as it stands (maybe claimed already).
    assert (opened["result"], opened["job"]["completed"]) == (None, 0)
    assert opened["job"]["status"] in {"PENDING", "RUNNING"}
    assert claimed["result"] is None
    assert sorted(event["result"]["position"] for event in fetched) == [0, 1, 2]
    assert (ended["result"], ended["job"]["status"], ended["job"]["completed"]) == (None, "DONE", 3)


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


async def test_a_subscriber_that_falls_behind_is_cut_off(serve: Serve, live_database: Database) -> None:
    admin = await make_user(live_database, admin=True)
    async with serve(subscription_queue_size=1) as (url, app), socket(url, PROTOCOLS[0]) as ws:
        await ws.init(bearer(app.state.settings, admin))
        await ws.subscribe("1", USER_EVENTS)
        await subscribed(app, 1)
        async with live_database.session() as session:  # three events in one commit: one burst
            for n in range(3):
                await users.create_user(
                    session, data=UserCreate(email=f"burst-{n}@example.com", password=PASSWORD)
                )
        messages = [await asyncio.wait_for(ws.receive(), 5)]
        while messages[-1]["type"] != "complete":
            messages.append(await asyncio.wait_for(ws.receive(), 5))
        await subscribed(app, 0)
    assert [m["type"] for m in messages][-2:] == ["next", "complete"]
    assert "fell too far behind" in str(messages[-2]["payload"]["errors"])


async def test_after_the_bus_listens_again_a_job_stream_rereads_the_job_and_goes_on(
    serve: Serve, live_database: Database, targets: str
) -> None:
    """The PostgreSQL listener loses its connection (its backend is terminated): what was announced
    meanwhile is lost, so the stream re-reads the job; the events after the reconnection arrive."""
    if live_database.engine.dialect.name != "postgresql":
        pytest.skip("the PostgreSQL bus")
    user = await make_user(live_database)
    async with serve() as (url, app), httpx2.AsyncClient(base_url=url) as http:
        headers = bearer(app.state.settings, user)
        bus = app.state.feeds.bus
        urls = [f"{targets}/slow?s=0.3", f"{targets}/slow?s=2.5"]
        started = await http.post("/api/v1/fetch-jobs", json={"urls": urls}, headers=headers)
        async with socket(url, PROTOCOLS[0]) as ws:
            await ws.init({"Authorization": headers["Authorization"]})
            await ws.subscribe("1", JOB_EVENTS, {"id": started.json()["node_id"]})
            while (await ws.next("1"))["data"]["fetchJobEvents"]["result"] is None:
                pass  # the state, maybe the claim, then the first result; the second is 2 s away
            listener = bus.listener_pid
            async with live_database.session() as session:
                assert await session.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": listener})
            answers: list[str] = []  # what /readyz says of the bus, until it listens again
            while "unreachable" not in answers or answers[-1] != "ok":
                assert len(answers) < 250, f"the bus did not go down and come back: {answers[-3:]}"
                answers.append((await http.get("/readyz")).json()["bus"])
                await asyncio.sleep(0.02)
            assert bus.listener_pid not in (None, listener)
            ready = await http.get("/readyz")
            assert (ready.status_code, ready.json()) == (200, {"status": "ok", "database": "ok", "bus": "ok"})
            reread, fetched, ended = [(await ws.next("1"))["data"]["fetchJobEvents"] for _ in range(3)]
            assert (await ws.receive())["type"] == "complete"
    assert (reread["result"], reread["job"]["status"], reread["job"]["completed"]) == (None, "RUNNING", 1)
    assert (fetched["result"]["position"], fetched["job"]["completed"]) == (1, 2)
    assert (ended["result"], ended["job"]["status"]) == (None, "DONE")


async def test_subscribers_asking_the_same_share_one_execution_per_event(
    serve: Serve, live_database: Database
) -> None:
    """Three sockets of one administrator and one of another, all with the same subscription: one
    event is executed once per viewer, not once per subscriber, and each gets the same answer."""
    first, second = await make_user(live_database, admin=True), await make_user(live_database, admin=True)
    query = """subscription { userEvents { kind user { email
      fetchJobs(first: 5) { edges { node { id } } } } } }"""
    async with serve() as (url, app), AsyncExitStack() as stack:
        sockets: list[Socket] = []
        for admin in (first, first, first, second):
            ws = await stack.enter_async_context(socket(url, PROTOCOLS[0]))
            await ws.init({"authToken": create_access_token(app.state.settings, admin.id).token})
            await ws.subscribe("1", query)
            sockets.append(ws)
        await subscribed(app, len(sockets))
        with statements(live_database.engine) as sent:
            await make_user(live_database, email="watched@example.com")
            answers = [(await ws.next("1"))["data"]["userEvents"] for ws in sockets]
    assert (
        answers
        == [{"kind": "CREATED", "user": {"email": "watched@example.com", "fetchJobs": {"edges": []}}}] * 4
    )
    assert len([s for s in sent if "FROM fetch_jobs" in s]) == 2


async def test_a_subscriber_leaving_while_its_event_executes_leaves_no_connection_behind(
    serve: Serve, live_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The execution of an event runs in the subscriber's own task and session scope: ``complete``
    sent while it reads stops it with its session, and nothing stays checked out of the pool."""
    reading = asyncio.Event()
    read_jobs = fetch_jobs.jobs_of_owners

    async def slow_read(*args: Any, **kwargs: Any) -> Any:  # the real read, made slow enough to interrupt
        reading.set()
        await asyncio.sleep(0.5)
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
        await asyncio.sleep(0.7)  # past the end of the interrupted read
        assert live_database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
