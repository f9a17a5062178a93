"""Live updates, measured: one account change reaching 1,000 subscribers of ``userEvents``.

Each subscriber is a WebSocket (``graphql-transport-ws``) signed in with a sign-in session of its
own, like 1,000 open tabs of administrators: the server re-checks each of them on each event. An event
is one change (``PATCH /api/v1/users/me`` by another account), and its latency for a subscriber runs
from sending that request to receiving the event. Rows:

- one worker, SQLite: the in-process bus;
- one worker, PostgreSQL: the event goes through NOTIFY, to its own process too;
- two workers, PostgreSQL: the subscribers on one, the change made through the other. Its difference
  from the row above is what crossing between workers adds.

The rows take turns event by event, so a noisy neighbour hits them alike. The subscribers live in
this process, the servers in processes of their own (``switchboard serve``, one worker each).
Usage: ``make bench`` (or ``python -m bench.live --events 20 --subscribers 1000``).
"""

import argparse
import asyncio
import json
import os
import resource
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
from sqlalchemy import make_url
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from api.db.engine import Database
from api.services import sessions, users
from api.services.commands import UserCreate, build
from api.settings import Settings
from bench.databases import fresh
from bench.servers import Server, switchboard

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/switchboard_bench"
SECRET = "bench-secret-key-that-is-long-enough-for-hs256"
SUBSCRIPTION = "subscription { userEvents { kind user { id displayName } } }"
CONNECTING_AT_ONCE = 50


@dataclass
class Accounts:
    """The signed-in subscribers (an access token each, of its own session) and the account whose
    changes are the events."""

    subscriber_tokens: list[str]
    changer_token: str


def account(email: str) -> UserCreate:
    return build(UserCreate, {"email": email, "password": "bench password"})


async def seed(url: str, subscribers: int) -> Accounts:
    await fresh(url)
    settings = Settings(_env_file=None, database_url=url, secret_key=SECRET, access_token_ttl=3600)
    database = Database.from_url(url)
    try:
        async with database.session() as session:
            admin = await users.create_user(session, data=account("admin@example.com"), is_admin=True)
            changer = await users.create_user(session, data=account("changer@example.com"))
            tokens = [
                (await sessions.start(session, settings=settings, user=admin)).access.token
                for _ in range(subscribers)
            ]
            changer_token = (await sessions.start(session, settings=settings, user=changer)).access.token
    finally:
        await database.dispose()
    return Accounts(tokens, changer_token)


def server_env(url: str) -> dict[str, str]:
    return {
        "SWITCHBOARD_DATABASE_URL": url,
        "SWITCHBOARD_SECRET_KEY": SECRET,
        "SWITCHBOARD_ENVIRONMENT": "production",
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
        # No server pings during the run: the figures are of events alone.
        "SWITCHBOARD_WS_PING_INTERVAL": "3600",
    }


