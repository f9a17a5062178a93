"""gzip for answers worth it: big documents compressed, deterministically, with their own entity
tag; small ones, event streams and clients that do not ask left alone; exports compressed as
they stream."""

import gzip

import httpx2
from fastapi import FastAPI

from api.db.engine import Database
from api.settings import Settings
from tests.factories import bearer, make_user
from tests.rest.test_exports import finished_job

GZIP = {"Accept-Encoding": "gzip"}


async def raw(
    client: httpx2.AsyncClient, path: str, headers: dict[str, str]
) -> tuple[httpx2.Response, bytes]:
    """The answer and its bytes as they came over the wire, not decoded."""
    async with client.stream("GET", path, headers=headers) as response:
        return response, b"".join([chunk async for chunk in response.aiter_raw()])


async def test_a_big_document_is_gzipped_the_same_way_each_time(client: httpx2.AsyncClient) -> None:
    plain, identity = await raw(client, "/openapi.json", {"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    packed, first = await raw(client, "/openapi.json", GZIP)
    _, second = await raw(client, "/openapi.json", GZIP)
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) == len(first) < len(identity) / 3
    assert gzip.decompress(first) == identity
    assert first == second  # no timestamp in the gzip header: the same bytes, the same tag
    assert packed.headers["etag"] == plain.headers["etag"][:-1] + '-gzip"'
    assert "Accept-Encoding" in packed.headers["vary"]
    assert "Accept-Encoding" in plain.headers["vary"]
    revalidated, body = await raw(client, "/openapi.json", {**GZIP, "If-None-Match": packed.headers["etag"]})
    assert revalidated.status_code == 304
    assert body == b""
    assert revalidated.headers["etag"] == packed.headers["etag"]
    # A client holding the identity form is told that one is still current, by its own tag
    # (RFC 9110 §15.4.5): it may go on using it.
    other, _ = await raw(client, "/openapi.json", {**GZIP, "If-None-Match": plain.headers["etag"]})
    assert other.status_code == 304
    assert other.headers["etag"] == plain.headers["etag"]


async def test_small_answers_and_refusals_of_gzip_stay_plain(client: httpx2.AsyncClient) -> None:
    small, _ = await raw(client, "/healthz", GZIP)
    assert "content-encoding" not in small.headers
    assert "Accept-Encoding" in small.headers["vary"]
    for refusal in ("gzip;q=0", "br", "identity"):
        answer, _ = await raw(client, "/openapi.json", {"Accept-Encoding": refusal})
        assert "content-encoding" not in answer.headers, refusal


async def test_an_export_is_compressed_as_it_streams(
    live_app: FastAPI,
    live_client: httpx2.AsyncClient,
    live_database: Database,
    live_settings: Settings,
    targets: str,
) -> None:
    user = await make_user(live_database)
    job_id = await finished_job(live_app, live_client, user, live_settings, [f"{targets}/ok"] * 40)
    headers = bearer(live_settings, user)
    path = f"/api/v1/fetch-jobs/{job_id}/results.ndjson"
    packed, body = await raw(live_client, path, {**headers, **GZIP})
    assert packed.headers["content-encoding"] == "gzip"
    assert "content-length" not in packed.headers
    plain = await live_client.get(path, headers={**headers, "Accept-Encoding": "identity"})
    assert gzip.decompress(body) == plain.content
    assert len(plain.content.splitlines()) == 40
