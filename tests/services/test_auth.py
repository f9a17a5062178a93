"""Who the caller is: a bad token is refused (not taken for anonymous), a stale one does not stop
signing in again, a deactivated account loses its token; and checking many live callers again at
once gives each the answer checking it alone would, in queries that do not grow with their number."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy import update

from api import security
from api.db.engine import Database
from api.db.models import User
from api.db.types import utcnow
from api.errors import Unauthenticated
from api.services import api_keys, auth, sessions
from api.services.callers import Caller
from api.services.commands import ApiKeyCreate
from api.settings import Settings
from tests.conftest import settings_for_tests
from tests.factories import PASSWORD, bearer, graphql, make_user
from tests.sql import statements


async def test_many_callers_are_checked_in_three_queries_each_as_if_alone(database: Database) -> None:
    settings = settings_for_tests()
    fine, logged_out, deactivated, keyed, revoked_key = [await make_user(database) for _ in range(5)]
    later = utcnow() + timedelta(hours=1)
    async with database.session() as session:
        started = [
            await sessions.start(session, settings=settings, user=user)
            for user in (fine, logged_out, deactivated)
        ]
        families = [(await sessions.find(session, refresh_token=s.refresh_token)).family_id for s in started]  # type: ignore[union-attr]
        await sessions.revoke_family(session, family_id=families[1])
        await session.execute(update(User).where(User.id == deactivated.id).values(is_active=False))
        keys = [
            await api_keys.create_api_key(
                session, actor=Caller(user), data=ApiKeyCreate(name="k", scopes=["fetch"])
            )
            for user in (keyed, revoked_key)
        ]
        await api_keys.revoke_api_key(session, actor=Caller(revoked_key), key_id=keys[1].key.id)

    def signed(n: int) -> Caller:
        return Caller(started[n].user, session_id=families[n], expires_at=later)

    callers = [
        signed(0),
        signed(1),
        signed(2),
        replace(signed(0), expires_at=utcnow() - timedelta(seconds=1)),
        Caller(keyed, scopes=frozenset({"fetch"}), api_key_id=keys[0].key.id),
        Caller(revoked_key, scopes=frozenset({"fetch"}), api_key_id=keys[1].key.id),
    ]
    async with database.session() as session:
        with statements(database.engine) as sent:
            checked = await auth.recheck_many(session, callers=callers * 50)
    assert len(sent) == 3

    messages = [c.message if isinstance(c, Unauthenticated) else c.user.id for c in checked]
    assert (
        messages
        == [
            fine.id,
            "The sign-in session has ended.",
            auth.INVALID_ACCESS,
            auth.INVALID_ACCESS,
            keyed.id,
            "Invalid API key.",
        ]
        * 50
    )
    for caller, outcome in zip(callers, checked, strict=False):
        async with database.session() as session:
            try:
                alone: Caller | Unauthenticated = await auth.recheck(session, caller=caller)
            except Unauthenticated as refused:
                alone = refused
        assert type(alone) is type(outcome)
        if isinstance(alone, Caller):
            assert isinstance(outcome, Caller)
            assert alone.user.id == outcome.user.id


async def test_a_bad_token_is_refused_not_treated_as_anonymous(client: httpx2.AsyncClient) -> None:
    headers = {"Authorization": "Bearer not-a-jwt"}
    rest = await client.get("/api/v1/users/me", headers=headers)
    assert (rest.status_code, rest.json()["code"]) == (401, "UNAUTHENTICATED")
    gql = await client.post("/graphql", json={"query": "{ me { id } }"}, headers=headers)
    assert gql.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_stale_token_does_not_stop_signing_in_again(
    client: httpx2.AsyncClient, database: Database
) -> None:
    user = await make_user(database)
    stale = {"Authorization": "Bearer expired.or.revoked"}
    gql = await client.post(
        "/graphql",
        json={
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
            "variables": {"e": user.email, "p": PASSWORD},
        },
        headers=stale,
    )
    assert "errors" not in gql.json()
    rest = await client.post(
        "/api/v1/auth/token", data={"username": user.email, "password": PASSWORD}, headers=stale
    )
    assert rest.status_code == 200


async def test_a_deactivated_account_can_no_longer_use_its_token(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    admin = bearer(settings, await make_user(database, admin=True))
    bob = await make_user(database)
    await client.patch(f"/api/v1/users/{bob.id}", json={"is_active": False}, headers=admin)
    assert (await client.get("/api/v1/users/me", headers=bearer(settings, bob))).status_code == 401


class TestNoConnectionWhileHashing:
    """Every hash and verification of a password runs while the request holds no pooled connection
    (and so, on SQLite, no write turn): each is paused at the thread call, with the suite's real
    argon2, while the pool's checked-out connections are counted."""

    @staticmethod
    @asynccontextmanager
    async def paused_hashing(database: Database) -> AsyncIterator[list[int]]:
        """Pause each hash until the test has counted the connections checked out at that moment."""
        held: list[int] = []
        real = security.HASHING.run

        async def counted(work: Callable[..., Any], *args: object) -> Any:
            held.append(database.engine.pool.checkedout())  # type: ignore[attr-defined]
            gate = asyncio.Event()
            asyncio.get_running_loop().call_later(0.01, gate.set)  # others get the loop meanwhile
            await gate.wait()
            return await real(work, *args)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(security.HASHING, "run", counted)
            yield held

    async def test_sign_up_sign_in_and_password_change(
        self, live_database: Database, live_client: httpx2.AsyncClient
    ) -> None:
        async with self.paused_hashing(live_database) as held:
            created = await live_client.post(
                "/api/v1/users", json={"email": "hash@example.com", "password": PASSWORD}
            )
            assert created.status_code == 201, created.text
            signed_in = await live_client.post(
                "/api/v1/auth/token", data={"username": "hash@example.com", "password": PASSWORD}
            )
            assert signed_in.status_code == 200, signed_in.text
            token = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
            changed = await live_client.put(
                "/api/v1/users/me/password",
                json={"current_password": PASSWORD, "new_password": "another long password"},
                headers=token,
            )
            assert changed.status_code == 204, changed.text
            body = await graphql(
                live_client,
                'mutation { login(email: "hash@example.com", password: "another long password") '
                "{ accessToken } }",
                headers=token,  # the context reads the caller first: that transaction must end too
            )
            assert "errors" not in body, body
            unknown = await live_client.post(
                "/api/v1/auth/token", data={"username": "nobody@example.com", "password": PASSWORD}
            )
            assert unknown.status_code == 400
        # sign-up, sign-in, change (verify + hash), GraphQL sign-in, unknown account (dummy)
        assert held == [0, 0, 0, 0, 0, 0]
