"""SIGTERM on a live ``switchboard serve``: it stops accepting, lets a request in flight finish,
closes its sockets with 1001, hands its running job back, and the next start finishes that job."""

import asyncio
import signal
import uuid
from typing import Any

import httpx2
from sqlalchemy import select

from api.db.engine import Database
from api.db.models import FetchJob, JobStatus
from api.security import create_access_token
from tests.conftest import settings_for_tests
from tests.factories import make_user
from tests.processes import free_port, ready, server_process
from tests.sockets import socket as graphql_socket
from tests.targets import gate
from tests.waiting import until, until_true

JOB_EVENTS = "subscription ($id: ID!) { fetchJobEvents(id: $id) { job { status completed } } }"
FETCH_NOW = "query ($urls: [String!]!) { fetch(urls: $urls) { outcome statusCode } }"


async def _job(database: Database, job_id: uuid.UUID) -> FetchJob:
    async with database.session() as session:
        job: FetchJob = (await session.execute(select(FetchJob).where(FetchJob.id == job_id))).scalar_one()
        return job


async def test_sigterm_finishes_requests_closes_sockets_with_1001_and_hands_jobs_back(
    live_database: Database, targets: str
) -> None:
    user = await make_user(live_database)
    auth = {"Authorization": f"Bearer {create_access_token(settings_for_tests(), user.id).token}"}
    url = live_database.engine.url.render_as_string(hide_password=False)
    port = free_port()
    # The job's second page and the request in flight answer only once the test opens them (their
    # block ends): the job is still fetching when the server stops, the request once the shutdown began.
    async with gate(targets, within=30) as slow_page, gate(targets, within=30) as in_flight_page:
        with server_process(port, url) as process:
            async with ready(port) as client:
                started = await client.post(
                    "/api/v1/fetch-jobs",
                    json={"urls": [f"{targets}/ok", slow_page.url]},
                    headers=auth,
                )
                job_id, node_id = uuid.UUID(started.json()["id"]), started.json()["node_id"]
                async with graphql_socket(f"http://127.0.0.1:{port}", "graphql-transport-ws") as ws:
                    await ws.init(auth)
                    await ws.subscribe("1", JOB_EVENTS, {"id": node_id})
                    while (await ws.next("1"))["data"]["fetchJobEvents"]["job"]["completed"] < 1:
                        pass  # the first URL is in; the slow one is being fetched
                    in_flight = asyncio.create_task(
                        client.post(
                            "/graphql",
                            json={"query": FETCH_NOW, "variables": {"urls": [in_flight_page.url]}},
                            headers=auth,
                        )
                    )
                    await until_true(
                        lambda: in_flight_page.arrived == 1, what="the request in flight to reach the target"
                    )
                    process.send_signal(signal.SIGTERM)
                    assert await asyncio.wait_for(ws.closed_with(), 5) == 1001
                assert not in_flight.done()  # the shutdown has begun, and waits for it
                in_flight_page.open()
                answer = await in_flight
                assert answer.status_code == 200
                assert answer.json() == {"data": {"fetch": [{"outcome": "OK", "statusCode": 200}]}}
                try:
                    await client.get("/healthz", timeout=2)
                except httpx2.ConnectError:
                    pass  # no longer accepting
                else:
                    raise AssertionError("a new connection was accepted after SIGTERM")
            # After its clean shutdown uvicorn raises the signal again, so the parent learns how it ended.
            assert await asyncio.to_thread(process.wait, 30) == -signal.SIGTERM

    handed_back = await _job(live_database, job_id)
    assert (handed_back.status, handed_back.completed, handed_back.lease_until) == (
        JobStatus.RUNNING,
        1,
        None,
    )

    with server_process(port, url):
        async with ready(port) as client:

            async def ended() -> dict[str, Any]:
                """The job once it is no longer running (until then, nothing)."""
                job: dict[str, Any] = (await client.get(f"/api/v1/fetch-jobs/{job_id}", headers=auth)).json()
                return job if job["status"] != "RUNNING" else {}

            job = await until(ended, within=10, what="the next start to finish the job")
    assert (job["status"], job["completed"]) == ("DONE", 2)
