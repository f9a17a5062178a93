"""SIGTERM on a live ``switchboard serve``: it stops accepting, lets a request in flight finish,
closes its sockets with 1001, hands its running job back, and the next start finishes that job."""

import asyncio
import base64
import json
import os
import signal
import socket as stdlib_socket
import time
import uuid
from typing import Any

import httpx2
from sqlalchemy import select

from api.db.engine import Database
from api.db.models import FetchJob, JobStatus
from api.security import create_access_token
from api.serving import GRACE_SECONDS
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


def _frame(text: str) -> bytes:
    """A client's text frame (masked, as clients must mask)."""
    payload, mask = text.encode(), os.urandom(4)
    assert len(payload) < 2**16
    length = (
        bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0x80 | 126]) + len(payload).to_bytes(2)
    )
    return b"\x81" + length + mask + bytes(b ^ mask[n % 4] for n, b in enumerate(payload))


# A query whose answer is large (the schema's types and fields, ten times over, about 130 KB).
_SCHEMA = "__schema { types { name description fields { name description args { name } } } }"
_LARGE = "{ " + " ".join(f"s{n}: {_SCHEMA}" for n in range(10)) + " }"


async def _socket_that_stopped_reading(port: int) -> asyncio.StreamWriter:
    """A ``graphql-transport-ws`` socket that asks for far more than it reads (it reads nothing,
    into a small buffer), as a client on a network that went away leaves one: the server's
    transport has data left to send that will never be taken."""
    raw = stdlib_socket.socket()
    raw.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=raw)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
        ).encode()
    )
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    writer.write(_frame('{"type":"connection_init"}'))
    for n in range(60):  # about 8 MB, more than the kernel's buffers take
        writer.write(_frame(json.dumps({"type": "subscribe", "id": str(n), "payload": {"query": _LARGE}})))
    await asyncio.sleep(2)  # the server answers what it can, until its buffers are full
    return writer


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
                    silent = await _socket_that_stopped_reading(port)
                    process.send_signal(signal.SIGTERM)
                    assert await asyncio.wait_for(ws.closed_with(), 5) == 1001
                assert not in_flight.done()  # the shutdown has begun, and waits for it
                in_flight_page.open()
                answer = await in_flight
                finished = time.monotonic()
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
            # A peer that stopped reading is dropped, not waited for the whole grace period.
            assert time.monotonic() - finished < GRACE_SECONDS / 4
            silent.close()

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
