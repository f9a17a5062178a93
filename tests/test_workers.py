"""Two server processes sharing one PostgreSQL: events cross between them through LISTEN/NOTIFY."""

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx2
import pytest

from api.db.engine import Database
from api.security import create_access_token
from tests.conftest import POSTGRES_URL, TEST_SECRET, settings_for_tests
from tests.factories import make_user
from tests.sockets import socket as graphql_socket

pytestmark = pytest.mark.skipif(POSTGRES_URL is None, reason="needs SWITCHBOARD_TEST_POSTGRES_URL")

JOB_EVENTS = """subscription ($id: ID!) { fetchJobEvents(id: $id) {
  job { status completed } result { position outcome } } }"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server_process(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``switchboard serve`` in a process of its own, on the test database."""
    env = os.environ | {
        "SWITCHBOARD_DATABASE_URL": POSTGRES_URL or "",
        "SWITCHBOARD_SECRET_KEY": TEST_SECRET,
        "SWITCHBOARD_FETCH_ALLOW_NETWORKS": '["127.0.0.0/8"]',
        "SWITCHBOARD_FETCH_JOB_LEASE": "3600",
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
    }
    command = [os.path.join(os.path.dirname(sys.executable), "switchboard"), "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env)  # noqa: S603 (our own command, fixed arguments)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


@asynccontextmanager
async def ready(port: int) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for _ in range(200):
            try:
                if (await client.get("/readyz")).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"the server on port {port} did not become ready")
        yield client


async def test_a_subscriber_on_one_process_sees_every_event_of_a_job_started_on_another(
    live_database: Database, targets: str
) -> None:
    if live_database.engine.dialect.name != "postgresql":
        pytest.skip("the PostgreSQL bus")
    user = await make_user(live_database)
    token = create_access_token(settings_for_tests(), user.id).token
    first, second = free_port(), free_port()
    with server_process(first), server_process(second):
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
