"""The middleware around every request: a request id on each answer, and the body size cap counted
as a body streams in."""

import asyncio
import time
from collections.abc import AsyncIterator

import httpx2
import pytest

from api.db.engine import Database
from tests.processes import free_port, ready, server_process


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


API_CSP = "default-src 'none'; frame-ancestors 'none'"


async def test_every_answer_carries_the_security_headers(client: httpx2.AsyncClient) -> None:
    """API answers, refusals and masked errors get a CSP that allows nothing; the IDE keeps its own."""
    for response in (
        await client.get("/healthz"),
        await client.get("/api/v1/users/me"),  # 401
        await client.post("/graphql", json={"query": "{ me { id } }"}),
        await client.get("/no/such/path"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["content-security-policy"] == API_CSP
    ide = await client.get("/graphql", headers={"Accept": "text/html"})
    assert ide.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in ide.headers["content-security-policy"]
    assert len(ide.headers.get_list("content-security-policy")) == 1


async def test_headers_over_the_limit_are_431_in_the_transport_s_shape(client: httpx2.AsyncClient) -> None:
    big = {"X-Padding": "x" * 64 * 1024}
    rest = await client.get("/api/v1/users/me", headers=big)
    assert (rest.status_code, rest.json()["code"]) == (431, "REQUEST_HEADER_FIELDS_TOO_LARGE")
    graphql = await client.post("/graphql", json={"query": "{ me { id } }"}, headers=big)
    assert graphql.status_code == 431
    assert graphql.json()["errors"][0]["extensions"]["code"] == "REQUEST_HEADER_FIELDS_TOO_LARGE"


# On a live ``switchboard serve`` (uvicorn with httptools): an oversize header and a body that trickles
# in a byte at a time are refused, not served or held.
async def _exchange(
    port: int, request: bytes, expect: bytes, *, trickle: bytes = b"", every: float = 0.0
) -> bytes:
    """What the server answers to ``request`` (then ``trickle`` a byte every ``every`` seconds,
    while the server listens), read until it holds ``expect`` or the connection ends."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()

        async def dribble() -> None:
            for byte in trickle:
                await asyncio.sleep(every)
                writer.write(bytes([byte]))
                await writer.drain()

        sender = asyncio.create_task(dribble())
        try:
            answer = b""
            async with asyncio.timeout(30):
                while expect not in answer and (chunk := await reader.read(65536)):
                    answer += chunk
            return answer
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
    finally:
        writer.close()


@pytest.fixture
def port(live_database: Database) -> int:
    return free_port()


async def test_live_server_refuses_an_oversize_header_and_a_trickled_body(
    live_database: Database, port: int
) -> None:
    """On SQLite only: the limits are uvicorn's and the middleware's, before any database is read."""
    if live_database.engine.dialect.name != "sqlite":
        pytest.skip("the HTTP limits do not depend on the database")
    url = live_database.engine.url.render_as_string(hide_password=False)
    with server_process(port, url, env={"SWITCHBOARD_REQUEST_BODY_TIMEOUT": "0.5"}):
        async with ready(port):
            header = b"X-Padding: " + b"x" * 64 * 1024 + b"\r\n"
            request = b"GET /api/v1/users/me HTTP/1.1\r\nHost: t\r\n" + header + b"\r\n"
            answer = await _exchange(port, request, b"REQUEST_HEADER_FIELDS_TOO_LARGE")
            assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
            assert b"REQUEST_HEADER_FIELDS_TOO_LARGE" in answer

            body = b'{"query": "{ me { id } }"}'
            head = (
                b"POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)
            )
            started = time.monotonic()
            answer = await _exchange(port, head, b"REQUEST_TIMEOUT", trickle=body, every=0.2)
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
            assert b"REQUEST_TIMEOUT" in answer
            assert time.monotonic() - started < 3
