"""What one operation may ask: its cost (``schema.cost``'s prices), depth, aliases and tokens, and
what one caller may spend in a minute. Every refusal is ``QUERY_TOO_COMPLEX`` or ``RATE_LIMITED``
with the figures, before any SQL runs, on the executor and on the compiled path alike."""

from typing import Any

import httpx2
import pytest
from graphql import parse

from api.db.engine import Database
from api.errors import QueryTooComplex
from api.graphql.compiled import GRAPHQL_RESPONSE
from api.graphql.complexity import MAX_FIELDS, Measures
from api.graphql.schema import build_schema
from api.settings import Settings
from bench.reads import OURS
from tests.conftest import asgi_client, running_app, settings_for_tests
from tests.factories import bearer, make_user
from tests.sql import statements

NODE_EITHER = (
    '{ node(id: "x") { id ... on User { fetchJobs { nodes { id } } } ... on FetchJob { results { url } } } }'
)
PAGE = "query($n: Int = 7) { users(first: $n) { nodes { id } } }"


@pytest.mark.parametrize(
    ("document", "variables", "cost"),
    [
        (OURS["users50"], {}, 1 + 50 * (1 + 1)),  # the connection, and 50 edges each with its node
        (OURS["nested20"], {}, 1 + 20 * (1 + 1 + 1 + 3 * (1 + 1 + 100))),  # 100: what a job may hold
        (PAGE, {}, 1 + 7),  # the variable's default in the document
        (PAGE, {"n": 30}, 1 + 30),
        (PAGE, {"n": None}, 1 + 7),  # a null is the default page
        ("{ users { nodes { id } } }", {}, 1 + 20),  # the argument's default in the schema
        (NODE_EITHER, {}, 1 + 100),  # of the two types' fragments, the dearer
        ('mutation { login(email: "a", password: "b") { user { id } } }', {}, 10 + 1),
        ('{ fetch(urls: ["http://a.test/", "http://b.test/"]) { url } }', {}, 2 * 10),
        ("query($u: [String!]!) { fetch(urls: $u) { url } }", {"u": ["http://a.test/"] * 3}, 3 * 10),
        ("{ me { ...Jobs } } fragment Jobs on User { fetchJobs(first: 2) { edges { node { id } } } }", {}, 6),
        ("{ __schema { types { name fields { name } } } __typename }", {}, 0),
    ],
)
def test_an_operation_costs_what_its_fields_and_pages_add_up_to(
    document: str, variables: dict[str, Any], cost: int
) -> None:
    schema = build_schema(settings_for_tests())
    measure = Measures(schema._schema).of(parse(document), document, None)
    assert measure is not None
    assert measure.cost(variables) == cost


def test_the_prices_are_in_the_exported_schema() -> None:
    sdl = str(build_schema(settings_for_tests()))
    assert "directive @cost(weight: String!) on FIELD_DEFINITION" in sdl
    assert (
        'users(first: Int = 20, after: String = null, search: String = null): UserConnection! @listSize(slicingArguments: ["first"], sizedFields: ["edges", "nodes"]'
        in sdl
    )
    assert 'login(email: String!, password: String!): AuthPayload! @cost(weight: "10")' in sdl


@pytest.fixture
def settings() -> Settings:
    return settings_for_tests(
        graphql_max_cost=1_000, graphql_max_depth=5, graphql_max_aliases=2, graphql_max_tokens=200
    )


async def refused(
    client: httpx2.AsyncClient,
    database: Database,
    query: str,
    variables: dict[str, Any],
    headers: dict[str, str],
) -> dict[str, Any]:
    """The one error of a refused request, checked to have sent no SQL but the caller's sign-in
    and to be a 400 under GraphQL over HTTP's media type (its status for a request that cannot run)."""
    with statements(database.engine) as sent:
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Accept": GRAPHQL_RESPONSE, **headers},
        )
    assert [
        s for s in sent if not s.rstrip().endswith(("WHERE users.id = ?", "WHERE users.id = $1::UUID"))
    ] == []
    assert response.status_code == 400, response.text
    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    return dict(error)


