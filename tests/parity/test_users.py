"""Every user operation through GraphQL and through REST: the same data, or the same error code.

Each scenario runs once per transport from the same starting state (``tests/parity.py``), so the two
outcomes can be compared for equality. Sign-in, API keys and fetching have parity files of their own.
"""

import uuid
from dataclasses import dataclass

import pytest

from api.db.models import User
from api.security import create_access_token
from tests.factories import PASSWORD, make_user
from tests.parity import Case, Served, case, check_parity


@dataclass
class World:
    admin: User
    alice: User
    bob: User
    tokens: dict[str, str]


SCENARIOS: dict[str, Case[World]] = {
    "register": case(
        lambda t, w: t.register({"email": "new@example.com", "password": PASSWORD}),
        fresh=("id", "created_at"),
    ),
    "register with a taken email": case(
        lambda t, w: t.register({"email": w.alice.email.upper(), "password": PASSWORD}), "CONFLICT"
    ),
    "register with a bad email": case(
        lambda t, w: t.register({"email": "nope", "password": PASSWORD}), "BAD_USER_INPUT"
    ),
    "login": case(lambda t, w: t.login(w.alice.email, PASSWORD)),
    "login with a wrong password": case(
        lambda t, w: t.login(w.alice.email, "wrong password"), "UNAUTHENTICATED"
    ),
    "me": case(lambda t, w: t.me(w.tokens["alice"])),
    "read oneself": case(lambda t, w: t.get_user(w.tokens["alice"], w.alice.id)),
    "admin reads another": case(lambda t, w: t.get_user(w.tokens["admin"], w.alice.id)),
    "user reads another": case(lambda t, w: t.get_user(w.tokens["alice"], w.bob.id), "NOT_FOUND"),
    "anonymous reads a user": case(lambda t, w: t.get_user(None, w.bob.id), "UNAUTHENTICATED"),
    "admin lists users": case(lambda t, w: t.list_users(w.tokens["admin"], 10)),
    "user lists users": case(lambda t, w: t.list_users(w.tokens["alice"], 10), "FORBIDDEN"),
    "anonymous lists users": case(lambda t, w: t.list_users(None, 10), "UNAUTHENTICATED"),
    "update me": case(lambda t, w: t.update_me(w.tokens["alice"], {"display_name": "Alice L."})),
    "update me to a taken email": case(
        lambda t, w: t.update_me(w.tokens["alice"], {"email": w.bob.email}), "CONFLICT"
    ),
    "update me with a bad email": case(
        lambda t, w: t.update_me(w.tokens["alice"], {"email": "@"}), "BAD_USER_INPUT"
    ),
    "anonymous updates me": case(lambda t, w: t.update_me(None, {"display_name": "x"}), "UNAUTHENTICATED"),
    "admin updates a user": case(
        lambda t, w: t.update_user(w.tokens["admin"], w.bob.id, {"is_admin": True, "display_name": "B"})
    ),
    "user updates a user": case(
        lambda t, w: t.update_user(w.tokens["alice"], w.bob.id, {"display_name": "pwned"}), "FORBIDDEN"
    ),
    "user updates oneself as admin would": case(
        lambda t, w: t.update_user(w.tokens["alice"], w.alice.id, {"is_admin": True}), "FORBIDDEN"
    ),
    "admin demotes the last admin": case(
        lambda t, w: t.update_user(w.tokens["admin"], w.admin.id, {"is_admin": False}), "CONFLICT"
    ),
    "admin reads a malformed id": case(
        lambda t, w: t.get_user(w.tokens["admin"], "garbage"), "BAD_USER_INPUT"
    ),
    "anonymous deletes a malformed id": case(lambda t, w: t.delete_user(None, "garbage"), "UNAUTHENTICATED"),
    "admin searches with a too long term": case(
        lambda t, w: t.list_users(w.tokens["admin"], 10, "x" * 321), "BAD_USER_INPUT"
    ),
    "admin deletes the last admin": case(
        lambda t, w: t.delete_user(w.tokens["admin"], w.admin.id), "CONFLICT"
    ),
    "admin updates an unknown user": case(
        lambda t, w: t.update_user(w.tokens["admin"], uuid.UUID(int=1), {"display_name": "x"}), "NOT_FOUND"
    ),
    "delete oneself": case(lambda t, w: t.delete_user(w.tokens["alice"], w.alice.id)),
    "user deletes another": case(lambda t, w: t.delete_user(w.tokens["alice"], w.bob.id), "FORBIDDEN"),
    "admin deletes a user": case(lambda t, w: t.delete_user(w.tokens["admin"], w.bob.id)),
    "anonymous deletes a user": case(lambda t, w: t.delete_user(None, w.bob.id), "UNAUTHENTICATED"),
    # The caller is checked before the input (issue 12, item 4): anonymous with bad input is UNAUTHENTICATED.
    "anonymous updates me with a bad email": case(
        lambda t, w: t.update_me(None, {"email": "@"}), "UNAUTHENTICATED"
    ),
    "anonymous lists users with a bad page size": case(lambda t, w: t.list_users(None, 0), "UNAUTHENTICATED"),
    "anonymous searches with a too long term": case(
        lambda t, w: t.list_users(None, 10, "x" * 321), "UNAUTHENTICATED"
    ),
    "anonymous reads a malformed id": case(lambda t, w: t.get_user(None, "garbage"), "UNAUTHENTICATED"),
    "anonymous updates a malformed id with bad input": case(
        lambda t, w: t.update_user(None, "garbage", {"display_name": "x" * 1000}), "UNAUTHENTICATED"
    ),
    "a bad token updates me with a bad email": case(
        lambda t, w: t.update_me("not-a-token", {"email": "@"}), "UNAUTHENTICATED"
    ),
}


@pytest.fixture(scope="module")
async def world(served: Served) -> World:
    database, settings = served.database, served.app.state.settings
    admin = await make_user(database, admin=True, display_name="Admin")
    alice = await make_user(database, display_name="Alice")
    bob = await make_user(database, display_name="Bob")
    tokens = {
        name: create_access_token(settings, u.id).token
        for name, u in [("admin", admin), ("alice", alice), ("bob", bob)]
    }
    return World(admin, alice, bob, tokens)


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_graphql_and_rest_agree(name: str, served: Served, world: World) -> None:
    await check_parity(SCENARIOS[name], world, served)
