"""Two server processes sharing one PostgreSQL: events cross between them through LISTEN/NOTIFY."""

import asyncio

import pytest

from api.db.engine import Database
from api.security import create_access_token
from tests.conftest import POSTGRES_URL, settings_for_tests
from tests.factories import make_user
from tests.processes import free_port, ready, server_process
from tests.sockets import socket as graphql_socket

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
