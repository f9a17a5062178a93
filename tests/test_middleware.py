"""The middleware around every request: a request id on each answer, and the body size cap counted
as a body streams in."""

from collections.abc import AsyncIterator

import httpx2


async def test_a_request_id_is_made_when_the_client_sends_none_or_a_bad_one(
    client: httpx2.AsyncClient,
) -> None:
    plain = await client.get("/healthz")
    assert len(plain.headers["x-request-id"]) == 32
    odd = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert odd.headers["x-request-id"] != "bad id\twith spaces"


async def test_a_body_streamed_past_the_cap_is_refused_in_the_transport_s_shape(
    client: httpx2.AsyncClient,
) -> None:
    """No Content-Length (chunked): the body is counted as it is read."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ me { id } }", "padding": "'
        for _ in range(80):
            yield b"x" * 16384
        yield b'"}'

    response = await client.post("/graphql", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    response = await client.post(
        "/api/v1/users", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.json()["code"]) == (413, "PAYLOAD_TOO_LARGE")
