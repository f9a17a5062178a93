"""Fetch jobs end to end, with real commits and the real runner: started at once, results written as
they come, cancelled promptly, listed, hidden from other users. (The runner's side, taking a job
over after a crash, is in ``tests/test_jobs.py``.)"""

import asyncio
import time
import uuid

import httpx2
from fastapi import FastAPI

from api.db.engine import Database
from api.ids import NodeType, to_global_id
from api.settings import Settings
from tests.factories import bearer, graphql, make_user
from tests.jobs import CANCEL, READ, key, read, runner, start
from tests.targets import gate
from tests.waiting import until


async def test_a_job_starts_at_once_and_writes_each_result_as_it_comes(
    live_app: FastAPI,
    live_client: httpx2.AsyncClient,
    live_database: Database,
    targets: str,
    live_settings: Settings,
) -> None:
    user = await make_user(live_database)
    headers = bearer(live_settings, user)
    async with gate(targets) as slow:  # answers once the midway state was read
        # The mutation answers while the slow page is held: it does not wait for the fetching.
        job = await start(live_client, [f"{targets}/ok", slow.url, "gopher://x/"], headers)
        assert (job["status"], job["total"], job["completed"], job["results"]) == ("PENDING", 3, 0, [])

        async def two_in() -> bool:
            return bool((await read(live_client, job["id"], headers))["completed"] == 2)

        await until(two_in)
        midway = await read(live_client, job["id"], headers)
        assert midway["status"] == "RUNNING"  # the slow one is still under way
        assert midway["startedAt"] is not None
        assert midway["finishedAt"] is None
        assert [(r["position"], r["outcome"]) for r in midway["results"]] == [(0, "OK"), (2, "INVALID_URL")]

    await runner(live_app).wait(key(job["id"]))
    done = await read(live_client, job["id"], headers)
    assert (done["status"], done["completed"], done["error"]) == ("DONE", 3, None)
    assert [r["outcome"] for r in done["results"]] == ["OK", "OK", "INVALID_URL"]
    assert done["finishedAt"] is not None


async def test_rest_starts_with_202_and_a_location_to_follow(
    live_app: FastAPI,
    live_client: httpx2.AsyncClient,
    live_database: Database,
    targets: str,
    live_settings: Settings,
) -> None:
    user = await make_user(live_database)
    headers = bearer(live_settings, user)
    response = await live_client.post(
        "/api/v1/fetch-jobs", json={"urls": [f"{targets}/ok"] * 2}, headers=headers
    )
    assert response.status_code == 202
    job = response.json()
    assert response.headers["Location"] == f"http://testserver/api/v1/fetch-jobs/{job['id']}"
    assert job["node_id"] == to_global_id(NodeType.FETCH_JOB, uuid.UUID(job["id"]))
    await runner(live_app).wait(uuid.UUID(job["id"]))
    followed = (await live_client.get(response.headers["Location"], headers=headers)).json()
    assert (followed["status"], followed["completed"]) == ("DONE", 2)
    results = (await live_client.get(f"/api/v1/fetch-jobs/{job['id']}/results", headers=headers)).json()
    assert [(r["position"], r["outcome"]) for r in results["items"]] == [(0, "OK"), (1, "OK")]
    errors = (
        await live_client.get(f"/api/v1/fetch-jobs/{job['id']}/results?outcome=HTTP_ERROR", headers=headers)
    ).json()
    assert errors["items"] == []
    over_graphql = await read(live_client, job["node_id"], headers)
    assert over_graphql["status"] == followed["status"]


