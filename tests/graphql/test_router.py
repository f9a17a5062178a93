"""``/graphql`` as the GraphQL over HTTP specification has it: media types, status codes, and
request errors as GraphQL-shaped bodies with a code."""

from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from starlette.types import Message

GRAPHQL_RESPONSE = "application/graphql-response+json"


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("{ me { id }", "GRAPHQL_PARSE_FAILED"),
        ("{ me { noSuchField } }", "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_documents_that_cannot_run(client: httpx2.AsyncClient, query: str, code: str) -> None:
    modern = await client.post("/graphql", json={"query": query}, headers={"Accept": GRAPHQL_RESPONSE})
    assert modern.status_code == 400
    assert modern.headers["content-type"] == GRAPHQL_RESPONSE
    assert "data" not in modern.json()
    assert modern.json()["errors"][0]["extensions"]["code"] == code

    legacy = await client.post("/graphql", json={"query": query}, headers={"Accept": "application/json"})
    assert legacy.status_code == 200
    assert legacy.headers["content-type"] == "application/json"
    assert legacy.json()["errors"][0]["extensions"]["code"] == code


async def test_variables_of_the_wrong_type_are_bad_user_input(client: httpx2.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        json={"query": "query($n: Int) { users(first: $n) { nodes { id } } }", "variables": {"n": "ten"}},
        headers={"Accept": GRAPHQL_RESPONSE},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_refusal_during_execution_is_200_with_data(client: httpx2.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ users { nodes { id } } }"}, headers={"Accept": GRAPHQL_RESPONSE}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert body["errors"][0]["path"] == ["users"]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [("{not json", "application/json"), ("query=1", "text/plain"), ('{"query": 5}', "application/json")],
)
async def test_malformed_requests_get_a_graphql_error_body(
    client: httpx2.AsyncClient, content: str, content_type: str
) -> None:
    response = await client.post("/graphql", content=content, headers={"Content-Type": content_type})
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]


async def test_queries_over_get_and_no_mutations_over_get(client: httpx2.AsyncClient) -> None:
    query = await client.get("/graphql", params={"query": "{ me { id } }"})
    assert query.json() == {"data": {"me": None}}
    mutation = await client.get(
        "/graphql", params={"query": 'mutation { login(email: "a", password: "b") { accessToken } }'}
    )
    assert mutation.status_code == 405


async def test_each_distinct_document_is_validated_once(
    client: httpx2.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import strawberry.schema.schema as strawberry_schema

    validated: list[object] = []
    real = strawberry_schema.validate_document

    def counting(*args: Any) -> Any:
        validated.append(args[1])
        return real(*args)

    monkeypatch.setattr(strawberry_schema, "validate_document", counting)
    for _ in range(3):
        assert (await client.post("/graphql", json={"query": "{ me { id } }"})).json() == {
            "data": {"me": None}
        }
        bad = await client.post("/graphql", json={"query": "{ me { nope } }"})
        assert bad.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert len(validated) == 2


class TestBadRequestBodies:
    """Bodies the JSON parser cannot take are the client's error, never a bug."""

    async def test_a_body_that_is_not_utf8_is_400(self, client: httpx2.AsyncClient) -> None:
        response = await client.post(
            "/graphql", content=b'{"query": "\xff\xfe"}', headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"

    async def test_json_nested_100_000_deep_is_400(self, client: httpx2.AsyncClient) -> None:
        deep = b"[" * 100_000 + b"]" * 100_000
        response = await client.post("/graphql", content=deep, headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        deep_enough = "[" * 5_000 + "]" * 5_000  # past the recursion limit, within a URL's length
        variables = await client.get("/graphql", params={"query": "{ me { id } }", "variables": deep_enough})
        assert variables.status_code == 400

    async def test_a_subscription_over_plain_http_is_400_saying_where_they_are_served(
        self, client: httpx2.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        subscription = {"query": "subscription { userEvents { kind } }"}
        for response in (
            await client.post("/graphql", json=subscription),
            await client.get("/graphql", params=subscription),
        ):
            assert response.status_code == 400
            (error,) = response.json()["errors"]
            assert "WebSocket" in error["message"]
            assert "Server-Sent Events" in error["message"]
        assert not [r for r in caplog.records if r.levelname == "ERROR"]

    async def test_a_client_that_hangs_up_mid_body_is_no_bug(
        self, app: FastAPI, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Half a body, then the client is gone: answered 400 to nobody, and nothing logged as a bug."""
        arriving: list[Message] = [
            {"type": "http.request", "body": b'{"query": "{ __typ', "more_body": True},
            {"type": "http.disconnect"},
        ]
        sent: list[Message] = []

        async def receive() -> Message:
            return arriving.pop(0) if arriving else {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        headers = [(b"content-type", b"application/json"), (b"content-length", b"1000")]
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": "/graphql", "raw_path": b"/graphql", "query_string": b"",
            "root_path": "", "headers": headers, "client": ("127.0.0.1", 1), "server": ("testserver", 80),
        }  # fmt: skip
        await app(scope, receive, send)
        assert sent[0]["status"] == 400
        assert not [r for r in caplog.records if r.levelname == "ERROR"]
