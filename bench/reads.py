"""The read path, measured beside its anchors: a bare ASGI app, our REST and GraphQL, and PostGraphile 4,
on the same PostgreSQL data (10,000 users, 3 jobs each, 5 results a job), at 1 and 2 workers each.

Two documents (DESIGN §12): users50, the first 50 users (id, email); nested20, the first 20 users,
their jobs (id) and each job's results (url, status code), as an administrator. REST answers users50
as ``GET /api/v1/users?limit=50``. The targets are measured in rounds, interleaved, so a noisy
neighbour on this shared machine hits them alike; the figures are medians over the rounds, and the
ratios come from the same run. Usage: ``make bench`` (or ``python -m bench.reads --rounds 3``).
"""

import argparse
import asyncio
import json
import os
import statistics
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from sqlalchemy import event, insert, make_url, select, text

from api.app import create_app
from api.db.engine import create_engine
from api.db.models import FetchJob, FetchResult, JobStatus, Outcome, User
from api.db.types import uuid7
from api.security import create_access_token, hash_password
from api.settings import Settings
from bench.databases import fresh
from bench.servers import Load, Server, database_cpu_seconds, postgraphile, uvicorn, wrk

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/switchboard_bench"
USERS, JOBS_EACH, RESULTS_EACH = 10_000, 3, 5
SECRET = "bench-secret-key-that-is-long-enough-for-hs256"

OURS = {
    "users50": "{ users(first: 50) { edges { node { id email } } } }",
    "nested20": "{ users(first: 20) { edges { node { id fetchJobs(first: 3) { edges { node { id "
    "results { url statusCode } } } } } } } }",
}
THEIRS = {
    "users50": "{ allUsers(first: 50, orderBy: ID_ASC) { nodes { id email } } }",
    "nested20": "{ allUsers(first: 20, orderBy: ID_ASC) { nodes { id fetchJobsByOwnerId(first: 3, "
    "orderBy: ID_ASC) { nodes { id fetchResultsByJobId(orderBy: POSITION_ASC) { nodes { url statusCode } "
    "} } } } } }",
}


def _ours_count(data: dict[str, Any]) -> tuple[int, int]:
    """(users, results) in one of our answers."""
    users = [edge["node"] for edge in data["data"]["users"]["edges"]]
    jobs = [edge["node"] for user in users for edge in user.get("fetchJobs", {"edges": []})["edges"]]
    return len(users), sum(len(job["results"]) for job in jobs)


def _their_count(data: dict[str, Any]) -> tuple[int, int]:
    """(users, results) in one of PostGraphile's answers."""
    users = data["data"]["allUsers"]["nodes"]
    jobs = [job for user in users for job in user.get("fetchJobsByOwnerId", {"nodes": []})["nodes"]]
    return len(users), sum(len(job["fetchResultsByJobId"]["nodes"]) for job in jobs)


def _rest_count(data: dict[str, Any]) -> tuple[int, int]:
    return len(data["items"]), 0


TIMES_COUNTED = 10
EXPECTED = {"users50": (50, 0), "nested20": (20, 20 * JOBS_EACH * RESULTS_EACH)}


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
    jobs, results = [], []
    for n, user in enumerate(rows):
        for j in range(JOBS_EACH):
            at = start + timedelta(seconds=n, milliseconds=j)
            job = {
                "id": uuid7(),
                "owner_id": user["id"],
                "status": JobStatus.DONE,
                "urls": [],
                "total": RESULTS_EACH,
            }
            jobs.append(
                job | {"completed": RESULTS_EACH, "created_at": at, "started_at": at, "finished_at": at}
            )
            for position in range(RESULTS_EACH):
                address = f"https://example.com/{n}/{j}/{position}"
                results.append(
                    {"job_id": job["id"], "position": position, "url": address, "outcome": Outcome.OK}
                    | {"status_code": 200, "fetched_at": at, "sequence": position + 1}
                )
    async with engine.begin() as connection:
        await connection.execute(insert(User), rows)
        await connection.execute(insert(FetchJob), jobs)
        for chunk in range(0, len(results), 10_000):
            await connection.execute(insert(FetchResult), results[chunk : chunk + 10_000])
        await connection.execute(text("ANALYZE"))
    await engine.dispose()
    return Settings(
        _env_file=None,
        database_url=url,
        secret_key=SECRET,
        access_token_ttl=3600,
        environment="production",
        log_level="WARNING",
    )


