"""API key operations through GraphQL and through REST (``tests/parity.py``): create, list, revoke,
and what a key's scopes let it do."""

import uuid
from dataclasses import dataclass

import pytest

from api.db.models import ApiKey, User
from api.security import create_access_token
from api.services import api_keys
from api.services.callers import Caller
from api.services.commands import ApiKeyCreate, Scope
from tests.factories import make_user
from tests.parity import Case, Served, case, check_parity, ok
from tests.parity.transports import Outcome, Transport, steps


@dataclass
class World:
    admin: User
    alice: User
    tokens: dict[str, str]  # access tokens of admin and alice
    keys: dict[str, ApiKey]  # alice's "reader" and "fetcher", bob's "bob"
    secrets: dict[str, str]  # the keys' secrets, by the same names


NEW_KEY = ("id", "created_at", "prefix", "secret")


async def create_and_use(t: Transport, w: World) -> Outcome:
    created = ok(await t.create_api_key(w.tokens["alice"], "ci", ["users:read"]))
    return steps(created, await t.me(created.data["secret"]), await t.update_me(created.data["secret"], {}))


async def revoke_and_use(t: Transport, w: World) -> Outcome:
    return steps(
        ok(await t.revoke_api_key(w.tokens["alice"], w.keys["reader"].id)),
        await t.me(w.secrets["reader"]),
        await t.list_api_keys(w.tokens["alice"]),
    )


SCENARIOS: dict[str, Case[World]] = {
    "create a key": case(
        lambda t, w: t.create_api_key(w.tokens["alice"], "ci", ["fetch", "users:read"]), fresh=NEW_KEY
    ),
    "create a key, then use it within its scopes only": case(create_and_use, "FORBIDDEN", fresh=NEW_KEY),
    "admin creates an admin key": case(
        lambda t, w: t.create_api_key(w.tokens["admin"], "ops", ["admin"]), fresh=NEW_KEY
    ),
    "user creates an admin key": case(
        lambda t, w: t.create_api_key(w.tokens["alice"], "ops", ["admin"]), "BAD_USER_INPUT"
    ),
    "create a key with an unknown scope": case(
        lambda t, w: t.create_api_key(w.tokens["alice"], "ci", ["everything"]), "BAD_USER_INPUT"
    ),
    "create a key with no scope": case(
        lambda t, w: t.create_api_key(w.tokens["alice"], "ci", []), "BAD_USER_INPUT"
    ),
    "create a key with a blank name": case(
        lambda t, w: t.create_api_key(w.tokens["alice"], "  ", ["fetch"]), "BAD_USER_INPUT"
    ),
    "anonymous creates a key": case(lambda t, w: t.create_api_key(None, "ci", ["fetch"]), "UNAUTHENTICATED"),
    "an API key creates a key": case(
        lambda t, w: t.create_api_key(w.secrets["reader"], "ci", ["fetch"]), "FORBIDDEN"
    ),
    "list keys": case(lambda t, w: t.list_api_keys(w.tokens["alice"])),
    "admin lists keys (their own only)": case(lambda t, w: t.list_api_keys(w.tokens["admin"])),
    "anonymous lists keys": case(lambda t, w: t.list_api_keys(None), "UNAUTHENTICATED"),
    "an API key lists keys": case(lambda t, w: t.list_api_keys(w.secrets["reader"]), "FORBIDDEN"),
    "revoke a key, then it opens nothing": case(revoke_and_use),
    "revoke another user's key": case(
        lambda t, w: t.revoke_api_key(w.tokens["alice"], w.keys["bob"].id), "NOT_FOUND"
    ),
    "admin revokes another user's key": case(
        lambda t, w: t.revoke_api_key(w.tokens["admin"], w.keys["bob"].id), "NOT_FOUND"
    ),
    "revoke an unknown key": case(
        lambda t, w: t.revoke_api_key(w.tokens["alice"], uuid.UUID(int=1)), "NOT_FOUND"
    ),
    "revoke a malformed id": case(
        lambda t, w: t.revoke_api_key(w.tokens["alice"], "garbage"), "BAD_USER_INPUT"
    ),
    "anonymous revokes a key": case(
        lambda t, w: t.revoke_api_key(None, w.keys["reader"].id), "UNAUTHENTICATED"
    ),
    "an API key revokes a key": case(
        lambda t, w: t.revoke_api_key(w.secrets["reader"], w.keys["reader"].id), "FORBIDDEN"
    ),
    "a key reads me with users:read": case(lambda t, w: t.me(w.secrets["reader"])),
    "a key reads me without users:read": case(lambda t, w: t.me(w.secrets["fetcher"]), "FORBIDDEN"),
    "a key updates me without users:write": case(
        lambda t, w: t.update_me(w.secrets["reader"], {"display_name": "x"}), "FORBIDDEN"
    ),
    "a key reads a user without users:read": case(
        lambda t, w: t.get_user(w.secrets["fetcher"], w.alice.id), "FORBIDDEN"
    ),
    "an unknown key reads me": case(lambda t, w: t.me("sbk_no-such-key"), "UNAUTHENTICATED"),
    # The caller is checked before the input (issue 12, item 4).
    "anonymous creates a key with an unknown scope": case(
        lambda t, w: t.create_api_key(None, "ci", ["everything"]), "UNAUTHENTICATED"
    ),
    "anonymous creates a key with a blank name and no scope": case(
        lambda t, w: t.create_api_key(None, "", []), "UNAUTHENTICATED"
    ),
    "anonymous revokes a malformed id": case(
        lambda t, w: t.revoke_api_key(None, "garbage"), "UNAUTHENTICATED"
    ),
}


@pytest.fixture(scope="module")
async def world(served: Served) -> World:
    database, settings = served.database, served.app.state.settings
    admin = await make_user(database, admin=True, display_name="Admin")
    alice = await make_user(database, display_name="Alice")
    bob = await make_user(database, display_name="Bob")
    made: dict[str, tuple[User, list[Scope]]] = {
        "reader": (alice, ["users:read"]),
        "fetcher": (alice, ["fetch"]),
        "bob": (bob, ["users:read", "fetch"]),
    }
    keys, secrets = {}, {}
    async with database.session() as session:
        for name, (owner, scopes) in made.items():
            new = await api_keys.create_api_key(
                session, actor=Caller(user=owner), data=ApiKeyCreate(name=name, scopes=scopes)
            )
            keys[name], secrets[name] = new.key, new.secret
    tokens = {
        name: create_access_token(settings, u.id).token for name, u in [("admin", admin), ("alice", alice)]
    }
    return World(admin, alice, tokens, keys, secrets)


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_graphql_and_rest_agree(name: str, served: Served, world: World) -> None:
    await check_parity(SCENARIOS[name], world, served)