class Subscribers:
    """Sockets subscribed to ``userEvents`` on one server, noting when each event reaches each."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.count = 0
        self._readers: list[asyncio.Task[None]] = []
        self._complete: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    async def open(self, stack: AsyncExitStack, tokens: list[str]) -> None:
        gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
        url = self.server.url.replace("http://", "ws://") + "/graphql"

        async def one(token: str) -> ClientConnection:
            async with gate:
                ws = await stack.enter_async_context(
                    connect(url, subprotocols=["graphql-transport-ws"], open_timeout=30)  # type: ignore[list-item]
                )
                await ws.send(json.dumps({"type": "connection_init", "payload": {"authToken": token}}))
                ack = json.loads(await ws.recv())
                if ack["type"] != "connection_ack":
                    raise SystemExit(f"bench: a subscriber was refused: {ack}")
                await ws.send(
                    json.dumps({"type": "subscribe", "id": "1", "payload": {"query": SUBSCRIPTION}})
                )
                return ws

        sockets = await asyncio.gather(*(one(token) for token in tokens))
        self.count = len(sockets)
        self._readers = [asyncio.create_task(self._read(ws)) for ws in sockets]
        stack.push_async_callback(self._stop)

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                arrived = time.perf_counter()
                message = json.loads(raw)
                if message["type"] != "next" or "errors" in message["payload"]:
                    raise SystemExit(f"bench: a subscriber got {message}")
                name = message["payload"]["data"]["userEvents"]["user"]["displayName"]
                self.arrivals[name].append(arrived)
                if len(self.arrivals[name]) == self.count:
                    self._complete[name].set()
        except ConnectionClosed:
            return

    async def _stop(self) -> None:
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)

    async def delivered(self, name: str, within: float) -> bool:
        """Whether event ``name`` reached every subscriber within ``within`` seconds."""
        try:
            await asyncio.wait_for(self._complete[name].wait(), within)
        except TimeoutError:
            return False
        return True


@dataclass
class Row:
    name: str
    subscribers: Subscribers
    changer: httpx2.AsyncClient  # the server the change is made through, signed in as the changer
    latencies_ms: list[float] = field(default_factory=list)
    per_event_p99_ms: list[float] = field(default_factory=list)
    request_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    events: int = 0

    async def event(self, name: str) -> bool:
        """Make one change and wait for it to reach every subscriber; ``False`` if it did not."""
        before = self.subscribers.server.cpu_seconds()
        sent = time.perf_counter()
        response = await self.changer.patch("/api/v1/users/me", json={"display_name": name})
        answered = time.perf_counter()
        response.raise_for_status()
        if not await self.subscribers.delivered(name, within=30):
            return False
        self.events += 1
        latencies = [(arrived - sent) * 1000 for arrived in self.subscribers.arrivals.pop(name)]
        self.latencies_ms += latencies
        self.per_event_p99_ms.append(percentile(latencies, 99))
        self.request_ms.append((answered - sent) * 1000)
        self.cpu_ms.append((self.subscribers.server.cpu_seconds() - before) * 1000)
        return True

    async def warm_up(self, prefix: str) -> None:
        """Events until one reaches every subscriber: then every subscription is in place."""
        for n in range(20):
            if await self._try(f"{prefix}-{n}"):
                break
        else:
            raise SystemExit(f"bench: {self.name}: no event reached all subscribers")
        self.subscribers.arrivals.clear()
        self.latencies_ms.clear()
        self.per_event_p99_ms.clear()
        self.request_ms.clear()
        self.cpu_ms.clear()
        self.events = 0

    async def _try(self, name: str) -> bool:
        await self.changer.patch("/api/v1/users/me", json={"display_name": name})
        return await self.subscribers.delivered(name, within=2)


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def report(rows: list[Row], subscribers: int) -> None:
    print(f"\none change reaching {subscribers:,} userEvents subscribers ({rows[0].events} events a row)")
    print(
        "| row | p50 ms | p99 ms | median per-event p99 ms | request ms | subscribers' server CPU ms/event |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row.name} | {percentile(row.latencies_ms, 50):.1f} | {percentile(row.latencies_ms, 99):.1f} "
            f"| {statistics.median(row.per_event_p99_ms):.1f} | {statistics.median(row.request_ms):.1f} "
            f"| {statistics.median(row.cpu_ms):.1f} |"
        )
    local, crossing = rows[1], rows[2]
    for p in (50, 99):
        added = percentile(crossing.latencies_ms, p) - percentile(local.latencies_ms, p)
        print(f"crossing workers through PostgreSQL adds {added:+.1f} ms at p{p}")


@contextmanager
def servers(*urls: str) -> Iterator[list[Server]]:
    """A server on each of ``urls``."""
    with ExitStack() as stack:
        yield [stack.enter_context(switchboard(server_env(url))) for url in urls]


async def run(events: int, subscribers: int, sqlite_url: str, postgres_url: str) -> list[Row]:
    on_sqlite, on_postgres = await seed(sqlite_url, subscribers), await seed(postgres_url, subscribers)
    with servers(sqlite_url, postgres_url, postgres_url) as (sqlite, postgres, other_postgres):
        async with AsyncExitStack() as stack:

            async def changer(server: Server, accounts: Accounts) -> httpx2.AsyncClient:
                headers = {"Authorization": f"Bearer {accounts.changer_token}"}
                client = httpx2.AsyncClient(base_url=server.url, headers=headers, timeout=30)
                return await stack.enter_async_context(client)

            print(f"bench: opening {subscribers:,} subscriptions on each database", flush=True)
            sqlite_subscribers, postgres_subscribers = Subscribers(sqlite), Subscribers(postgres)
            await sqlite_subscribers.open(stack, on_sqlite.subscriber_tokens)
            await postgres_subscribers.open(stack, on_postgres.subscriber_tokens)
            rows = [
                Row("one worker, SQLite", sqlite_subscribers, await changer(sqlite, on_sqlite)),
                Row("one worker, PostgreSQL", postgres_subscribers, await changer(postgres, on_postgres)),
                Row(
                    "two workers, PostgreSQL (change on the other)",
                    postgres_subscribers,
                    await changer(other_postgres, on_postgres),
                ),
            ]
            for index, row in enumerate(rows):
                await row.warm_up(f"warm-{index}")
            for n in range(events):
                for index in range(len(rows)):
                    row = rows[(index + n) % len(rows)]
                    if not await row.event(f"event-{n}-{index}"):
                        raise SystemExit(f"bench: {row.name}: an event did not reach every subscriber")
                    await asyncio.sleep(0.05)  # let the sockets settle between events
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20, help="measured events per row")
    parser.add_argument("--subscribers", type=int, default=1000)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket each, here and in the servers
    if hard < 3 * args.subscribers + 100:
        raise SystemExit(f"bench: {args.subscribers} subscribers need more open files than {hard}")
    postgres_url = os.environ.get("SWITCHBOARD_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    print(f"bench: PostgreSQL at {make_url(postgres_url).render_as_string(hide_password=True)}")
    with tempfile.TemporaryDirectory() as directory:
        sqlite_url = f"sqlite+aiosqlite:///{Path(directory) / 'live.db'}"
        rows = asyncio.run(run(args.events, args.subscribers, sqlite_url, postgres_url))
    report(rows, args.subscribers)


if __name__ == "__main__":
    main()