@dataclass
class Target:
    name: str
    document: str  # users50, nested20 or bare
    server: Server
    path: str
    counted: Callable[[dict[str, Any]], tuple[int, int]] | None = None
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    loads: list[Load] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    database_ms: list[float] = field(default_factory=list)  # PostgreSQL's CPU per request
    statements: float | None = None  # SQL statements a request sends (``count_statements``), ours only

    def check(self) -> None:
        """One request before measuring, so the figures are of correct answers."""
        url = self.server.url + self.path
        if self.body is None:
            response = httpx2.get(url, headers=self.headers)
        else:
            response = httpx2.post(url, content=self.body, headers=self.headers)
        response.raise_for_status()
        if self.counted is not None and self.counted(response.json()) != EXPECTED[self.document]:
            raise SystemExit(f"bench: {self.name} answered wrongly: {response.text[:300]}")

    def run(self, seconds: int, connections: int) -> None:
        before, database_before = self.server.cpu_seconds(), database_cpu_seconds()
        load = wrk(
            self.server.url + self.path,
            seconds=seconds,
            connections=connections,
            body=self.body,
            headers=self.headers,
        )
        self.loads.append(load)
        self.cpu_ms.append((self.server.cpu_seconds() - before) * 1000 / load.requests)
        self.database_ms.append((database_cpu_seconds() - database_before) * 1000 / load.requests)

    def median(self, attribute: str) -> float:
        return float(statistics.median(getattr(load, attribute) for load in self.loads))

    @property
    def cpu(self) -> float:
        return float(statistics.median(self.cpu_ms))

    @property
    def database_cpu(self) -> float:
        return float(statistics.median(self.database_ms))


def graphql(
    name: str, document: str, server: Server, query: str, headers: dict[str, str], counted: Any
) -> Target:
    body = json.dumps({"query": query})
    return Target(
        name, document, server, "/graphql", counted, body, {**headers, "Content-Type": "application/json"}
    )


def report(workers: int, targets: list[Target], rounds: int, seconds: int, connections: int) -> None:
    print(f"\n{workers} worker(s): {rounds} interleaved rounds of {seconds} s, {connections} connections")
    print(
        f"{'target':<36} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11} {'DB ms/req':>10} "
        f"{'SQL/req':>8} {'failed':>7}"
    )
    for t in targets:
        failed = sum(load.errors for load in t.loads)  # non-2xx answers and timeouts (10 s)
        sql = "-" if t.statements is None else f"{t.statements:.1f}"
        print(
            f"{t.name:<36} {t.median('rps'):>8.0f} {t.median('p50_ms'):>8.2f} {t.median('p99_ms'):>8.2f} "
            f"{t.cpu:>11.3f} {t.database_cpu:>10.3f} {sql:>8} {failed:>7}"
        )
    print("  CPU: the server's processes; DB: PostgreSQL's processes (the whole machine's) during the run")
    print("  SQL/req: counted for ours in this process (SQLAlchemy's statements and the compiled reads')")
    by_name = {t.name: t for t in targets}

    def ratio(a: str, b: str) -> None:
        first, second = by_name[a], by_name[b]
        rps = first.median("rps") / second.median("rps")
        p99 = first.median("p99_ms") / second.median("p99_ms")
        print(
            f"  {a} / {b}: throughput {rps:.2f}x, p99 {p99:.2f}x, "
            f"CPU per request {first.cpu / second.cpu:.2f}x, DB CPU per request "
            f"{first.database_cpu / second.database_cpu:.2f}x"
        )

    print("ratios:")
    for document in ("users50", "nested20"):
        ratio(f"ours GraphQL {document}", f"PostGraphile {document}")
    ratio("ours GraphQL users50", "ours REST users50")


