"""Every user operation through GraphQL and through REST: the same data, or the same error code.

Each scenario runs once per transport from the same starting state (the first run is rolled back to a
savepoint before the second), so the two outcomes can be compared for equality.
"""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.engine import Database
from api.db.models import User
from api.security import create_access_token
from api.settings import Settings
from tests.factories import PASSWORD, make_user
from tests.transports import GraphQLTransport, Outcome, RestTransport, Transport


@dataclass
class World:
    admin: User
    alice: User
    bob: User
    tokens: dict[str, str]


Scenario = Callable[[Transport, World], Awaitable[Outcome]]


def _drop_new_ids(outcome: Outcome) -> Outcome:
    """A registration makes a new id and time on each run; compare the rest of it."""
    return Outcome(data={k: v for k, v in outcome.data.items() if k not in ("id", "created_at")})


SCENARIOS: dict[str, tuple[Scenario, Outcome | None]] = {
    # name: (scenario, the expected error outcome, or None when it must succeed)
    "register": (lambda t, w: t.register({"email": "new@example.com", "password": PASSWORD}), None),
    "register with a taken email": (
        lambda t, w: t.register({"email": w.alice.email.upper(), "password": PASSWORD}),
        Outcome(code="CONFLICT"),
    ),
    "register with a bad email": (
        lambda t, w: t.register({"email": "nope", "password": PASSWORD}),
        Outcome(code="BAD_USER_INPUT"),
    ),
    "login": (lambda t, w: t.login(w.alice.email, PASSWORD), None),
    "login with a wrong password": (
        lambda t, w: t.login(w.alice.email, "wrong password"),
        Outcome(code="UNAUTHENTICATED"),
    ),
    "me": (lambda t, w: t.me(w.tokens["alice"]), None),
    "read oneself": (lambda t, w: t.get_user(w.tokens["alice"], w.alice.id), None),
    "admin reads another": (lambda t, w: t.get_user(w.tokens["admin"], w.alice.id), None),
    "user reads another": (lambda t, w: t.get_user(w.tokens["alice"], w.bob.id), Outcome(code="NOT_FOUND")),
    "anonymous reads a user": (lambda t, w: t.get_user(None, w.bob.id), Outcome(code="UNAUTHENTICATED")),
    "admin lists users": (lambda t, w: t.list_users(w.tokens["admin"], 10), None),
    "user lists users": (lambda t, w: t.list_users(w.tokens["alice"], 10), Outcome(code="FORBIDDEN")),
    "anonymous lists users": (lambda t, w: t.list_users(None, 10), Outcome(code="UNAUTHENTICATED")),
    "update me": (lambda t, w: t.update_me(w.tokens["alice"], {"display_name": "Alice L."}), None),
    "update me to a taken email": (
        lambda t, w: t.update_me(w.tokens["alice"], {"email": w.bob.email}),
        Outcome(code="CONFLICT"),
    ),
    "update me with a bad email": (
        lambda t, w: t.update_me(w.tokens["alice"], {"email": "@"}),
        Outcome(code="BAD_USER_INPUT"),
    ),
    "anonymous updates me": (
        lambda t, w: t.update_me(None, {"display_name": "x"}),
        Outcome(code="UNAUTHENTICATED"),
    ),
    "admin updates a user": (
        lambda t, w: t.update_user(w.tokens["admin"], w.bob.id, {"is_admin": True, "display_name": "B"}),
        None,
    ),
    "user updates a user": (
        lambda t, w: t.update_user(w.tokens["alice"], w.bob.id, {"display_name": "pwned"}),
        Outcome(code="FORBIDDEN"),
    ),
    "user updates oneself as admin would": (
        lambda t, w: t.update_user(w.tokens["alice"], w.alice.id, {"is_admin": True}),
        Outcome(code="FORBIDDEN"),
    ),
    "admin demotes the last admin": (
        lambda t, w: t.update_user(w.tokens["admin"], w.admin.id, {"is_admin": False}),
        Outcome(code="CONFLICT"),
    ),
    "admin reads a malformed id": (
        lambda t, w: t.get_user(w.tokens["admin"], "garbage"),
        Outcome(code="BAD_USER_INPUT"),
    ),
    "anonymous deletes a malformed id": (
        lambda t, w: t.delete_user(None, "garbage"),
        Outcome(code="UNAUTHENTICATED"),
    ),
    "admin searches with a too long term": (
        lambda t, w: t.list_users(w.tokens["admin"], 10, "x" * 321),
        Outcome(code="BAD_USER_INPUT"),
    ),
    "admin deletes the last admin": (
        lambda t, w: t.delete_user(w.tokens["admin"], w.admin.id),
        Outcome(code="CONFLICT"),
    ),
    "admin updates an unknown user": (
        lambda t, w: t.update_user(w.tokens["admin"], uuid.UUID(int=1), {"display_name": "x"}),
        Outcome(code="NOT_FOUND"),
    ),
    "delete oneself": (lambda t, w: t.delete_user(w.tokens["alice"], w.alice.id), None),
    "user deletes another": (
        lambda t, w: t.delete_user(w.tokens["alice"], w.bob.id),
        Outcome(code="FORBIDDEN"),
    ),
    "admin deletes a user": (lambda t, w: t.delete_user(w.tokens["admin"], w.bob.id), None),
    "anonymous deletes a user": (lambda t, w: t.delete_user(None, w.bob.id), Outcome(code="UNAUTHENTICATED")),
}


@pytest.fixture
async def world(database: Database, settings: Settings) -> World:
    admin = await make_user(database, admin=True, display_name="Admin")
    alice = await make_user(database, display_name="Alice")
    bob = await make_user(database, display_name="Bob")
    tokens = {
        name: create_access_token(settings, u.id).token
        for name, u in [("admin", admin), ("alice", alice), ("bob", bob)]
    }
    return World(admin, alice, bob, tokens)


@asynccontextmanager
async def rolled_back(database: Database) -> AsyncIterator[None]:
    connection = database.sessions.kw["bind"]
    assert isinstance(connection, AsyncConnection)
    savepoint = await connection.begin_nested()
    try:
        yield
    finally:
        await savepoint.rollback()


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_graphql_and_rest_agree(
    name: str, client: httpx2.AsyncClient, database: Database, world: World
) -> None:
    scenario, expected_error = SCENARIOS[name]
    outcomes = []
    for transport in (GraphQLTransport(client), RestTransport(client)):
        async with rolled_back(database):
            outcomes.append(await scenario(transport, world))
    graphql, rest = (_drop_new_ids(o) for o in outcomes) if name == "register" else outcomes
    assert graphql == rest
    if expected_error is None:
        assert graphql.code is None
        assert graphql.data is not None
    else:
        assert graphql == expected_error
