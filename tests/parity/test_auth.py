"""Sign-in operations through GraphQL and through REST (``tests/parity.py``): refreshing a session,
logging out, a rotated refresh token presented again, changing the password."""

from dataclasses import dataclass

import pytest

from api.db.models import User
from api.security import create_access_token
from api.services import api_keys, sessions
from api.services.callers import Caller
from api.services.commands import ApiKeyCreate
from tests.factories import PASSWORD, make_user
from tests.parity import Case, Served, case, check_parity, ok
from tests.parity.transports import Outcome, Transport, steps

NEW_PASSWORD = "a new horse battery"


@dataclass
class World:
    alice: User
    token: str  # alice's access token
    refresh: str  # alice's refresh token, of a session of her own
    key: str  # the secret of an API key of alice's, with every scope she has


async def reuse_rotated(t: Transport, w: World) -> Outcome:
    rotated = ok(await t.refresh(w.refresh))
    return steps(rotated, await t.refresh(w.refresh), await t.refresh(rotated.data["refresh_token"]))


async def log_out(t: Transport, w: World) -> Outcome:
    return steps(await t.logout(w.refresh), await t.refresh(w.refresh))


async def log_out_rotated(t: Transport, w: World) -> Outcome:
    rotated = ok(await t.refresh(w.refresh))
    return steps(rotated, await t.logout(w.refresh), await t.refresh(rotated.data["refresh_token"]))


async def change_password(t: Transport, w: World) -> Outcome:
    return steps(
        ok(await t.change_password(w.token, PASSWORD, NEW_PASSWORD)),
        await t.refresh(w.refresh),  # every other session ended
        await t.login(w.alice.email, PASSWORD),
        await t.login(w.alice.email, NEW_PASSWORD),
    )


TOKENS = ("refresh_token",)

SCENARIOS: dict[str, Case[World]] = {
    "refresh": case(lambda t, w: t.refresh(w.refresh), fresh=TOKENS),
    "refresh with an unknown token": case(lambda t, w: t.refresh("no such token"), "UNAUTHENTICATED"),
    "refresh with an empty token": case(lambda t, w: t.refresh(""), "UNAUTHENTICATED"),
    "refresh with no token": case(lambda t, w: t.refresh(None), "BAD_USER_INPUT"),
    "a rotated refresh token presented again ends its session": case(
        reuse_rotated, "UNAUTHENTICATED", fresh=TOKENS
    ),
    "logout, then its refresh token is refused": case(log_out, "UNAUTHENTICATED"),
    "logout of a rotated token ends the session it led to": case(
        log_out_rotated, "UNAUTHENTICATED", fresh=TOKENS
    ),
    "logout with an unknown token": case(lambda t, w: t.logout("no such token")),
    "logout with no token": case(lambda t, w: t.logout(None), "BAD_USER_INPUT"),
    "login with an unknown email": case(
        lambda t, w: t.login("nobody@example.com", PASSWORD), "UNAUTHENTICATED"
    ),
    "change password": case(change_password),
    "change password with a wrong current one": case(
        lambda t, w: t.change_password(w.token, "not my password", NEW_PASSWORD), "BAD_USER_INPUT"
    ),
    "change password to a too short one": case(
        lambda t, w: t.change_password(w.token, PASSWORD, "short"), "BAD_USER_INPUT"
    ),
    "anonymous changes the password": case(
        lambda t, w: t.change_password(None, PASSWORD, NEW_PASSWORD), "UNAUTHENTICATED"
    ),
    "an API key changes the password": case(
        lambda t, w: t.change_password(w.key, PASSWORD, NEW_PASSWORD), "FORBIDDEN"
    ),
    "a bad token changes the password": case(
        lambda t, w: t.change_password("not-a-token", PASSWORD, NEW_PASSWORD), "UNAUTHENTICATED"
    ),
    # The caller is checked before the input (issue 12, item 4).
    "anonymous changes the password to a too short one": case(
        lambda t, w: t.change_password(None, PASSWORD, "short"), "UNAUTHENTICATED"
    ),
}


@pytest.fixture(scope="module")
async def world(served: Served) -> World:
    database, settings = served.database, served.app.state.settings
    alice = await make_user(database, display_name="Alice")
    async with database.session() as session:
        signed_in = await sessions.start(session, settings=settings, user=alice)
        data = ApiKeyCreate(name="everything", scopes=["users:read", "users:write", "fetch"])
        key = await api_keys.create_api_key(session, actor=Caller(user=alice), data=data)
    return World(alice, create_access_token(settings, alice.id).token, signed_in.refresh_token, key.secret)


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_graphql_and_rest_agree(name: str, served: Served, world: World) -> None:
    await check_parity(SCENARIOS[name], world, served)
