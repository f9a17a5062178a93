"""One-shot fetching over both transports: the same results, the same refusals, against a real
local server (the guard lets 127.0.0.0/8 through only where a test's settings say so)."""

import json
from typing import Any

import httpx2
import pytest

from api.app import create_app
from api.db.engine import Database
from api.services import api_keys
from api.services.callers import Caller
from api.services.commands import ApiKeyCreate
from api.settings import Settings
from tests.conftest import fetch_settings, settings_for_tests
from tests.factories import bearer, graphql, make_user

FETCH = """query($urls: [String!]!) {
  fetch(urls: $urls) { position url outcome statusCode finalUrl contentType bytes error }
}"""


@pytest.fixture
def settings() -> Settings:
    return fetch_settings(rate_limit_fetch_per_user=3)


async def fetch_both(client: httpx2.AsyncClient, urls: list[str], headers: dict[str, str]) -> tuple[Any, Any]:
    """(GraphQL's answer, REST's answer), each as a list of results in GraphQL's field names or as
    the error code."""
    body = await graphql(client, FETCH, {"urls": urls}, headers=headers)
    over_graphql = body["errors"][0]["extensions"]["code"] if body.get("errors") else body["data"]["fetch"]
    response = await client.get("/api/v1/fetch", params={"urls": urls}, headers=headers)
    if response.status_code != 200:
        return over_graphql, response.json()["code"]
    over_rest = [
        {
            "position": item["position"],
            "url": item["url"],
            "outcome": item["outcome"],
            "statusCode": item["status_code"],
            "finalUrl": item["final_url"],
            "contentType": item["content_type"],
            "bytes": item["bytes"],
            "error": item["error"],
        }
        for item in response.json()["items"]
    ]
    return over_graphql, over_rest


async def test_the_same_results_over_both_transports(
    client: httpx2.AsyncClient, database: Database, settings: Settings, targets: str
) -> None:
    user = await make_user(database)
    urls = [
        f"{targets}/ok",
        f"{targets}/status/404",
        f"{targets}/redirect?to=/ok",
        "ftp://example.com/file",
        "http://10.1.2.3/",
        f"{targets}/ok",
    ]
    over_graphql, over_rest = await fetch_both(client, urls, bearer(settings, user))
    assert over_graphql == over_rest
    assert [r["outcome"] for r in over_graphql] == [
        "OK",
        "HTTP_ERROR",
        "OK",
        "INVALID_URL",
        "BLOCKED",
        "OK",
    ]
    assert [r["position"] for r in over_graphql] == list(range(6))
    assert over_graphql[1]["statusCode"] == 404
    assert over_graphql[2]["finalUrl"] == f"{targets}/ok"


async def test_without_the_allowlist_the_local_server_is_blocked(database: Database, targets: str) -> None:
    """The allowlist is off by default: the same local server is then a private address, refused."""
    settings = settings_for_tests()
    app = create_app(settings, database=database)
    user = await make_user(database)
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
            body = await graphql(client, FETCH, {"urls": [f"{targets}/ok"]}, headers=bearer(settings, user))
    assert body["data"]["fetch"][0]["outcome"] == "BLOCKED"
    assert "127.0.0.1" in body["data"]["fetch"][0]["error"]


@pytest.mark.parametrize("count", [0, 101])
async def test_the_number_of_urls_is_checked(
    client: httpx2.AsyncClient, database: Database, settings: Settings, count: int
) -> None:
    user = await make_user(database)
    body = await graphql(
        client, FETCH, {"urls": ["http://example.com/"] * count}, headers=bearer(settings, user)
    )
    assert body["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "fields": {"urls": ["Give between 1 and 100 URLs."]},
    }
    params = {"urls": ["http://example.com/"] * count}
    response = await client.get("/api/v1/fetch", params=params, headers=bearer(settings, user))
    assert response.status_code == 422
    assert response.json()["code"] == "BAD_USER_INPUT"


async def test_fetching_needs_a_caller_with_the_fetch_scope(
    client: httpx2.AsyncClient, database: Database, settings: Settings, targets: str
) -> None:
    user = await make_user(database)
    async with database.session() as session:
        reader = await api_keys.create_api_key(
            session, actor=Caller(user), data=ApiKeyCreate(name="reader", scopes=["users:read"])
        )
        fetcher = await api_keys.create_api_key(
            session, actor=Caller(user), data=ApiKeyCreate(name="fetcher", scopes=["fetch"])
        )
    urls = [f"{targets}/ok"]
    assert await fetch_both(client, urls, {}) == ("UNAUTHENTICATED", "UNAUTHENTICATED")
    assert await fetch_both(client, urls, {"X-API-Key": reader.secret}) == ("FORBIDDEN", "FORBIDDEN")
    over_graphql, over_rest = await fetch_both(client, urls, {"X-API-Key": fetcher.secret})
    assert over_graphql == over_rest
    assert over_graphql[0]["outcome"] == "OK"


async def test_fetching_is_rate_limited_per_account(
    client: httpx2.AsyncClient, database: Database, settings: Settings, targets: str
) -> None:
    user = await make_user(database)
    headers = bearer(settings, user)
    over_graphql, over_rest = await fetch_both(client, [f"{targets}/ok"], headers)  # two of three
    assert over_graphql == over_rest
    body = await graphql(client, FETCH, {"urls": [f"{targets}/ok"]}, headers=headers)
    assert "errors" not in body  # the third
    response = await client.get("/api/v1/fetch", params={"urls": [f"{targets}/ok"]}, headers=headers)
    assert response.status_code == 429
    assert response.json()["code"] == "RATE_LIMITED"
    assert int(response.headers["Retry-After"]) > 0
    other = await make_user(database)  # a budget per account
    body = await graphql(client, FETCH, {"urls": [f"{targets}/ok"]}, headers=bearer(settings, other))
    assert "errors" not in body


def test_the_allowlist_is_read_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_FETCH_ALLOW_NETWORKS", json.dumps(["127.0.0.0/8", "::1/128"]))
    settings = Settings(_env_file=None, secret_key="x" * 32)
    assert [str(network) for network in settings.fetch_allow_networks] == ["127.0.0.0/8", "::1/128"]
    monkeypatch.delenv("SWITCHBOARD_FETCH_ALLOW_NETWORKS")
    assert Settings(_env_file=None, secret_key="x" * 32).fetch_allow_networks == []
