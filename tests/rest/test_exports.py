"""A job's results exported as CSV and as NDJSON, streamed in batches."""

import csv
import io
import json
import uuid
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI

from api.db.engine import Database
from api.db.models import User
from api.jobs import JobRunner
from api.settings import Settings
from tests.factories import bearer, make_user


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


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("text/csv", "text/csv; charset=utf-8"),
        ("application/x-ndjson", "application/x-ndjson"),
        ("application/json;q=0.5, text/csv", "text/csv; charset=utf-8"),
        ("text/html", "application/json"),  # nothing offered matches: the JSON page, not a 406
        ("*/*", "application/json"),
    ],
)
async def test_the_results_route_answers_the_form_accept_asks_for(
    live_app: FastAPI,
    live_client: httpx2.AsyncClient,
    live_database: Database,
    live_settings: Settings,
    targets: str,
    accept: str,
    media_type: str,
) -> None:
    """``Accept`` on ``…/results`` gives what the ``.csv`` or ``.ndjson`` path gives, byte for byte,
    with the same ``outcome`` filter."""
    user = await make_user(live_database)
    headers = bearer(live_settings, user)
    job_id = await finished_job(
        live_app, live_client, user, live_settings, [f"{targets}/ok", "ftp://x", f"{targets}/ok"]
    )
    query = {"outcome": "OK"}
    response = await live_client.get(
        f"/api/v1/fetch-jobs/{job_id}/results", params=query, headers={**headers, "Accept": accept}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    if media_type == "application/json":
        assert [item["position"] for item in response.json()["items"]] == [0, 2]
        return
    extension = "csv" if media_type.startswith("text/csv") else "ndjson"
    by_path = await live_client.get(
        f"/api/v1/fetch-jobs/{job_id}/results.{extension}", params=query, headers=headers
    )
    assert response.content == by_path.content
    assert response.headers["content-disposition"] == by_path.headers["content-disposition"]
    assert b"ftp://x" not in response.content


async def test_the_file_paths_are_deprecated_for_accept_on_results(
    live_app: FastAPI,
    live_client: httpx2.AsyncClient,
    live_database: Database,
    live_settings: Settings,
    targets: str,
) -> None:
    """Declared once on the routes: OpenAPI says so, and every answer tells the client when the
    path goes (RFC 8594) and what replaces it."""
    user = await make_user(live_database)
    headers = bearer(live_settings, user)
    job_id = await finished_job(live_app, live_client, user, live_settings, [f"{targets}/ok"])
    for extension in ("csv", "ndjson"):
        response = await live_client.get(f"/api/v1/fetch-jobs/{job_id}/results.{extension}", headers=headers)
        assert response.status_code == 200
        assert response.headers["deprecation"] == "@1796256000"  # 2026-12-03, RFC 9745's date form
        assert response.headers["sunset"] == "Wed, 01 Dec 2027 00:00:00 GMT"
        assert response.links["successor-version"]["url"] == f"/api/v1/fetch-jobs/{job_id}/results"
    current = await live_client.get(f"/api/v1/fetch-jobs/{job_id}/results", headers=headers)
    assert "deprecation" not in current.headers
    operations = live_app.openapi()["paths"]
    assert operations["/api/v1/fetch-jobs/{job_id}/results.csv"]["get"]["deprecated"] is True
    assert "deprecated" not in operations["/api/v1/fetch-jobs/{job_id}/results"]["get"]
