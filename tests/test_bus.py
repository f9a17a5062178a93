"""The event bus as a live stream feels it: a subscriber that falls behind is cut off, and
PostgreSQL's listener comes back after losing its connection, and a newer job state replaces one not read yet."""

import asyncio

import httpx2
import pytest
from sqlalchemy import text

from api.bus import Event, LocalBus
from api.db.engine import Database
from api.db.models import User
from api.services import events
from api.services.events import UserEventKind
from tests.conftest import Serve
from tests.factories import bearer, make_user
from tests.sockets import PROTOCOLS, socket, subscribed
from tests.targets import gate
from tests.waiting import until

USER_EVENTS = "subscription { userEvents { kind user { email isAdmin } } }"

JOB_EVENTS = """subscription ($id: ID!) { fetchJobEvents(id: $id) {
  job { id status completed total } result { position url outcome } } }"""


async def test_a_subscriber_that_falls_behind_is_cut_off(serve: Serve, live_database: Database) -> None:
    admin = await make_user(live_database, admin=True)
    async with serve(subscription_queue_size=1) as (url, app), socket(url, PROTOCOLS[0]) as ws:
        await ws.init(bearer(app.state.settings, admin))
        await ws.subscribe("1", USER_EVENTS)
        await subscribed(app, 1)
        async with live_database.session() as session:  # three events in one commit: one burst
            for n in range(3):
                user = User(email=f"burst-{n}@example.com", password_hash="-")
                session.add(user)
                await session.flush()
                await events.user_changed(session, kind=UserEventKind.CREATED, user=user)
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
    async with (
        gate(targets) as second,  # fetched once the bus listens again
        serve() as (url, app),
        httpx2.AsyncClient(base_url=url) as http,
    ):
        headers = bearer(app.state.settings, user)
        bus = app.state.feeds.bus
        urls = [f"{targets}/slow?s=0.3", second.url]
        started = await http.post("/api/v1/fetch-jobs", json={"urls": urls}, headers=headers)
        async with socket(url, PROTOCOLS[0]) as ws:
            await ws.init({"Authorization": headers["Authorization"]})
            await ws.subscribe("1", JOB_EVENTS, {"id": started.json()["node_id"]})
            while (await ws.next("1"))["data"]["fetchJobEvents"]["result"] is None:
                pass  # the state, maybe the claim, then the first result; the second waits
            listener = bus.listener_pid
            async with live_database.session() as session:
                assert await session.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": listener})
            answers: list[str] = []  # what /readyz says of the bus, until it listens again

            async def back() -> bool:
                answers.append((await http.get("/readyz")).json()["bus"])
                return "unreachable" in answers and answers[-1] == "ok"

            await until(back, within=5, what="the bus to go down and come back")
            assert bus.listener_pid not in (None, listener)
            ready = await http.get("/readyz")
            assert (ready.status_code, ready.json()) == (200, {"status": "ok", "database": "ok", "bus": "ok"})
            # The resync's re-read before the gate opens: it may come after /readyz says ok, and once
            # the second URL is fetched, it would rightly bring that result first.
            reread = (await ws.next("1"))["data"]["fetchJobEvents"]
            second.open()
            fetched, ended = [(await ws.next("1"))["data"]["fetchJobEvents"] for _ in range(2)]
            assert (await ws.receive())["type"] == "complete"
    assert (reread["result"], reread["job"]["status"], reread["job"]["completed"]) == (None, "RUNNING", 1)
    assert (fetched["result"]["position"], fetched["job"]["completed"]) == (1, 2)
    assert (ended["result"], ended["job"]["status"]) == (None, "DONE")


async def test_a_newer_job_state_replaces_one_not_read_yet_and_every_result_stays() -> None:
    bus = LocalBus()
    subscription = bus.subscribe("job:1", maxsize=10)

    def state(status: str) -> Event:
        return Event(("job:1",), {"status": status, "position": None}, replaces="job-state:1")

    for event in (state("PENDING"), Event(("job:1",), {"position": 0}), state("RUNNING")):
        bus.dispatch(event)
    bus.dispatch(Event(("job:1",), {"position": 1}))
    bus.dispatch(state("DONE"))
    read = [(await subscription.get()).data for _ in range(3)]
    assert read == [{"position": 0}, {"position": 1}, {"status": "DONE", "position": None}]
    assert subscription.coalesced == 2
    decoded = Event.decode(state("DONE").encode())
    assert decoded.replaces == "job-state:1"  # across processes too
    async with subscription:
        pass
    assert bus.subscribers == 0


async def test_a_subscription_of_size_zero_is_unbounded() -> None:
    """As for ``asyncio.Queue``: the job runner listens for its job's cancel that way, and a bounded
    reading of 0 cut it off at the first event, so a cancel waited for the lease to notice it."""
    bus = LocalBus()
    subscription = bus.subscribe("job:1", maxsize=0)
    for n in range(1000):
        bus.dispatch(Event(("job:1",), {"n": n}))
    assert not subscription.overflowed
    assert [(await subscription.get()).data["n"] for _ in range(1000)] == list(range(1000))
    bus.unsubscribe(subscription)
