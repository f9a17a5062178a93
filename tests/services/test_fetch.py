"""Fetching over both transports: one-shot fetches (the same results, the same refusals, against a
real local server; the guard lets 127.0.0.0/8 through only where a test's settings say so), and URL
lists uploaded as files (with the GraphQL CSRF preflight header), their refusals and the body cap."""

import json
import uuid
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from api.db.engine import Database
from api.db.models import FetchJob
from api.jobs import JobRunner
from api.services import api_keys
from api.services.callers import Caller
from api.services.commands import ApiKeyCreate
from api.settings import Settings
from tests.conftest import asgi_client, fetch_settings, running_app, settings_for_tests
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
    user = await make_user(database)
    async with running_app(settings, database) as app, asgi_client(app) as client:
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


UPLOAD = "mutation($file: Upload!) { startFetchJobFromFile(file: $file) { id total status } }"


URL_FILE = b"\xef\xbb\xbf# my list\n\n{base}/ok\r\n  {base}/status/500  \n# done\n{base}/ok\n"


@pytest.fixture
def live_settings() -> Settings:
    return fetch_settings(upload_max_bytes=4096)


async def upload_graphql(
    client: httpx2.AsyncClient, content: bytes, headers: dict[str, str], *, preflight: bool = True
) -> httpx2.Response:
    data = {
        "operations": json.dumps({"query": UPLOAD, "variables": {"file": None}}),
        "map": json.dumps({"0": ["variables.file"]}),
    }
    extra = {"GraphQL-Require-Preflight": "1"} if preflight else {}
    files = {"0": ("urls.txt", content, "text/plain")}
    return await client.post("/graphql", data=data, files=files, headers=headers | extra)


async def upload_rest(client: httpx2.AsyncClient, content: bytes, headers: dict[str, str]) -> httpx2.Response:
    files = {"file": ("urls.txt", content, "text/plain")}
    return await client.post("/api/v1/fetch-jobs", files=files, headers=headers)


async def job_count(database: Database) -> int:
    async with database.session() as session:
        return await session.scalar(select(func.count()).select_from(FetchJob)) or 0


async def test_a_url_file_starts_a_job_over_both_transports(
    live_app: FastAPI,
    live_client: httpx2.AsyncClient,
    live_database: Database,
    live_settings: Settings,
    targets: str,
) -> None:
    user = await make_user(live_database)
    headers = bearer(live_settings, user)
    content = URL_FILE.replace(b"{base}", targets.encode())
    over_graphql = await upload_graphql(live_client, content, headers)
    assert over_graphql.status_code == 200, over_graphql.text
    job = over_graphql.json()["data"]["startFetchJobFromFile"]
    assert (job["total"], job["status"]) == (3, "PENDING")
    over_rest = await upload_rest(live_client, content, headers)
    assert over_rest.status_code == 202
    assert over_rest.json()["total"] == 3
    jobs: JobRunner = live_app.state.jobs
    await jobs.wait(uuid.UUID(over_rest.json()["id"]))
    results = (
        await live_client.get(f"/api/v1/fetch-jobs/{over_rest.json()['id']}/results", headers=headers)
    ).json()
    assert [(r["url"], r["outcome"]) for r in results["items"]] == [
        (f"{targets}/ok", "OK"),
        (f"{targets}/status/500", "HTTP_ERROR"),
        (f"{targets}/ok", "OK"),
    ]


async def test_a_multipart_request_without_the_preflight_header_is_refused(
    live_client: httpx2.AsyncClient, live_database: Database, live_settings: Settings, targets: str
) -> None:
    user = await make_user(live_database)
    response = await upload_graphql(
        live_client, f"{targets}/ok\n".encode(), bearer(live_settings, user), preflight=False
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert "GraphQL-Require-Preflight" in error["message"]
    assert await job_count(live_database) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty."),
        (b"  \n\n", "The file is empty."),
        (b"# only a comment\n\n", "The file holds no URL, only blank lines and comments."),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "The file is not UTF-8 text (one URL a line)."),
        (b"http://a.example/\x00\n", "The file is not text (one URL a line)."),
        (b"http://a.example/\n" * 300, "The file is larger than 4096 bytes."),
        (b"http://a.example/\n" * 101, "Give between 1 and 100 URLs."),
    ],
)
async def test_bad_files_are_refused_alike_and_start_nothing(
    live_client: httpx2.AsyncClient,
    live_database: Database,
    live_settings: Settings,
    content: bytes,
    message: str,
) -> None:
    user = await make_user(live_database)
    headers = bearer(live_settings, user)
    over_graphql = (await upload_graphql(live_client, content, headers)).json()
    assert over_graphql["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "fields": {"file": [message]},
    }
    over_rest = await upload_rest(live_client, content, headers)
    assert over_rest.status_code == 422
    assert over_rest.json()["errors"] == {"file": [message]}
    assert await job_count(live_database) == 0


async def test_a_rest_multipart_body_needs_its_file_field(
    live_client: httpx2.AsyncClient, live_database: Database, live_settings: Settings
) -> None:
    user = await make_user(live_database)
    files = {"urls": ("urls.txt", b"http://a.example/\n", "text/plain")}
    response = await live_client.post("/api/v1/fetch-jobs", files=files, headers=bearer(live_settings, user))
    assert (response.status_code, response.json()["code"]) == (422, "BAD_USER_INPUT")


async def test_a_body_over_the_cap_is_a_413_problem(
    live_client: httpx2.AsyncClient, live_database: Database, live_settings: Settings
) -> None:
    user = await make_user(live_database)
    body = json.dumps({"urls": ["http://a.example/" + "x" * 1000] * 1200}).encode()  # ~1.2 MiB
    response = await live_client.post(
        "/api/v1/fetch-jobs",
        content=body,
        headers=bearer(live_settings, user) | {"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert await job_count(live_database) == 0