async def test_cancelling_stops_the_fetches_in_flight_at_once(
    live_app: FastAPI,
    live_client: httpx2.AsyncClient,
    live_database: Database,
    targets: str,
    live_settings: Settings,
) -> None:
    user = await make_user(live_database)
    headers = bearer(live_settings, user)
    urls = [f"{targets}/ok", *[f"{targets}/slow?s=2"] * 12]
    job = await start(live_client, urls, headers)

    async def first_in() -> bool:
        return bool((await read(live_client, job["id"], headers))["completed"] == 1)

    await until(first_in)
    started = time.perf_counter()
    body = await graphql(live_client, CANCEL, {"id": job["id"]}, headers=headers)
    cancelled = body["data"]["cancelFetchJob"]
    await asyncio.wait_for(runner(live_app).wait(key(job["id"])), timeout=1.0)
    assert time.perf_counter() - started < 1.0  # not the 5 s the slow answers take
    assert (cancelled["status"], cancelled["completed"]) == ("CANCELLED", 13)
    assert cancelled["finishedAt"] is not None
    outcomes = [r["outcome"] for r in cancelled["results"]]
    assert outcomes == ["OK", *["CANCELLED"] * 12]
    assert cancelled["results"][1]["error"] == "The job was cancelled before this URL was fetched."
    # A window, not a wait: nothing may be written after the cancel, so there is no event to await.
    await asyncio.sleep(0.2)
    assert await read(live_client, job["id"], headers) == cancelled  # nothing written after

    again = await live_client.delete(f"/api/v1/fetch-jobs/{key(job['id'])}", headers=headers)
    assert (again.status_code, again.json()["status"]) == (200, "CANCELLED")


async def test_a_job_that_ended_cannot_be_cancelled(
    live_app: FastAPI,
    live_client: httpx2.AsyncClient,
    live_database: Database,
    targets: str,
    live_settings: Settings,
) -> None:
    user = await make_user(live_database)
    headers = bearer(live_settings, user)
    job = await start(live_client, [f"{targets}/ok"], headers)
    await runner(live_app).wait(key(job["id"]))
    body = await graphql(live_client, CANCEL, {"id": job["id"]}, headers=headers)
    assert body["errors"][0]["extensions"]["code"] == "CONFLICT"
    response = await live_client.delete(f"/api/v1/fetch-jobs/{key(job['id'])}", headers=headers)
    assert (response.status_code, response.json()["code"]) == (409, "CONFLICT")
    assert (await read(live_client, job["id"], headers))["status"] == "DONE"


async def test_lists_page_by_keyset_and_filter_by_status(
    live_app: FastAPI,
    live_client: httpx2.AsyncClient,
    live_database: Database,
    targets: str,
    live_settings: Settings,
) -> None:
    user = await make_user(live_database)
    headers = bearer(live_settings, user)
    ids = [(await start(live_client, [f"{targets}/ok"], headers))["id"] for _ in range(3)]
    for job_id in ids:
        await runner(live_app).wait(key(job_id))
    slow = await start(live_client, [f"{targets}/slow?s=2"], headers)
    await graphql(live_client, CANCEL, {"id": slow["id"]}, headers=headers)

    newest_first = [slow["id"], *reversed(ids)]
    query = """query($after: String, $status: FetchJobStatus) {
      fetchJobs(first: 2, after: $after, status: $status) {
        nodes { id status } pageInfo { hasNextPage endCursor } } }"""
    first = (await graphql(live_client, query, {}, headers=headers))["data"]["fetchJobs"]
    assert [n["id"] for n in first["nodes"]] == newest_first[:2]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = await graphql(live_client, query, {"after": first["pageInfo"]["endCursor"]}, headers=headers)
    assert [n["id"] for n in rest["data"]["fetchJobs"]["nodes"]] == newest_first[2:]
    cancelled = await graphql(live_client, query, {"status": "CANCELLED"}, headers=headers)
    assert [n["id"] for n in cancelled["data"]["fetchJobs"]["nodes"]] == [slow["id"]]

    page = await live_client.get("/api/v1/fetch-jobs", params={"limit": 2}, headers=headers)
    assert [item["node_id"] for item in page.json()["items"]] == newest_first[:2]
    assert 'rel="next"' in page.headers["Link"]
    after = await live_client.get(page.links["next"]["url"], headers=headers)
    assert [item["node_id"] for item in after.json()["items"]] == newest_first[2:]
    done = await live_client.get("/api/v1/fetch-jobs", params={"status": "DONE"}, headers=headers)
    assert [item["node_id"] for item in done.json()["items"]] == ids[::-1]