@pytest.mark.parametrize(
    ("query", "variables", "extensions"),
    [
        (PAGE, {"n": 1000}, {"cost": 1001, "maxCost": 1_000}),
        ("{ users(first: 1000) { edges { cursor } } }", {}, {"cost": 1 + 1000, "maxCost": 1_000}),
        (
            "{ me { fetchJobs { nodes { owner { fetchJobs { nodes { id } } } } } } }",
            {},
            {"depth": 6, "maxDepth": 5},
        ),
        ("{ a: me { id } b: me { id } c: me { id } }", {}, {"aliases": 3, "maxAliases": 2}),
        ("{ me { " + "id " * 300 + "} }", {}, {"maxTokens": 200}),
    ],
)
async def test_an_operation_past_a_limit_is_refused_with_what_it_passed(
    client: httpx2.AsyncClient,
    database: Database,
    settings: Settings,
    query: str,
    variables: dict[str, Any],
    extensions: dict[str, Any],
) -> None:
    admin = await make_user(database, admin=True)
    headers = bearer(settings, admin)
    for _ in range(2):  # the document is new, then known (and planned, on PostgreSQL)
        error = await refused(client, database, query, variables, headers)
        assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX", **extensions}
        assert str(next(iter(extensions.values()))) in error["message"]


async def test_a_small_page_of_the_same_document_runs(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    admin = await make_user(database, admin=True)
    response = await client.post(
        "/graphql", json={"query": PAGE, "variables": {"n": 2}}, headers=bearer(settings, admin)
    )
    assert response.status_code == 200
    assert len(response.json()["data"]["users"]["nodes"]) == 1


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, "application/json"])
async def test_spending_past_the_budget_is_rate_limited_for_that_caller_alone(
    database: Database, accept: str
) -> None:
    """A budget of 5 a minute and operations of 3: the second is refused, with a 429 and when to come
    back; another caller spends from their own. An operation the compiled path leaves to the
    executor (a refusal, here) is charged once, not by both."""
    settings = settings_for_tests(graphql_cost_budget=5, graphql_max_cost=5)
    first, second = await make_user(database, admin=True), await make_user(database)
    query = "{ users(first: 2) { nodes { id } } }"
    async with running_app(settings, database) as app, asgi_client(app) as client:

        async def ask(headers: dict[str, str]) -> httpx2.Response:
            return await client.post("/graphql", json={"query": query}, headers={"Accept": accept, **headers})

        assert (await ask(bearer(settings, first))).json()["data"]["users"]["nodes"]
        limited = await ask(bearer(settings, first))
        assert limited.status_code == 429
        assert 55 <= int(limited.headers["retry-after"]) <= 60
        [error] = limited.json()["errors"]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert 55 <= error["extensions"]["retryAfter"] <= 60
        not_an_admin = await ask(bearer(settings, second))
        assert [e["extensions"]["code"] for e in not_an_admin.json()["errors"]] == ["FORBIDDEN"]
        again = await ask(bearer(settings, second))
        assert [e["extensions"]["code"] for e in again.json()["errors"]] == ["RATE_LIMITED"]


def test_fragments_that_double_at_each_level_are_refused_without_being_walked_out() -> None:
    """Each fragment spreads the next twice: 2^40 fields in 1.5 KB. Measuring stops at the limit."""
    levels = 40
    fragments = " ".join(f"fragment F{i} on User {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels))
    document = f"{{ me {{ ...F0 }} }} {fragments} fragment F{levels} on User {{ id }}"
    schema = build_schema(settings_for_tests())
    measure = Measures(schema._schema).of(parse(document), document, None)
    assert measure is not None
    with pytest.raises(QueryTooComplex) as refused:
        schema.limits.check(measure, {})
    assert refused.value.extensions() == {"code": "QUERY_TOO_COMPLEX", "maxFields": MAX_FIELDS}


def test_a_page_size_given_as_a_whole_float_counts_as_graphql_core_reads_it() -> None:
    schema = build_schema(settings_for_tests())
    measure = Measures(schema._schema).of(parse(PAGE), PAGE, None)
    assert measure is not None
    assert measure.cost({"n": 100.0}) == measure.cost({"n": 100}) == 101
