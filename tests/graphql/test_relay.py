"""Sockets asking the same thing follow one run of it (``api.graphql.relay``): one bus subscription
and one execution per event for all of them, each credential still checked on every event, a socket
that comes late caught up without a gap or a repeat, and nothing left once they have gone."""

import asyncio
import json
import uuid
from contextlib import AsyncExitStack

from prometheus_client import REGISTRY

from api.db.engine import Database
from api.db.models import User
from api.graphql.relay import Follower, Outcome
from api.services import events, sessions
from api.services.callers import Caller
from api.services.events import UserEventKind
from api.settings import Settings
from tests.conftest import Serve
from tests.factories import make_user
from tests.sockets import PROTOCOLS, Socket, socket, streams, subscribed
from tests.waiting import until_true

USER_EVENTS = "subscription { userEvents { kind user { email } } }"


async def signed_in(database: Database, settings: Settings, user: User) -> tuple[dict[str, str], uuid.UUID]:
    """A ``connection_init`` payload of a sign-in session of its own, and that session's family."""
    async with database.session() as session:
        started = await sessions.start(session, settings=settings, user=user)
        token = await sessions.find(session, refresh_token=started.refresh_token)
    assert token is not None
    return {"Authorization": f"Bearer {started.access.token}"}, token.family_id


async def announce(database: Database, email: str) -> None:
    async with database.session() as session:
        user = User(email=email, password_hash="-")
        session.add(user)
        await session.flush()
        await events.user_changed(session, kind=UserEventKind.CREATED, user=user)


async def emails(ws: Socket, count: int) -> list[str]:
    return [
        (await asyncio.wait_for(ws.next("1"), 5))["data"]["userEvents"]["user"]["email"] for _ in range(count)
    ]


def delivered() -> float:
    return REGISTRY.get_sample_value("switchboard_events_delivered_total", {"feed": "users"}) or 0.0


async def test_sockets_asking_the_same_thing_share_one_stream_and_a_late_one_catches_up(
    serve: Serve, live_database: Database
) -> None:
    admin = await make_user(live_database, admin=True)
    async with serve() as (url, app), AsyncExitStack() as stack:
        relays = app.state.relays
        early = []
        for _ in range(5):
            ws = await stack.enter_async_context(socket(url, PROTOCOLS[0]))
            assert (await ws.init((await signed_in(live_database, app.state.settings, admin))[0]))[
                "type"
            ] == ("connection_ack")
            await ws.subscribe("1", USER_EVENTS)
            early.append(ws)
        await subscribed(app, 5)
        assert streams(app) == 1  # one stream for the five
        [relay] = relays.values()
        before = delivered()
        await announce(live_database, "first@example.com")
        for ws in early:
            assert await emails(ws, 1) == ["first@example.com"]
        assert delivered() - before == 5  # as the metrics count deliveries: one a socket

        late = await stack.enter_async_context(socket(url, PROTOCOLS[0]))  # after the relay's first response
        await late.init((await signed_in(live_database, app.state.settings, admin))[0])
        await late.subscribe("1", USER_EVENTS)
        await until_true(lambda: streams(app) == 2, within=5, what="the late socket's own stream")
        for n in range(3):
            await announce(live_database, f"next-{n}@example.com")
        sent = [f"next-{n}@example.com" for n in range(3)]
        assert await emails(late, 3) == sent  # its own stream, then the relay's: no gap, no repeat
        for ws in early:
            assert await emails(ws, 3) == sent
        await until_true(lambda: streams(app) == 1 and len(relay.followers) == 6, within=5, what="caught up")

        for ws in [*early, late]:
            await ws.send({"type": "complete", "id": "1"})
        await until_true(lambda: not relays and streams(app) == 0, within=5, what="the relay to stop")


async def test_the_app_stops_its_relays_before_it_lets_go_of_the_database(
    serve: Serve, live_database: Database
) -> None:
    """A server stopping with a subscribed socket still open: its relay is stopped and awaited
    (its bus subscription and session closed) by the app's shutdown."""
    admin = await make_user(live_database, admin=True)
    async with AsyncExitStack() as outliving:  # the socket is closed only after the server stopped
        async with serve() as (url, app):
            ws = await outliving.enter_async_context(socket(url, PROTOCOLS[0]))
            await ws.init((await signed_in(live_database, app.state.settings, admin))[0])
            await ws.subscribe("1", USER_EVENTS)
            await subscribed(app, 1)
            [task] = app.state.relays.tasks
        assert task.done()
        assert not app.state.relays.tasks
        assert app.state.feeds.bus.subscribers == 0


async def test_a_follower_signed_out_is_closed_with_4403_and_the_others_go_on(
    serve: Serve, live_database: Database
) -> None:
    admin = await make_user(live_database, admin=True)
    async with serve(ws_ping_interval=60) as (url, app), AsyncExitStack() as stack:
        sockets, families = [], []
        for _ in range(3):
            payload, family = await signed_in(live_database, app.state.settings, admin)
            ws = await stack.enter_async_context(socket(url, PROTOCOLS[0]))
            await ws.init(payload)
            await ws.subscribe("1", USER_EVENTS)
            sockets.append(ws)
            families.append(family)
        await subscribed(app, 3)
        async with live_database.session() as session:  # one tab signs out
            await sessions.revoke_family(session, family_id=families[0])
        await announce(live_database, "after@example.com")
        assert await asyncio.wait_for(sockets[0].closed_with(), 5) == 4403  # at the event, not a minute on
        for ws in sockets[1:]:
            assert await emails(ws, 1) == ["after@example.com"]
        await announce(live_database, "later@example.com")
        for ws in sockets[1:]:
            assert await emails(ws, 1) == ["later@example.com"]


async def test_a_change_of_the_viewer_reaches_every_follower(serve: Serve, live_database: Database) -> None:
    """The account behind the shared stream stops being an administrator: each follower is told
    ``FORBIDDEN`` and its stream ends, as its own stream would."""
    admin = await make_user(live_database, admin=True)
    async with serve() as (url, app), AsyncExitStack() as stack:
        sockets = []
        for _ in range(2):
            ws = await stack.enter_async_context(socket(url, PROTOCOLS[0]))
            await ws.init((await signed_in(live_database, app.state.settings, admin))[0])
            await ws.subscribe("1", USER_EVENTS)
            sockets.append(ws)
        await subscribed(app, 2)
        async with live_database.session() as session:
            (await session.get(User, admin.id)).is_admin = False  # type: ignore[union-attr]
        await announce(live_database, "unseen@example.com")
        for ws in sockets:
            message = await asyncio.wait_for(ws.receive(), 5)
            assert message["type"] == "next", message
            assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["FORBIDDEN"]
            assert (await asyncio.wait_for(ws.receive(), 5))["type"] == "complete"


async def test_a_follower_that_falls_behind_is_ended_as_too_slow() -> None:
    follower = Follower(Caller(user=User(email="slow@example.com", password_hash="-")), limit=2)
    for n in range(3):
        follower.offer(f'{{"n":{n}}}')
    received = [text async for text in follower.responses()]
    assert received == []  # what it had not read is dropped with it
    assert follower.outcome is Outcome.FAILED
    [error] = json.loads(follower.reason)["errors"]
    assert error["extensions"]["code"] == "TOO_SLOW"
