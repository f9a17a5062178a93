"""Who the caller is: a bad token is refused (not taken for anonymous), a stale one does not stop
signing in again, a deactivated account loses its token; and checking many live callers again at
once gives each the answer checking it alone would, in queries that do not grow with their number."""

from dataclasses import replace
from datetime import timedelta

import httpx2
from sqlalchemy import update

from api.db.engine import Database
from api.db.models import User
from api.db.types import utcnow
from api.errors import Unauthenticated
from api.services import api_keys, auth, sessions
from api.services.callers import Caller
from api.services.commands import ApiKeyCreate
from api.settings import Settings
from tests.conftest import settings_for_tests
from tests.factories import PASSWORD, bearer, make_user
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