async def count_statements(settings: Settings, targets: list[Target]) -> None:
    """The SQL statements one request of each of our targets sends, once warm (the document
    validated, the caller known), counted in an app of this process over the same database."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        database = app.state.database
        seen: list[str] = []

        def record(*_args: Any) -> None:
            seen.append("statement")

        event.listen(database.engine.sync_engine, "before_cursor_execute", record)
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://bench") as client:
            for target in targets:
                if not target.name.startswith("ours"):
                    continue
                for _ in range(2):  # warm
                    await _send(client, target)
                before, direct = len(seen), database.direct_reads
                for _ in range(TIMES_COUNTED):
                    await _send(client, target)
                sent = len(seen) - before + database.direct_reads - direct
                target.statements = sent / TIMES_COUNTED


async def _send(client: httpx2.AsyncClient, target: Target) -> None:
    if target.body is None:
        response = await client.get(target.path, headers=target.headers)
    else:
        response = await client.post(target.path, content=target.body, headers=target.headers)
    response.raise_for_status()


def measure(
    url: str,
    workers: int,
    auth: dict[str, str],
    env: dict[str, str],
    settings: Settings,
    args: argparse.Namespace,
) -> None:
    with ExitStack() as stack:
        bare = stack.enter_context(uvicorn("bench.bare:app", workers=workers))
        app = stack.enter_context(uvicorn("api.app:create_app", factory=True, env=env, workers=workers))
        theirs = stack.enter_context(postgraphile(url, workers=workers))
        targets = [
            Target("bare ASGI (fixed JSON)", "bare", bare, "/"),
            Target("ours REST users50", "users50", app, "/api/v1/users?limit=50", _rest_count, headers=auth),
            *(graphql(f"ours GraphQL {d}", d, app, q, auth, _ours_count) for d, q in OURS.items()),
            *(graphql(f"PostGraphile {d}", d, theirs, q, {}, _their_count) for d, q in THEIRS.items()),
        ]
        asyncio.run(count_statements(settings, targets))
        for target in targets:
            target.check()
            target.run(1, args.connections)  # warm-up, not counted
            target.loads.clear()
            target.cpu_ms.clear()
            target.database_ms.clear()
        for round_number in range(args.rounds):
            shift = round_number % len(targets)
            for target in targets[shift:] + targets[:shift]:
                target.run(args.seconds, args.connections)
    report(workers, targets, args.rounds, args.seconds, args.connections)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", default="1,2", help="worker counts to measure, comma-separated")
    args = parser.parse_args()

    url = os.environ.get("SWITCHBOARD_BENCH_POSTGRES_URL", DEFAULT_URL)
    shown = make_url(url).render_as_string(hide_password=True)
    print(f"bench: seeding {USERS:,} users, {JOBS_EACH} jobs each, {RESULTS_EACH} results a job into {shown}")
    settings = asyncio.run(prepare(url))
    admin_token = create_access_token(settings, asyncio.run(_admin_id(url))).token
    auth = {"Authorization": f"Bearer {admin_token}"}
    env = {
        "SWITCHBOARD_DATABASE_URL": url,
        "SWITCHBOARD_SECRET_KEY": SECRET,
        "SWITCHBOARD_ENVIRONMENT": "production",
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
        # One administrator sends tens of thousands of reads a minute here: no caller's budget is that big.
        "SWITCHBOARD_GRAPHQL_COST_BUDGET": str(2**31 - 1),
    }
    for workers in (int(count) for count in args.workers.split(",")):
        measure(url, workers, auth, env, settings, args)


async def _admin_id(url: str) -> uuid.UUID:
    engine = create_engine(url)
    async with engine.connect() as connection:
        admin_id = await connection.scalar(select(User.id).where(User.is_admin))
    await engine.dispose()
    assert admin_id is not None
    return admin_id


if __name__ == "__main__":
    main()
