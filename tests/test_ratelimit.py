"""Sign-in and sign-up are rate limited per account and per client address, counted per operation:
aliased logins in one GraphQL document each count, and a failed attempt counts even though its
request rolls back."""

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI

from api.db.engine import Database
from api.ratelimit import Limit, MemoryLimiter, PostgresLimiter
from api.settings import Settings
from tests.conftest import settings_for_tests
from tests.factories import PASSWORD, graphql, make_user

_addresses = itertools.count(1)


@pytest.fixture
def settings() -> Settings:
    return settings_for_tests(
        rate_limit_login_per_account=3, rate_limit_login_per_address=5, rate_limit_register_per_address=2
    )


def client_at(app: FastAPI, address: str) -> httpx2.AsyncClient:
    transport = httpx2.ASGITransport(app=app, client=(address, 40000))
    return httpx2.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    """A client with an address of its own (the PostgreSQL limiter's windows outlive a test)."""
    async with client_at(app, f"10.20.{next(_addresses)}.1") as client:
        yield client


async def token(client: httpx2.AsyncClient, email: str, password: str) -> httpx2.Response:
    return await client.post("/api/v1/auth/token", data={"username": email, "password": password})


async def test_the_token_endpoint_refuses_past_the_account_limit(
    client: httpx2.AsyncClient, database: Database
) -> None:
    user = await make_user(database)
    for _ in range(3):
        assert (await token(client, user.email, "wrong password")).json()["error"] == "invalid_grant"
    refused = await token(client, user.email, PASSWORD)  # even the right password, now
    assert refused.status_code == 429
    assert refused.json()["code"] == "RATE_LIMITED"
    assert 0 < int(refused.headers["retry-after"]) <= 900


async def test_aliased_logins_in_one_document_each_count(
    client: httpx2.AsyncClient, database: Database
) -> None:
    """Mutations run one after another, and the first refusal ends the document: with the right
    password, the fourth aliased login is the one refused."""
    user = await make_user(database)
    aliases = " ".join(
        f'a{n}: login(email: "{user.email}", password: "{PASSWORD}") {{ accessToken }}' for n in range(6)
    )
    body = await graphql(client, f"mutation {{ {aliases} }}")
    (error,) = body["errors"]
    assert (error["path"], error["extensions"]["code"]) == (["a3"], "RATE_LIMITED")
    assert error["extensions"]["retryAfter"] > 0
    # The document failed and rolled back, but the attempts stay counted.
    again = await graphql(
        client,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
        {"e": user.email, "p": PASSWORD},
    )
    assert again["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_the_address_limit_spans_accounts(
    app: FastAPI, client: httpx2.AsyncClient, database: Database
) -> None:
    accounts = [await make_user(database) for _ in range(6)]
    answers = [(await token(client, u.email, PASSWORD)).status_code for u in accounts]
    assert answers == [200] * 5 + [429]
    async with client_at(app, "10.99.0.1") as elsewhere:
        assert (await token(elsewhere, accounts[-1].email, PASSWORD)).status_code == 200


async def test_sign_ups_per_address_count_across_transports(client: httpx2.AsyncClient) -> None:
    def form(n: int) -> dict[str, Any]:
        return {"email": f"signup{n}-{id(client)}@example.com", "password": PASSWORD}

    assert (await client.post("/api/v1/users", json=form(1))).status_code == 201
    body = await graphql(
        client, "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }", {"i": form(2)}
    )
    assert "errors" not in body
    refused = await client.post("/api/v1/users", json=form(3))
    assert (refused.status_code, refused.json()["code"]) == (429, "RATE_LIMITED")
    body = await graphql(
        client, "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }", {"i": form(4)}
    )
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_windows_expire() -> None:
    limiter = MemoryLimiter()
    limit = Limit(hits=1, seconds=1)
    assert await limiter.hit("k", limit) is None
    assert await limiter.hit("k", limit) is not None
    await asyncio.sleep(1.05)  # the point of the test: past the one-second window
    assert await limiter.hit("k", limit) is None


async def test_postgresql_windows_are_shared_between_workers(database: Database) -> None:
    if database.engine.dialect.name != "postgresql":
        pytest.skip("the shared limiter is PostgreSQL's")
    first, second = PostgresLimiter(database), PostgresLimiter(database)  # as two workers would have
    limit = Limit(hits=2, seconds=1)
    key = f"shared:{id(first)}"
    assert await first.hit(key, limit) is None
    assert await second.hit(key, limit) is None
    wait = await first.hit(key, limit)
    assert wait is not None
    assert 0 <= wait <= 1
    await asyncio.sleep(1.05)  # the point of the test: past the one-second window
    assert await second.hit(key, limit) is None
    await first.close()
    await second.close()


async def test_spending_past_a_budget_is_refused_and_costs_nothing() -> None:
    limiter = MemoryLimiter()
    budget = Limit(hits=100, seconds=60)
    assert limiter.spend("k", budget, 60) is None
    wait = limiter.spend("k", budget, 41)
    assert wait is not None
    assert 59 <= wait <= 60
    assert limiter.spend("k", budget, 40) is None  # the refused 41 was not spent
    assert limiter.spend("k", budget, 1) is not None
    assert limiter.spend("other", budget, 100) is None


async def test_postgresql_spending_is_settled_between_workers(database: Database) -> None:
    """Each worker checks at once against what it has heard; settling its spending, or a refusal,
    it hears what the others spent and what they gave back (a negative amount)."""
    if database.engine.dialect.name != "postgresql":
        pytest.skip("the shared limiter is PostgreSQL's")
    first = PostgresLimiter(database, settle_every=0.05)
    second = PostgresLimiter(database, settle_every=3600)  # settled by hand below
    budget = Limit(hits=100, seconds=60)
    key = f"spent:{id(first)}"
    try:
        assert first.spend(key, budget, 70) is None
        assert first.spend(key, budget, 31) is not None  # this worker knows at once
        assert second.spend(key, budget, 1) is None  # the other has heard nothing yet
        await asyncio.sleep(0.3)  # the first settles by itself
        await second.settle()
        assert second.spend(key, budget, 30) is not None  # 71 spent in all: it has heard
        assert second.spend(key, budget, 29) is None
        await second.settle()
        first.spend(key, budget, -50)  # given back
        await asyncio.sleep(0.3)
        assert second.spend(key, budget, 50) is not None  # not heard yet; the refusal asks again
        await second.settle()
        assert second.spend(key, budget, 50) is None
        assert second.spend(key, budget, 1) is not None
    finally:
        await first.close()
        await second.close()
