"""``examples/client.py`` as a reader runs it: a subprocess against a live ``switchboard serve``, fetching
pages of the local target server, its output checked line by line."""

import asyncio
import os
import sys
from pathlib import Path

import pytest

from api.db.engine import Database
from tests.processes import free_port, ready, server_process

CLIENT = Path(__file__).parent.parent.parent / "examples" / "client.py"
PASSWORD = "correct horse battery"


async def run_client(port: int, email: str, password: str, *urls: str) -> tuple[int, list[str], str]:
    """The client's exit status, its output lines and its error output."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    client = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CLIENT),
        "--url",
        f"http://127.0.0.1:{port}",
        "--email",
        email,
        *urls,
        env=environment | {"SWITCHBOARD_PASSWORD": password},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(client.communicate(), 30)
    assert client.returncode is not None
    return client.returncode, out.decode().splitlines(), err.decode()


async def test_the_client_registers_starts_a_job_and_prints_each_event_until_it_ends(
    live_database: Database, targets: str
) -> None:
    """On SQLite only: this checks the example client and its output; what the server does on each
    database the service tests check on both."""
    if live_database.engine.dialect.name != "sqlite":
        pytest.skip("the client is the same on either database")
    urls = [f"{targets}/ok", f"{targets}/status/404", "http://169.254.169.254/latest/meta-data/"]
    port = free_port()
    with server_process(port, live_database.engine.url.render_as_string(hide_password=False)):
        async with ready(port):
            first = await run_client(port, "grace@example.com", PASSWORD, *urls)
            again = await run_client(port, "grace@example.com", PASSWORD, f"{targets}/ok")
            refused = await run_client(port, "grace@example.com", "not the right password", f"{targets}/ok")

    status, lines, err = first
    assert status == 0, err
    signed_in, started, *events = lines
    assert signed_in.startswith("signed in as grace@example.com (VXNlcj")
    assert started.startswith("started job RmV0Y2hKb2I6")
    assert started.endswith("(3 URLs): PENDING")
    assert events[-1] == "DONE 3/3"  # the last event announces the end; then the subscription completes
    results = {line.split("  ", 1)[1] for line in events if "  #" in line}
    assert results == {
        f"#0 OK 200 {targets}/ok",
        f"#1 HTTP_ERROR 404 {targets}/status/404 (The server answered 404.)",
        "#2 BLOCKED - http://169.254.169.254/latest/meta-data/ (169.254.169.254 is, or resolves to, "
        "a non-public address (169.254.169.254).)",
    }

    status, lines, err = again  # the account exists now: it signs in rather than registers
    assert status == 0, err
    assert lines[0].startswith("signed in as grace@example.com (")
    # The job ends with its own event, or was over by the time the subscription read it: then its
    # one result, read with fetchJob, is printed with that first (and last) state.
    assert lines[-1] in ("DONE 1/1", f"DONE 1/1  #0 OK 200 {targets}/ok"), lines

    status, lines, err = refused
    assert (status, lines) == (1, [])
    assert err.strip() == "client: UNAUTHENTICATED: Invalid email or password"
