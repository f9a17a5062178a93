"""Sign-in without a query per request: the account and the session come from the process's cache,
and a change to either (deactivation, demotion, logout, password change) holds from the next
request on, on every worker."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from api.bus import Event, bus_for
from api.db.engine import Database
from api.db.models import User
from api.services import users
from api.services.events import USERS_TOPIC
from api.services.signins import UNKNOWN, SignIns
from api.settings import Settings
from tests.conftest import asgi_client, running_app, settings_for_tests
from tests.factories import PASSWORD, bearer, make_user
from tests.sql import statements
from tests.waiting import until


async def sign_in(client: httpx2.AsyncClient, email: str) -> dict[str, str]:
    """An access token and a refresh token of a new sign-in session."""
    response = await client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


def authorized(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_a_known_caller_costs_no_query(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    user = await make_user(database)
    tokens = await sign_in(client, user.email)
    await client.get("/api/v1/users/me", headers=authorized(tokens))
    with statements(database.engine) as sent:
        response = await client.get("/api/v1/users/me", headers=authorized(tokens))
    assert response.status_code == 200
    assert sent == []  # the account and its session, as this process last read them


async def test_logout_ends_the_access_token_at_once(client: httpx2.AsyncClient, database: Database) -> None:
    user = await make_user(database)
    tokens = await sign_in(client, user.email)
    assert (await client.get("/api/v1/users/me", headers=authorized(tokens))).status_code == 200
    logout = await client.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert logout.status_code == 204
    refused = await client.get("/api/v1/users/me", headers=authorized(tokens))
    assert refused.status_code == 401
    assert refused.json()["detail"] == "The sign-in session has ended."


async def test_a_password_change_ends_the_other_sessions_at_once(
    client: httpx2.AsyncClient, database: Database
) -> None:
    user = await make_user(database)
    kept, other = await sign_in(client, user.email), await sign_in(client, user.email)
    assert (await client.get("/api/v1/users/me", headers=authorized(other))).status_code == 200
    changed = await client.put(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": "another long password"},
        headers=authorized(kept),
    )
    assert changed.status_code == 204, changed.text
    assert (await client.get("/api/v1/users/me", headers=authorized(other))).status_code == 401
    assert (await client.get("/api/v1/users/me", headers=authorized(kept))).status_code == 200


async def test_deactivation_and_demotion_hold_from_the_next_request(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    root = await make_user(database, admin=True)
    deputy, member = await make_user(database, admin=True), await make_user(database)
    as_deputy, as_member = bearer(settings, deputy), bearer(settings, member)
    assert (await client.get("/api/v1/users", headers=as_deputy)).status_code == 200
    assert (await client.get("/api/v1/users/me", headers=as_member)).status_code == 200
    await client.patch(f"/api/v1/users/{deputy.id}", json={"is_admin": False}, headers=bearer(settings, root))
    await client.patch(
        f"/api/v1/users/{member.id}", json={"is_active": False}, headers=bearer(settings, root)
    )
    assert (await client.get("/api/v1/users", headers=as_deputy)).status_code == 403
    assert (await client.get("/api/v1/users/me", headers=as_member)).status_code == 401


async def test_a_read_that_raced_a_change_is_not_kept(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The account is read; before the answer is back, the bus says it changed. The answer serves
    the request that read it, and the next request reads again."""
    user = await make_user(database)
    cache = SignIns()
    real = users.get_active

    async def changed_meanwhile(*args: Any, **kwargs: Any) -> User | None:
        found = await real(*args, **kwargs)
        cache.forget(user_id=user.id)
        return found

    monkeypatch.setattr(users, "get_active", changed_meanwhile)
    async with database.session() as session:
        assert (await cache.account(session, user.id)) is not None
    monkeypatch.setattr(users, "get_active", real)
    async with database.session() as session:
        with statements(database.engine) as sent:
            assert (await cache.account(session, user.id)) is not None
            assert (await cache.account(session, user.id)) is not None
    assert len(sent) == 1  # read again once, then known


async def test_an_entry_expires(database: Database) -> None:
    user = await make_user(database)
    cache = SignIns(ttl=0)
    async with database.session() as session:
        with statements(database.engine) as sent:
            await cache.account(session, user.id)
            await cache.account(session, user.id)
    assert len(sent) == 2
    async with database.session() as session:
        assert await cache.account(session, uuid.uuid4()) is None  # no such account: refused


@asynccontextmanager
async def worker(engine: AsyncEngine) -> AsyncIterator[tuple[FastAPI, httpx2.AsyncClient]]:
    """An app of its own over the same PostgreSQL database, with a bus of its own: another worker."""
    bus = bus_for(engine.url)
    await bus.start()
    try:
        async with (
            running_app(settings_for_tests(), Database.of(engine, bus=bus)) as app,
            asgi_client(app) as client,
        ):
            yield app, client
    finally:
        await bus.close()


async def test_a_logout_on_one_worker_ends_the_token_on_another(
    live_database: Database, engine: AsyncEngine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("workers share events through PostgreSQL")
    user = await make_user(live_database)
    async with worker(engine) as (_, first), worker(engine) as (_, second):
        tokens = await sign_in(first, user.email)
        assert (await second.get("/api/v1/users/me", headers=authorized(tokens))).status_code == 200
        assert (
            await first.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
        ).status_code == 204

        async def refused() -> bool:
            response = await second.get("/api/v1/users/me", headers=authorized(tokens))
            return response.status_code == 401

        await until(refused, within=2, what="the other worker to hear of the logout")


def test_an_event_the_cache_cannot_read_makes_it_forget_everything() -> None:
    """A malformed event on the bus (anyone may NOTIFY the channel) neither stops the cache's
    listener nor leaves what it named trusted."""
    cache = SignIns()
    user_id = uuid.uuid4()
    cache._keep(cache._accounts, user_id, None)
    assert cache.known_account(user_id) is None
    cache.hear(Event((USERS_TOPIC,), {"user": "not a uuid"}))
    assert cache.known_account(user_id) is UNKNOWN
