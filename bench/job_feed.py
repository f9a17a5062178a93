"""Live updates, measured: 1,000 subscribers of one running job that produces 10 results a second.

Each subscriber is a WebSocket (``graphql-transport-ws``) signed in with a sign-in session of its own
(one account, as 1,000 open tabs of its owner would be), subscribed to ``fetchJobEvents`` of one job.
The job fetches URLs of a target server in a process of its own, each answering after 100 ms, at a
job concurrency of 1: a steady 10 results a second. Its first URL is held open until every
subscriber has received the job's first state, so the measured events all reach all of them.

A result's latency for a subscriber runs from the result's ``fetchedAt`` (the fetcher's clock: the
same host's) to receiving its event; it includes writing the result. The report gives p50 and p99
over every delivery and the worst per-event p99, the server's CPU time per result event (from
``/proc``; the job's own fetching and writing included), and its RSS before the sockets open, while
they follow the job, and after they close.

Usage: ``make bench`` (or ``python -m bench.job_feed --subscribers 1000 --results 100``).
"""

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx2
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from api.db.engine import Database
from api.services import sessions, users
from api.settings import Settings
from bench.databases import fresh
from bench.live import CONNECTING_AT_ONCE, SECRET, account, percentile, server_env
from bench.servers import ROOT, Server, free_port, switchboard

SUBSCRIPTION = """subscription ($id: ID!) {
  fetchJobEvents(id: $id) { job { status completed total } result { position outcome fetchedAt } }
}"""
DELAY = 0.1  # seconds per URL: at a concurrency of 1, ten results a second

# The target: /slow answers after ?s= seconds; /gate holds until /open is asked for.
TARGET = """
import asyncio, sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
gate = asyncio.Event()
async def slow(request):
    await asyncio.sleep(float(request.query_params["s"]))
    return PlainTextResponse("slow")
async def held(request):
    await gate.wait()
    return PlainTextResponse("open")
async def opened(request):
    gate.set()
    return PlainTextResponse("opened")
app = Starlette(routes=[Route("/slow", slow), Route("/gate", held), Route("/open", opened)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="off")
"""


@dataclass
class Followers:
    """The sockets following the job, noting when each result reaches each."""

    count: int = 0
    started: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    first_states: int = 0
    arrivals: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    fetched_at: dict[int, float] = field(default_factory=dict)
    states: int = 0  # job-state-only events received, over every socket
    completed: int = 0
    sockets: list[ClientConnection] = field(default_factory=list)

    async def read(self, ws: ClientConnection) -> None:
        first = True
        try:
            async for raw in ws:
                arrived = time.time()
                message = json.loads(raw)
                if message["type"] == "complete":
                    self.completed += 1
                    if self.completed == self.count:
                        self.ended.set()
                    continue
                if message["type"] != "next" or "errors" in message["payload"]:
                    raise SystemExit(f"bench: a subscriber got {message}")
                event = message["payload"]["data"]["fetchJobEvents"]
                if first:
                    first = False
                    self.first_states += 1
                    if self.first_states == self.count:
                        self.started.set()
                    continue
                result = event["result"]
                if result is None:
                    self.states += 1
                    continue
                position = result["position"]
                self.arrivals[position].append(arrived)
                self.fetched_at[position] = datetime.fromisoformat(result["fetchedAt"]).timestamp()
        except ConnectionClosed:
            return


def rss_mb(server: Server) -> float:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def seed(url: str, subscribers: int) -> tuple[list[str], str]:
    """Tokens of ``subscribers`` sign-in sessions of one account, and one more for starting the job."""
    await fresh(url)
    settings = Settings(_env_file=None, database_url=url, secret_key=SECRET, access_token_ttl=3600)
    database = Database.from_url(url)
    try:
        async with database.session() as session:
            owner = await users.create_user(session, data=account("owner@example.com"))
            tokens = [
                (await sessions.start(session, settings=settings, user=owner)).access.token
                for _ in range(subscribers + 1)
            ]
    finally:
        await database.dispose()
    return tokens[:-1], tokens[-1]


async def subscribe(url: str, token: str, job: str) -> ClientConnection:
    ws = await connect(url, subprotocols=["graphql-transport-ws"], open_timeout=30)  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init", "payload": {"authToken": token}}))
    ack = json.loads(await ws.recv())
    if ack["type"] != "connection_ack":
        raise SystemExit(f"bench: a subscriber was refused: {ack}")
    payload = {"query": SUBSCRIPTION, "variables": {"id": job}}
    await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": payload}))
    return ws


