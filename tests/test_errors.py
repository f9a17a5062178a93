"""Error rendering: domain errors keep their code, everything unexpected is masked on both transports
with a request id that also appears in the log."""

from typing import NoReturn

import httpx2
import pytest

from api.db.engine import Database
from api.graphql import parsing
from api.ids import NodeType, to_global_id
from api.logs import RequestIdFilter
from api.services import users
from api.settings import Settings
from tests.factories import bearer, make_user

SECRET_DETAIL = "connection string postgres://admin:hunter2@db"


@pytest.fixture
def broken_get_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in the service layer, for both transports at once."""

    async def explode(*args: object, **kwargs: object) -> NoReturn:
        raise RuntimeError(SECRET_DETAIL)

    monkeypatch.setattr(users, "get_user", explode)


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The log records, tagged with their request id as the app's own handler tags them."""
    caplog.handler.addFilter(RequestIdFilter())
    return caplog


def logged_errors(log: pytest.LogCaptureFixture) -> list[tuple[str | None, str]]:
    """(request id, the exception's text) of every error record."""
    return [
        (getattr(r, "request_id", None), str(r.exc_info[1]))
        for r in log.records
        if r.levelname == "ERROR" and r.exc_info
    ]


@pytest.mark.usefixtures("broken_get_user")
async def test_rest_masks_an_unexpected_error_and_logs_it_under_the_request_id(
    client: httpx2.AsyncClient, database: Database, settings: Settings, log: pytest.LogCaptureFixture
) -> None:
    user = await make_user(database)
    response = await client.get(
        f"/api/v1/users/{user.id}", headers={**bearer(settings, user), "X-Request-ID": "req-rest-1"}
    )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "INTERNAL_SERVER_ERROR"
    assert problem["request_id"] == response.headers["x-request-id"] == "req-rest-1"
    assert SECRET_DETAIL not in response.text
    assert logged_errors(log) == [("req-rest-1", SECRET_DETAIL)]


@pytest.mark.usefixtures("broken_get_user")
async def test_graphql_masks_an_unexpected_error_and_logs_it_under_the_request_id(
    client: httpx2.AsyncClient, database: Database, settings: Settings, log: pytest.LogCaptureFixture
) -> None:
    user = await make_user(database)
    response = await client.post(
        "/graphql",
        json={
            "query": "query($id: ID!) { user(id: $id) { id } }",
            "variables": {"id": to_global_id(NodeType.USER, user.id)},
        },
        headers={**bearer(settings, user), "X-Request-ID": "req-gql-1"},
    )
    assert response.status_code == 200
    (error,) = response.json()["errors"]
    assert error["message"] == "Internal server error"
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-gql-1"}
    assert SECRET_DETAIL not in response.text
    assert logged_errors(log) == [("req-gql-1", SECRET_DETAIL)]


async def test_domain_errors_are_not_logged_as_failures(
    client: httpx2.AsyncClient, log: pytest.LogCaptureFixture
) -> None:
    await client.post("/graphql", json={"query": "{ users { nodes { id } } }"})
    await client.get("/api/v1/users")
    assert logged_errors(log) == []


async def test_a_failed_mutation_leaves_nothing_behind(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    """Two mutations in one document: the second fails, so the first is rolled back too."""
    admin = await make_user(database, admin=True)
    await make_user(database, email="taken@example.com")
    response = await client.post(
        "/graphql",
        json={
            "query": 'mutation { a: updateMe(input: {displayName: "Changed"}) { id } '
            'b: updateMe(input: {email: "taken@example.com"}) { id } }'
        },
        headers=bearer(settings, admin),
    )
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["CONFLICT"]
    me = await client.get("/api/v1/users/me", headers=bearer(settings, admin))
    assert me.json()["display_name"] is None


async def test_a_failure_outside_any_resolver_is_masked_too(
    client: httpx2.AsyncClient, monkeypatch: pytest.MonkeyPatch, log: pytest.LogCaptureFixture
) -> None:
    """An exception raised by the machinery around the resolvers (here: the document cache)."""

    def explode(*args: object) -> NoReturn:
        raise RuntimeError(SECRET_DETAIL)

    monkeypatch.setattr(parsing, "parsed", explode)
    response = await client.post(
        "/graphql", json={"query": "{ me { id } }"}, headers={"X-Request-ID": "req-ext-1"}
    )
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-ext-1"}
    assert SECRET_DETAIL not in response.text
    assert logged_errors(log) == [("req-ext-1", SECRET_DETAIL)]


async def test_a_variable_of_a_custom_scalar_that_does_not_parse_is_the_clients_error(
    client: httpx2.AsyncClient, log: pytest.LogCaptureFixture
) -> None:
    """graphql-core keeps the scalar's ValueError as the cause; it is still about the request."""
    response = await client.post(
        "/graphql",
        json={
            "query": "query($t: DateTime) { __typename @include(if: true) }",
            "variables": {"t": "not a time"},
        },
    )
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] in {"BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"}
    assert logged_errors(log) == []


@pytest.mark.parametrize("selection", ["me @include(if: $f) { email }", "me { email @include(if: $f) id }"])
async def test_a_null_directive_variable_is_the_clients_error_at_any_depth(
    client: httpx2.AsyncClient,
    database: Database,
    settings: Settings,
    log: pytest.LogCaptureFixture,
    selection: str,
) -> None:
    """``$f: Boolean = true`` given as null passes validation; graphql-core refuses it as the field
    completes, which below the root used to be masked as an internal error."""
    user = await make_user(database)
    response = await client.post(
        "/graphql",
        json={"query": f"query($f: Boolean = true) {{ {selection} }}", "variables": {"f": None}},
        headers=bearer(settings, user),
    )
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "'$f'" in error["message"]
    assert logged_errors(log) == []
