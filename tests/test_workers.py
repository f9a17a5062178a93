"""Two server processes sharing one PostgreSQL: events cross between them through LISTEN/NOTIFY."""

import asyncio

import pytest
from starlette.types import Receive, Scope, Send

from api.db.engine import Database
from api.security import create_access_token
from tests.conftest import POSTGRES_URL, settings_for_tests
from tests.factories import make_user
from tests.processes import free_port, ready, server_process
from tests.sockets import socket as graphql_socket
from tests.targets import serving
from tests.waiting import until_true

pytestmark = pytest.mark.skipif(POSTGRES_URL is None, reason="needs SWITCHBOARD_TEST_POSTGRES_URL")

JOB_EVENTS = """subscription ($id: ID!) { fetchJobEvents(id: $id) {
  job { status completed } result { position outcome } } }"""


async def test_a_subscriber_on_one_process_sees_every_event_of_a_job_started_on_another(
    live_database: Database, targets: str
) -> None:
    if live_database.engine.dialect.name != "postgresql":
        pytest.skip("the PostgreSQL bus")
    user = await make_user(live_database)
    token = create_access_token(settings_for_tests(), user.id).token
    first, second = free_port(), free_port()
    url = live_database.engine.url.render_as_string(hide_password=False)
    with server_process(first, url), server_process(second, url):
        async with ready(first), ready(second) as starter:
            urls = [f"{targets}/slow?s=0.3", f"{targets}/ok", f"{targets}/status/404", f"{targets}/ok"]
            async with graphql_socket(f"http://127.0.0.1:{first}", "graphql-transport-ws") as ws:
                await ws.init({"Authorization": f"Bearer {token}"})
                started = await starter.post(
                    "/api/v1/fetch-jobs", json={"urls": urls}, headers={"Authorization": f"Bearer {token}"}
                )
                await ws.subscribe("1", JOB_EVENTS, {"id": started.json()["node_id"]})
                events = []
                while True:
                    message = await asyncio.wait_for(ws.receive(), 10)
                    if message["type"] == "complete":
                        break
                    events.append(message["payload"]["data"]["fetchJobEvents"])
    first_state, *rest = events
    positions = [e["result"]["position"] for e in rest if e["result"]]
    assert len(positions) == len(set(positions)) == 4 - first_state["job"]["completed"]
    assert rest[-1]["job"] == {"status": "DONE", "completed": 4}


class Unanswered:
    """A target that never answers: each request waits until its client hangs up. It counts the
    requests that came and those given up, so a test sees when a fetcher abandons them."""

    def __init__(self) -> None:
        self.arrived = 0
        self.given_up = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.arrived += 1
        while (await receive())["type"] != "http.disconnect":
            pass
        self.given_up += 1


async def test_a_job_cancelled_through_another_process_stops_fetching_at_once(
    live_database: Database,
) -> None:
    """The process running the job hears of the cancellation on the bus and drops its fetches; its
    lease renewal (every 20 minutes here) would not notice for long, nor would the fetch timeout."""
    if live_database.engine.dialect.name != "postgresql":
        pytest.skip("the PostgreSQL bus")
    user = await make_user(live_database)
    auth = {"Authorization": f"Bearer {create_access_token(settings_for_tests(), user.id).token}"}
    first, second = free_port(), free_port()
    url = live_database.engine.url.render_as_string(hide_password=False)
    target = Unanswered()
    async with serving(target) as unanswered:
        with server_process(first, url), server_process(second, url):
            async with ready(first) as running, ready(second) as other:
                urls = [f"{unanswered}/{n}" for n in range(3)]
                started = await running.post("/api/v1/fetch-jobs", json={"urls": urls}, headers=auth)
                job_id = started.json()["id"]
                await until_true(
                    lambda: target.arrived == 3, within=5, what="the first process fetches every URL"
                )
                cancelled = await other.delete(f"/api/v1/fetch-jobs/{job_id}", headers=auth)
                assert cancelled.json()["status"] == "CANCELLED"
                await until_true(
                    lambda: target.given_up == 3, within=1, what="the first process abandons its fetches"
                )
                results = (await running.get(f"/api/v1/fetch-jobs/{job_id}/results", headers=auth)).json()
    assert [r["outcome"] for r in results["items"]] == ["CANCELLED"] * 3
