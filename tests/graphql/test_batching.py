"""Batches: a JSON array of operations in one POST, run in order, each on its own (session, loaders,
errors, cost), and refused whole past the cap."""

from typing import Any

import httpx2

from api.db.engine import Database
from api.graphql.compiled import GRAPHQL_RESPONSE
from tests.conftest import asgi_client, running_app, settings_for_tests
from tests.factories import bearer, make_user

ME = "{ me { displayName } }"
RENAME = 'mutation { updateMe(input: {displayName: "Renamed"}) { displayName } }'
BAD_EMAIL = 'mutation { updateMe(input: {email: "not an email", displayName: "Lost"}) { displayName } }'


async def batch(
    client: httpx2.AsyncClient, operations: list[dict[str, Any]], headers: dict[str, str]
) -> httpx2.Response:
    return await client.post("/graphql", json=operations, headers={"Accept": GRAPHQL_RESPONSE, **headers})


async def test_a_batch_runs_in_order_each_operation_on_its_own(database: Database) -> None:
    settings = settings_for_tests()
    user = await make_user(database, display_name="Before")
    headers = bearer(settings, user)
    operations = [
        {"query": ME},
        {"query": BAD_EMAIL},  # refused: its change is rolled back, the others are not
        {"query": RENAME},
        {"query": ME},  # sees the rename: its own session, after the other's commit
        {"query": "subscription { userEvents { kind } }"},  # not over HTTP: its own error
        {"query": "{ me { nope } }"},  # does not validate: its own error
    ]
    async with running_app(settings, database) as app, asgi_client(app) as client:
        response = await batch(client, operations, headers)
        assert response.status_code == 200  # whatever each operation's fate
        first, bad, renamed, after, subscription, invalid = response.json()
        assert first == {"data": {"me": {"displayName": "Before"}}}
        assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert renamed == {"data": {"updateMe": {"displayName": "Renamed"}}}
        assert after == {"data": {"me": {"displayName": "Renamed"}}}
        assert "served over WebSocket" in subscription["errors"][0]["message"]
        assert invalid["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "data" not in invalid


async def test_a_batch_past_the_cap_is_refused_whole(database: Database) -> None:
    settings = settings_for_tests(graphql_max_batch=3)
    user = await make_user(database, display_name="Kept")
    headers = bearer(settings, user)
    async with running_app(settings, database) as app, asgi_client(app) as client:
        response = await batch(client, [{"query": RENAME}] * 4, headers)
        assert response.status_code == 400
        [error] = response.json()["errors"]
        assert error["message"] == "A batch holds at most 3 operations; this one has 4."
        answer = await client.post("/graphql", json={"query": ME}, headers=headers)
        assert answer.json() == {"data": {"me": {"displayName": "Kept"}}}  # nothing of it ran
        assert (await batch(client, [{"query": ME}] * 3, headers)).status_code == 200


async def test_each_operation_of_a_batch_is_charged_on_its_own(database: Database) -> None:
    """A budget of 6 and operations of 3 (a user, its page, one job): the third is refused alone."""
    settings = settings_for_tests(graphql_cost_budget=6, graphql_max_cost=6)
    user = await make_user(database)
    query = "{ me { fetchJobs(first: 1) { nodes { id } } } }"
    async with running_app(settings, database) as app, asgi_client(app) as client:
        response = await batch(client, [{"query": query}] * 3, bearer(settings, user))
        assert response.status_code == 200
        first, second, third = response.json()
        assert first == second == {"data": {"me": {"fetchJobs": {"nodes": []}}}}
        assert [e["extensions"]["code"] for e in third["errors"]] == ["RATE_LIMITED"]


async def test_a_batch_with_a_malformed_operation_is_refused_whole(client: httpx2.AsyncClient) -> None:
    for batch_body, problem in [
        ([{"query": ME}, 1], "Operation 2 of the batch: it must be an object."),
        ([{"query": ME, "variables": [1]}], "Operation 1 of the batch: its variables must be of type dict."),
        ([{"query": 5}], "Operation 1 of the batch: its query must be of type str."),
    ]:
        response = await client.post("/graphql", json=batch_body)
        assert response.status_code == 400
        assert response.json()["errors"][0]["message"] == problem
