"""The read path, measured: a bare ASGI app, ``GET /api/v1/users?limit=50`` and the GraphQL query for
the same 50 users, on PostgreSQL with 10,000 users, one uvicorn worker each, 32 connections.

The three targets are measured in rounds, interleaved, so a noisy neighbour on this shared machine
hits them alike; the figures are medians over the rounds and the ratios come from the same run.
Usage: ``make bench`` (or ``python -m bench.reads --rounds 5 --seconds 10``).
"""

import argparse
import asyncio
import json
import os
import statistics
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx2
from sqlalchemy import insert, make_url, select, text

from api.db.engine import create_engine
from api.db.models import User
from api.db.types import uuid7
from api.security import create_access_token, hash_password
from api.settings import Settings
from bench.databases import fresh
from bench.servers import Load, Server, uvicorn, wrk

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/switchboard_bench"
USERS = 10_000
SECRET = "bench-secret-key-that-is-long-enough-for-hs256"
GRAPHQL_QUERY = "{ users(first: 50) { edges { node { id email displayName createdAt } } } }"


async def prepare(url: str) -> Settings:
    """A fresh database with the schema from alembic and 10,000 users, the first an admin."""
    await fresh(url)
    engine = create_engine(url)
    password_hash = await hash_password("bench password")
    start = datetime.now(UTC) - timedelta(days=1)
    rows = [
        {
            "id": uuid7(),
            "email": f"user{n:05d}@example.com",
            "display_name": f"User {n}",
            "password_hash": password_hash,
            "is_active": True,
            "is_admin": n == 0,
            "created_at": start + timedelta(seconds=n),
            "updated_at": start + timedelta(seconds=n),
        }
        for n in range(USERS)
    ]
    async with engine.begin() as connection:
        await connection.execute(insert(User), rows)
        await connection.execute(text("ANALYZE users"))
    await engine.dispose()
    return Settings(
        _env_file=None, database_url=url, secret_key=SECRET, access_token_ttl=3600, environment="production"
    )


@dataclass
class Target:
    name: str
    server: Server
    path: str
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    loads: list[Load] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    def check(self) -> None:
        """One request before measuring, so the figures are of correct answers."""
        url = self.server.url + self.path
        if self.body is None:
            response = httpx2.get(url, headers=self.headers)
        else:
            response = httpx2.post(url, content=self.body, headers=self.headers)
        response.raise_for_status()
        data = response.json()
        users = data["items"] if "items" in data else (data.get("data") or {}).get("users", {}).get("edges")
        if self.path != "/" and (users is None or len(users) != 50):
            raise SystemExit(f"bench: {self.name} answered wrongly: {response.text[:300]}")

    def run(self, seconds: int, connections: int) -> None:
        before = self.server.cpu_seconds()
        load = wrk(
            self.server.url + self.path,
            seconds=seconds,
            connections=connections,
            body=self.body,
            headers=self.headers,
        )
        if load.errors:
            raise SystemExit(f"bench: {self.name} had {load.errors} failed requests")
        self.loads.append(load)
        self.cpu_ms.append((self.server.cpu_seconds() - before) * 1000 / load.requests)

    def median(self, attribute: str) -> float:
        return float(statistics.median(getattr(load, attribute) for load in self.loads))


def report(targets: list[Target], rounds: int, seconds: int, connections: int) -> None:
    bare, rest, graphql = targets
    print(
        f"\nread path: {rounds} interleaved rounds of {seconds} s, {connections} connections, 1 worker each"
    )
    print(f"{'target':<34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11}")
    for t in targets:
        rps, p50, p99, cpu = (
            t.median("rps"),
            t.median("p50_ms"),
            t.median("p99_ms"),
            statistics.median(t.cpu_ms),
        )
        print(f"{t.name:<34} {rps:>8.0f} {p50:>8.2f} {p99:>8.2f} {cpu:>11.3f}")

    def ratio(a: Target, b: Target) -> str:
        rps = a.median("rps") / b.median("rps")
        cpu = statistics.median(a.cpu_ms) / statistics.median(b.cpu_ms)
        return f"throughput {rps:.2f}x, CPU per request {cpu:.2f}x"

    print(f"\nGraphQL / REST: {ratio(graphql, rest)}")
    print(f"REST / bare:    {ratio(rest, bare)}")
    print(f"GraphQL / bare: {ratio(graphql, bare)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    url = os.environ.get("SWITCHBOARD_BENCH_POSTGRES_URL", DEFAULT_URL)
    print(f"bench: seeding {USERS:,} users into {make_url(url).render_as_string(hide_password=True)}")
    settings = asyncio.run(prepare(url))
    admin_token = create_access_token(settings, asyncio.run(_admin_id(url))).token
    auth = {"Authorization": f"Bearer {admin_token}"}
    env = {
        "SWITCHBOARD_DATABASE_URL": url,
        "SWITCHBOARD_SECRET_KEY": SECRET,
        "SWITCHBOARD_ENVIRONMENT": "production",
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
    }
    with uvicorn("bench.bare:app") as bare, uvicorn("api.app:create_app", factory=True, env=env) as app:
        targets = [
            Target("bare ASGI (fixed JSON)", bare, "/"),
            Target("REST GET /api/v1/users?limit=50", app, "/api/v1/users?limit=50", headers=auth),
            Target(
                "GraphQL users(first: 50)",
                app,
                "/graphql",
                body=json.dumps({"query": GRAPHQL_QUERY}),
                headers={**auth, "Content-Type": "application/json"},
            ),
        ]
        for target in targets:
            target.check()
            target.run(1, args.connections)  # warm-up, not counted
            target.loads.clear()
            target.cpu_ms.clear()
        for round_number in range(args.rounds):
            shift = round_number % len(targets)
            for target in targets[shift:] + targets[:shift]:
                target.run(args.seconds, args.connections)
    report(targets, args.rounds, args.seconds, args.connections)


async def _admin_id(url: str) -> uuid.UUID:
    engine = create_engine(url)
    async with engine.connect() as connection:
        admin_id = await connection.scalar(select(User.id).where(User.is_admin))
    await engine.dispose()
    assert admin_id is not None
    return admin_id


if __name__ == "__main__":
    main()