@dataclass
class Figures:
    subscribers: int
    results: int
    latencies_ms: list[float]
    per_event_p99_ms: list[float]
    cpu_ms_per_event: float
    rss_mb: tuple[float, float, float]
    states: int

    def report(self) -> None:
        before, during, after = self.rss_mb
        print(
            f"\n{self.subscribers:,} fetchJobEvents subscribers of one job, {self.results} results "
            f"at {1 / DELAY:.0f} a second"
        )
        print(
            "| p50 ms | p99 ms | worst per-event p99 ms | server CPU ms/event | RSS MB before/during/after |"
        )
        print("|---|---|---|---|---|")
        print(
            f"| {percentile(self.latencies_ms, 50):.1f} | {percentile(self.latencies_ms, 99):.1f} "
            f"| {max(self.per_event_p99_ms):.1f} | {self.cpu_ms_per_event:.1f} "
            f"| {before:.0f} / {during:.0f} / {after:.0f} |"
        )
        print(f"job-state-only events received (over every socket): {self.states}")


async def run(subscribers: int, results: int, url: str) -> Figures:
    tokens, starter = await seed(url, subscribers)
    target_port = free_port()
    target = subprocess.Popen([sys.executable, "-c", TARGET, str(target_port)], cwd=ROOT)  # noqa: S603, ASYNC220 (started once, before any load)
    env = server_env(url) | {
        "SWITCHBOARD_FETCH_ALLOW_NETWORKS": '["127.0.0.0/8"]',
        "SWITCHBOARD_FETCH_CONCURRENCY": "1",
        "SWITCHBOARD_FETCH_TOTAL_TIMEOUT": "600",  # the held first URL waits for every subscriber
        "SWITCHBOARD_FETCH_MAX_URLS": str(results + 1),
    }
    base = f"http://127.0.0.1:{target_port}"
    try:
        with switchboard(env) as server:
            async with AsyncExitStack() as stack:
                client = await stack.enter_async_context(
                    httpx2.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {starter}"})
                )
                urls = [f"{base}/gate"] + [f"{base}/slow?s={DELAY}&n={n}" for n in range(results)]
                started = await client.post("/api/v1/fetch-jobs", json={"urls": urls})
                started.raise_for_status()
                job = started.json()["node_id"]
                rss_before = rss_mb(server)
                followers = Followers(count=subscribers)
                gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
                ws_url = server.url.replace("http://", "ws://") + "/graphql"

                async def one(token: str) -> ClientConnection:
                    async with gate:
                        return await subscribe(ws_url, token, job)

                print(f"bench: opening {subscribers:,} subscriptions", flush=True)
                followers.sockets = list(await asyncio.gather(*(one(token) for token in tokens)))
                readers = [asyncio.create_task(followers.read(ws)) for ws in followers.sockets]
                await asyncio.wait_for(followers.started.wait(), 60)
                cpu_before = server.cpu_seconds()
                profiler = None
                if profile := os.environ.get("BENCH_PROFILE"):
                    profiler = subprocess.Popen(  # noqa: S603, ASYNC220 (py-spy on the server, on request)
                        [
                            str(Path(sys.executable).parent / "py-spy"),
                            "record",
                            "--nonblocking",
                            "-r",
                            "200",
                            "-f",
                            "raw",
                            "-o",
                            profile,
                            "-p",
                            str(server.process.pid),
                        ]
                    )
                    await asyncio.sleep(1)
                async with httpx2.AsyncClient() as opener:
                    (await opener.get(f"{base}/open")).raise_for_status()
                with suppress(TimeoutError):
                    await asyncio.wait_for(followers.ended.wait(), results * DELAY * 10 + 30)
                cpu = server.cpu_seconds() - cpu_before
                if profiler is not None:
                    profiler.send_signal(2)
                    profiler.wait()
                rss_during = rss_mb(server)
                if followers.completed < subscribers:
                    raise SystemExit(f"bench: only {followers.completed} streams completed")
                for ws in followers.sockets:
                    await ws.close()
                await asyncio.gather(*readers, return_exceptions=True)
                await asyncio.sleep(2)  # the server lets go of what the sockets held
                rss_after = rss_mb(server)
    finally:
        target.terminate()
        target.wait(timeout=10)
    latencies: list[float] = []
    per_event: list[float] = []
    for position, arrived in sorted(followers.arrivals.items()):
        if position == 0:
            continue  # the gate's result: fetched long before it was let go
        if len(arrived) != subscribers:
            counts = {p: len(a) for p, a in sorted(followers.arrivals.items())}
            raise SystemExit(f"bench: result {position} reached {len(arrived)} subscribers: {counts}")
        these = [(at - followers.fetched_at[position]) * 1000 for at in arrived]
        latencies += these
        per_event.append(percentile(these, 99))
    events = len(followers.arrivals) + 1  # the results and the final state
    return Figures(
        subscribers,
        len(per_event),
        latencies,
        per_event,
        cpu * 1000 / events,
        (rss_before, rss_during, rss_after),
        followers.states,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--results", type=int, default=100, help="results of the job after the first")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 3 * args.subscribers + 100:
        raise SystemExit(f"bench: {args.subscribers} subscribers need more open files than {hard}")
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'job_feed.db'}"
        figures = asyncio.run(run(args.subscribers, args.results, url))
    figures.report()


if __name__ == "__main__":
    main()