async def test_jobs_are_their_owners_and_admins_only_on_every_path(
    live_app: FastAPI,
    live_client: httpx2.AsyncClient,
    live_database: Database,
    targets: str,
    live_settings: Settings,
) -> None:
    owner = await make_user(live_database)
    stranger = await make_user(live_database)
    admin = await make_user(live_database, admin=True)
    job = await start(live_client, [f"{targets}/ok"], bearer(live_settings, owner))
    await runner(live_app).wait(key(job["id"]))
    rest_id = key(job["id"])
    theirs = bearer(live_settings, stranger)

    body = await graphql(live_client, READ, {"id": job["id"]}, headers=theirs)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    node = await graphql(
        live_client, "query($id: ID!) { node(id: $id) { id } }", {"id": job["id"]}, headers=theirs
    )
    assert node["data"]["node"] is None
    listed = await graphql(live_client, "{ fetchJobs { nodes { id } } }", headers=theirs)
    assert listed["data"]["fetchJobs"]["nodes"] == []
    cancel = await graphql(live_client, CANCEL, {"id": job["id"]}, headers=theirs)
    assert cancel["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    for method, path in [
        ("GET", f"/api/v1/fetch-jobs/{rest_id}"),
        ("GET", f"/api/v1/fetch-jobs/{rest_id}/results"),
        ("GET", f"/api/v1/fetch-jobs/{rest_id}/results.csv"),
        ("GET", f"/api/v1/fetch-jobs/{rest_id}/results.ndjson"),
        ("DELETE", f"/api/v1/fetch-jobs/{rest_id}"),
    ]:
        response = await live_client.request(method, path, headers=theirs)
        assert (response.status_code, response.json()["code"]) == (404, "NOT_FOUND"), path

    admins = bearer(live_settings, admin)
    seen = await graphql(
        live_client,
        "query($id: ID!) { node(id: $id) { ... on FetchJob { status owner { id } results { outcome } } } }",
        {"id": job["id"]},
        headers=admins,
    )
    assert seen["data"]["node"] == {
        "status": "DONE",
        "owner": {"id": to_global_id(NodeType.USER, owner.id)},
        "results": [{"outcome": "OK"}],
    }
    assert (
        await live_client.get(f"/api/v1/fetch-jobs/{rest_id}/results.csv", headers=admins)
    ).status_code == 200
    own = await graphql(
        live_client, "{ me { fetchJobs { nodes { id } } } }", headers=bearer(live_settings, owner)
    )
    assert own["data"]["me"]["fetchJobs"]["nodes"] == [{"id": job["id"]}]


async def test_a_cancel_in_an_operation_that_failed_stops_nothing(
    live_app: FastAPI,
    live_client: httpx2.AsyncClient,
    live_database: Database,
    targets: str,
    live_settings: Settings,
) -> None:
    user = await make_user(live_database)
    headers = bearer(live_settings, user)
    async with gate(targets) as slow:  # still fetching while the cancel runs
        job = await start(live_client, [slow.url], headers)
        document = (
            'mutation($id: ID!) { ok: cancelFetchJob(id: $id) { id } bad: cancelFetchJob(id: "nope") { id } }'
        )
        body = await graphql(live_client, document, {"id": job["id"]}, headers=headers)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"  # the whole operation rolls back
    await runner(live_app).wait(key(job["id"]))
    assert (await read(live_client, job["id"], headers))["status"] == "DONE"


async def test_a_url_with_a_nul_is_an_invalid_url_result_on_every_database(
    live_app: FastAPI,
    live_client: httpx2.AsyncClient,
    live_database: Database,
    targets: str,
    live_settings: Settings,
) -> None:
    user = await make_user(live_database)
    headers = bearer(live_settings, user)
    job = await start(live_client, ["http://a\x00b.example/", f"{targets}/slow?s=0.3"], headers)
    cancelled = await live_client.delete(f"/api/v1/fetch-jobs/{key(job['id'])}", headers=headers)
    assert cancelled.status_code == 200
    other = await start(live_client, ["http://a\x00b.example/"], headers)
    await runner(live_app).wait(key(other["id"]))
    done = await read(live_client, other["id"], headers)
    assert done["status"] == "DONE"
    assert [(r["url"], r["outcome"]) for r in done["results"]] == [
        ("http://a\ufffdb.example/", "INVALID_URL")
    ]
