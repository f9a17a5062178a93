"""No N+1: users, their jobs, the jobs' owners and results load with one statement per level of the
query, whatever the page size (counted on the real engine)."""

import uuid

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.engine import Database
from api.jobs import JobRunner
from api.settings import Settings
from tests.conftest import fetch_settings
from tests.factories import bearer, graphql, make_user
from tests.sql import statements

QUERY = """query($n: Int!) {
  users(first: $n) {
    nodes {
      email
      fetchJobs(first: 5) {
        nodes { status owner { email } results { url outcome } }
      }
    }
  }
}"""


@pytest.fixture
def live_settings() -> Settings:
    """The executor's loaders are what is counted here: no compiled reads (``tests/graphql/
    test_compiled.py`` counts those), and a cost limit that lets 20 users' jobs with every result
    they may hold (10,241) through."""
    return fetch_settings(compiled_reads=False, graphql_max_cost=20_000)


async def test_statements_do_not_grow_with_the_page(
    live_app: FastAPI,
    live_client: httpx2.AsyncClient,
    live_database: Database,
    live_settings: Settings,
    engine: AsyncEngine,
    targets: str,
) -> None:
    admin = await make_user(live_database, admin=True)
    jobs: JobRunner = live_app.state.jobs
    for _ in range(20):
        user = await make_user(live_database)
        for _ in range(2):
            response = await live_client.post(
                "/api/v1/fetch-jobs",
                json={"urls": [f"{targets}/ok", f"{targets}/status/404"]},
                headers=bearer(live_settings, user),
            )
            await jobs.wait(uuid.UUID(response.json()["id"]))

    await graphql(
        live_client, QUERY, {"n": 2}, headers=bearer(live_settings, admin)
    )  # caller and document known
    counts, answers = [], []
    for n in (2, 20):
        with statements(engine) as seen:
            body = await graphql(live_client, QUERY, {"n": n}, headers=bearer(live_settings, admin))
        assert "errors" not in body, body
        counts.append(len(seen))
        answers.append(body["data"]["users"]["nodes"])

    # The users, their jobs, the jobs' owners, the results: one statement each.
    assert counts == [4, 4]
    assert len(answers[1]) == 20
    some = answers[1][1]
    assert len(some["fetchJobs"]["nodes"]) == 2
    assert {job["owner"]["email"] for job in some["fetchJobs"]["nodes"]} == {some["email"]}
    assert some["fetchJobs"]["nodes"][0]["results"] == [
        {"url": f"{targets}/ok", "outcome": "OK"},
        {"url": f"{targets}/status/404", "outcome": "HTTP_ERROR"},
    ]
