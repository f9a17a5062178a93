"""A job's progress as Server-Sent Events, from a live server."""

import json
from typing import Any

import httpx2

from api.db.engine import Database
from tests.conftest import Serve
from tests.factories import bearer, make_user


def parsed(text: str) -> list[dict[str, Any]]:
    """The messages of an event stream, each as its fields (``data`` decoded); comments kept as
    ``{"comment": ...}``."""
    messages = []
    for block in text.strip().split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            fields[name or "comment"] = json.loads(value) if name == "data" else value
        messages.append(fields)
    return messages


async def test_a_job_streams_its_progress_and_resumes_after_the_last_event_seen(
    serve: Serve, live_database: Database, targets: str
) -> None:
    user = await make_user(live_database)
    async with serve(sse_heartbeat=0.1) as (url, app), httpx2.AsyncClient(base_url=url, timeout=10) as http:
        headers = bearer(app.state.settings, user)
        urls = [f"{targets}/slow?s=0.4", f"{targets}/ok", f"{targets}/status/500"]
        job = (await http.post("/api/v1/fetch-jobs", json={"urls": urls}, headers=headers)).json()
        events_url = f"/api/v1/fetch-jobs/{job['id']}/events"
        async with http.stream("GET", events_url, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-store"
            assert "content-encoding" not in response.headers  # httpx2 asks for gzip; events never get it
            streamed = parsed((await response.aread()).decode())
        resumed = parsed((await http.get(events_url, headers=headers | {"Last-Event-ID": "1"})).text)
    messages = [m for m in streamed if "comment" not in m]
    assert any(m.get("comment") == "heartbeat" for m in streamed)  # the slow URL left a quiet spell
    assert messages[0]["event"] == "job"
    assert messages[0]["data"]["result"] is None
    results = [m for m in messages if m["event"] == "result"]
    assert sorted(int(m["id"]) for m in results) == list(range(int(messages[0]["id"]) + 1, 4))
    assert messages[-1]["event"] == "job"
    assert messages[-1]["data"]["job"]["status"] == "DONE"
    # Resuming after the first result: the two that followed, then the end.
    assert [m["id"] for m in resumed] == ["2", "3", "3"]
    assert [m["event"] for m in resumed] == ["result", "result", "job"]
    assert {m["data"]["result"]["position"] for m in resumed[:2]} | {
        r["data"]["result"]["position"] for r in results if r["id"] == "1"
    } <= {0, 1, 2}


async def test_the_stream_is_refused_as_the_other_job_routes_are(
    serve: Serve, live_database: Database
) -> None:
    owner, other = await make_user(live_database), await make_user(live_database)
    async with serve() as (url, app), httpx2.AsyncClient(base_url=url) as http:
        started = await http.post(
            "/api/v1/fetch-jobs",
            json={"urls": ["http://127.0.0.1:9/x"]},
            headers=bearer(app.state.settings, owner),
        )
        events_url = f"/api/v1/fetch-jobs/{started.json()['id']}/events"
        anonymous = await http.get(events_url)
        stranger = await http.get(events_url, headers=bearer(app.state.settings, other))
        bad_resume = await http.get(
            events_url, headers=bearer(app.state.settings, owner) | {"Last-Event-ID": "later"}
        )
    assert anonymous.status_code == 401
    assert stranger.status_code == 404
    assert stranger.headers["content-type"] == "application/problem+json"
    assert bad_resume.status_code in (400, 422)
    assert bad_resume.json()["code"] == "BAD_USER_INPUT"
