"""Files in and out: URL lists uploaded over both transports (with the GraphQL CSRF preflight
header), their refusals, the body size cap, and the CSV and NDJSON exports."""

import csv
import io
import json
import uuid
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from api.db.engine import Database
from api.db.models import FetchJob, User
from api.jobs import JobRunner
from api.settings import Settings
from tests.conftest import fetch_settings
from tests.factories import bearer, make_user

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


async def finished_job(
    app: FastAPI, client: httpx2.AsyncClient, user: User, settings: Settings, urls: list[str]
) -> str:
    response = await client.post("/api/v1/fetch-jobs", json={"urls": urls}, headers=bearer(settings, user))
    job_id: str = response.json()["id"]
    jobs: JobRunner = app.state.jobs
    await jobs.wait(uuid.UUID(job_id))
    return job_id


async def test_results_export_as_csv(
    live_app: FastAPI,
    live_client: httpx2.AsyncClient,
    live_database: Database,
    live_settings: Settings,
    targets: str,
) -> None:
    user = await make_user(live_database)
    job_id = await finished_job(
        live_app,
        live_client,
        user,
        live_settings,
        [f"{targets}/ok", '=HYPERLINK("http://x")', f"{targets}/status/503"],
    )
    response = await live_client.get(
        f"/api/v1/fetch-jobs/{job_id}/results.csv", headers=bearer(live_settings, user)
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="fetch-job-{job_id}.csv"'
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["position"], r["outcome"], r["status_code"]) for r in rows] == [
        ("0", "OK", "200"),
        ("1", "INVALID_URL", ""),
        ("2", "HTTP_ERROR", "503"),
    ]
    assert rows[1]["url"] == '\'=HYPERLINK("http://x")'  # not a formula in a spreadsheet
    assert list(rows[0]) == [
        "position",
        "url",
        "outcome",
        "status_code",
        "final_url",
        "content_type",
        "bytes",
        "elapsed_ms",
        "error",
        "fetched_at",
    ]


async def test_results_export_as_ndjson_in_batches(
    live_app: FastAPI,
    live_client: httpx2.AsyncClient,
    live_database: Database,
    live_settings: Settings,
    targets: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("api.services.fetch_jobs.EXPORT_BATCH", 2)  # five results: three batches
    user = await make_user(live_database)
    job_id = await finished_job(live_app, live_client, user, live_settings, [f"{targets}/ok"] * 5)
    headers = bearer(live_settings, user)
    response = await live_client.get(f"/api/v1/fetch-jobs/{job_id}/results.ndjson", headers=headers)
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["content-disposition"] == f'attachment; filename="fetch-job-{job_id}.ndjson"'
    lines: list[dict[str, Any]] = [json.loads(line) for line in response.text.splitlines()]
    listed = (await live_client.get(f"/api/v1/fetch-jobs/{job_id}/results", headers=headers)).json()["items"]
    assert lines == listed
    assert [line["position"] for line in lines] == [0, 1, 2, 3, 4]
