"""``switchboard serve`` in processes of their own, for the tests that need a whole server: several
workers sharing a database, a shutdown by signal."""

import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import IO

import httpx2

from tests.conftest import TEST_SECRET
from tests.waiting import until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server_process(
    port: int,
    database_url: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    stderr: IO[bytes] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """The server on ``port`` and ``database_url``, stopped (SIGTERM) when the block ends if the test
    did not stop it itself. ``args`` go to ``switchboard serve``, ``env`` over the test's settings."""
    environment = os.environ | {
        "SWITCHBOARD_DATABASE_URL": database_url,
        "SWITCHBOARD_SECRET_KEY": TEST_SECRET,
        "SWITCHBOARD_FETCH_ALLOW_NETWORKS": '["127.0.0.0/8"]',
        "SWITCHBOARD_FETCH_JOB_LEASE": "3600",
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    command = [
        os.path.join(os.path.dirname(sys.executable), "switchboard"),
        "serve",
        "--port",
        str(port),
        *args,
    ]
    process = subprocess.Popen(command, env=environment, stderr=stderr)  # noqa: S603 (our own command, fixed arguments)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


@asynccontextmanager
async def ready(port: int) -> AsyncIterator[httpx2.AsyncClient]:
    """A client of the server on ``port``, once it answers ``/readyz``."""
    async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

        async def answers() -> bool:
            try:
                return (await client.get("/readyz")).status_code == 200
            except httpx2.TransportError:
                return False

        await until(answers, within=10, what=f"the server on port {port} to become ready")
        yield client
