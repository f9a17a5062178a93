"""One-shot fetching through GraphQL and through REST (``tests/parity.py``), against the local target
server (``tests/targets.py``), which the suite's fetch settings let the SSRF guard reach."""

from dataclasses import dataclass

import pytest

from api.security import create_access_token
from api.services import api_keys
from api.services.callers import Caller
from api.services.commands import ApiKeyCreate, Scope
from tests.factories import make_user
from tests.parity import Case, Served, case, check_parity


@dataclass
class World:
    token: str  # alice's access token
    keys: dict[str, str]  # secrets of alice's keys: "fetcher" (fetch), "reader" (users:read)
    targets: str  # the target server's base URL


FETCHED = ("elapsed_ms", "fetched_at")  # timings of a fetch, new on each run
INVALID = ["not a url", "ftp://example.com/", "http://" + "a" * 2050 + ".example/", "http://"]


def mixed(w: World) -> list[str]:
    """One of each kind of result but TIMEOUT: OK (twice, duplicates kept), redirected, HTTP_ERROR,
    TOO_LARGE, CONNECTION_ERROR (a closed port), BLOCKED (local addresses outside the allowed networks,
    refused before any connection), INVALID_URL."""
    base = w.targets
    return [
        f"{base}/ok",
        f"{base}/redirect?to=/ok",
        f"{base}/status/404",
        f"{base}/huge",
        "http://127.0.0.1:1/",
        "http://0.0.0.0:1/",
        "http://[::1]/",
        *INVALID,
        f"{base}/ok",
    ]


def too_many(w: World) -> list[str]:
    return [f"{w.targets}/ok"] * 101


SCENARIOS: dict[str, Case[World]] = {
    "fetch": case(lambda t, w: t.fetch(w.token, mixed(w)), fresh=FETCHED),
    "fetch invalid URLs: results, not a failure": case(lambda t, w: t.fetch(w.token, INVALID), fresh=FETCHED),
    "fetch with a key with the fetch scope": case(
        lambda t, w: t.fetch(w.keys["fetcher"], [f"{w.targets}/ok"]), fresh=FETCHED
    ),
    "fetch with a key without the fetch scope": case(
        lambda t, w: t.fetch(w.keys["reader"], [f"{w.targets}/ok"]), "FORBIDDEN"
    ),
    "fetch no URL": case(lambda t, w: t.fetch(w.token, []), "BAD_USER_INPUT"),
    "fetch too many URLs": case(lambda t, w: t.fetch(w.token, too_many(w)), "BAD_USER_INPUT"),
    "anonymous fetches": case(lambda t, w: t.fetch(None, [f"{w.targets}/ok"]), "UNAUTHENTICATED"),
    "a bad token fetches": case(lambda t, w: t.fetch("not-a-token", [f"{w.targets}/ok"]), "UNAUTHENTICATED"),
    # The caller is checked before the input (issue 12, item 4).
    "anonymous fetches no URL": case(lambda t, w: t.fetch(None, []), "UNAUTHENTICATED"),
    "anonymous fetches too many URLs": case(lambda t, w: t.fetch(None, too_many(w)), "UNAUTHENTICATED"),
    "a key without the fetch scope fetches too many URLs": case(
        lambda t, w: t.fetch(w.keys["reader"], too_many(w)), "FORBIDDEN"
    ),
    "a key without the fetch scope fetches no URL": case(
        lambda t, w: t.fetch(w.keys["reader"], []), "FORBIDDEN"
    ),
}


@pytest.fixture(scope="module")
async def world(served: Served, targets: str) -> World:
    database, settings = served.database, served.app.state.settings
    alice = await make_user(database, display_name="Alice")
    scopes: dict[str, Scope] = {"fetcher": "fetch", "reader": "users:read"}
    keys = {}
    async with database.session() as session:
        for name, scope in scopes.items():
            data = ApiKeyCreate(name=name, scopes=[scope])
            keys[name] = (await api_keys.create_api_key(session, actor=Caller(user=alice), data=data)).secret
    return World(create_access_token(settings, alice.id).token, keys, targets)


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_graphql_and_rest_agree(name: str, served: Served, world: World) -> None:
    await check_parity(SCENARIOS[name], world, served)
