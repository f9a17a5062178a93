"""Fetching, measured: 100 URLs that each answer after 100 ms, at a job concurrency of 10.

The ideal is 1.0 s (ten waves of ten). Two figures per round:

- the fetcher alone (``Fetcher.fetch_all``), and
- a whole job through the app: ``POST /api/v1/fetch-jobs``, the runner fetching and writing each
  result in its own transaction, until the job is ``DONE`` (on SQLite in a temporary file, and on
  PostgreSQL too when ``SWITCHBOARD_BENCH_POSTGRES_URL`` is set).

The target server runs in a process of its own, so the CPU time reported is this process's alone:
the fetcher's (and the app's) cost per URL. Its 100 URLs are spread over 25 loopback addresses
(127.0.0.1 to 127.0.0.25), so the per-host limit (4) is not what bounds the run.
Usage: ``make bench`` (or ``python -m bench.fetch --rounds 5``).
"""

import argparse
import asyncio
import ipaddress
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx2

from api.app import create_app
from api.db.engine import Database
from api.db.models import Outcome
from api.fetcher import Fetcher, fetch_limits, outbound_client
from api.jobs import JobRunner
from api.security import create_access_token
from api.services import users
from api.services.commands import UserCreate
from api.settings import Settings
from api.ssrf import Guard
from bench.databases import fresh

URLS = 100
DELAY = 0.1
CONCURRENCY = 10
HOSTS = 25
IDEAL = URLS * DELAY / CONCURRENCY
SECRET = "bench-secret-key-that-is-long-enough-for-hs256"


@dataclass
class Figures:
    wall: list[float]
    cpu: list[float]

    def row(self, name: str) -> str:
        wall = statistics.median(self.wall)
        cpu_ms = statistics.median(self.cpu) * 1000 / URLS
        return f"| {name} | {wall:.3f} | {wall / IDEAL:.2f}x | {cpu_ms:.2f} |"


def start_targets() -> tuple[subprocess.Popen[bytes], int]:
    """The test suite's target server, in its own process, on one port of 25 loopback addresses."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "import socket, asyncio, uvicorn\n"
        "from tests.targets import app\n"
        f"socks = [socket.create_server(('127.0.0.{{}}'.format(n), {port})) for n in range(1, {HOSTS + 1})]\n"
        "server = uvicorn.Server(uvicorn.Config(app, log_level='warning', lifespan='off'))\n"
        "asyncio.run(server.serve(sockets=socks))\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code])  # noqa: S603 (our own code, our interpreter)
    for _ in range(200):
        try:
            with socket.create_connection((f"127.0.0.{HOSTS}", port), timeout=0.1):
                return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the target server did not start")


def urls(port: int) -> list[str]:
    return [f"http://127.0.0.{n % HOSTS + 1}:{port}/slow?s={DELAY}" for n in range(URLS)]


def settings_for(database_url: str) -> Settings:
    return Settings(
        _env_file=None,
        secret_key=SECRET,
        database_url=database_url,
        fetch_allow_networks=[ipaddress.ip_network("127.0.0.0/8")],
        fetch_concurrency=CONCURRENCY,
        rate_limit_fetch_per_user=10_000,
        log_level="WARNING",
    )


async def measured(work: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    await work()
    return time.perf_counter() - wall, time.process_time() - cpu


async def fetcher_alone(port: int, rounds: int) -> Figures:
    settings = settings_for("sqlite+aiosqlite:///:memory:")
    figures = Figures([], [])
    async with outbound_client(settings) as client:
        fetcher = Fetcher(client, Guard(allow=settings.fetch_allow_networks), fetch_limits(settings))

        async def run() -> None:
            results = await fetcher.fetch_all(urls(port), concurrency=CONCURRENCY)
            assert all(r.outcome is Outcome.OK for r in results), {r.outcome for r in results}

        await run()  # warm-up: connections, code paths
        for _ in range(rounds):
            wall, cpu = await measured(run)
            figures.wall.append(wall)
            figures.cpu.append(cpu)
    return figures


async def job_through_the_app(database_url: str, port: int, rounds: int) -> Figures:
    await fresh(database_url)

    settings = settings_for(database_url)
    app = create_app(settings)
    figures = Figures([], [])
    async with app.router.lifespan_context(app):
        database: Database = app.state.database
        async with database.session() as session:
            user = await users.create_user(
                session,
                data=UserCreate(email=f"bench-{uuid.uuid4().hex}@example.com", password="bench password"),
            )
        headers = {"Authorization": f"Bearer {create_access_token(settings, user.id).token}"}
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://bench") as client:
            runner: JobRunner = app.state.jobs

            async def run() -> None:
                response = await client.post("/api/v1/fetch-jobs", json={"urls": urls(port)}, headers=headers)
                job_id = uuid.UUID(response.json()["id"])
                await asyncio.sleep(0)  # the runner starts once the request's transaction commits
                await runner.wait(job_id)
                job = (await client.get(f"/api/v1/fetch-jobs/{job_id}", headers=headers)).json()
                assert (job["status"], job["completed"]) == ("DONE", URLS), job

            await run()
            for _ in range(rounds):
                wall, cpu = await measured(run)
                figures.wall.append(wall)
                figures.cpu.append(cpu)
    return figures


async def main(rounds: int) -> None:
    process, port = start_targets()
    try:
        print(f"{URLS} URLs x {DELAY * 1000:.0f} ms at concurrency {CONCURRENCY}; ideal {IDEAL:.1f} s;")
        print(f"medians of {rounds} rounds after a warm-up\n")
        print("| what | wall s | vs ideal | CPU ms per URL |")
        print("|---|---|---|---|")
        print((await fetcher_alone(port, rounds)).row("fetcher alone"), flush=True)
        with tempfile.TemporaryDirectory() as directory:
            sqlite = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
            print((await job_through_the_app(sqlite, port, rounds)).row("job via REST, SQLite"), flush=True)
        if postgres := os.environ.get("SWITCHBOARD_BENCH_POSTGRES_URL"):
            print((await job_through_the_app(postgres, port, rounds)).row("job via REST, PostgreSQL"))
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args().rounds))
