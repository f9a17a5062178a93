"""A small world of accounts, keys, jobs and results for the compiled read path's tests, built through
the services, and the readers who look at it."""

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from api.db.engine import Database
from api.db.models import FetchJob, JobStatus, Outcome, User
from api.fetcher import Result
from api.ids import NodeType, to_global_id
from api.ratelimit import MemoryLimiter
from api.security import create_access_token
from api.services import api_keys, fetch_jobs, job_progress, sessions
from api.services.callers import Caller
from api.services.commands import ApiKeyCreate
from api.services.pagination import encode_cursor
from api.settings import Settings
from tests.factories import make_user
from tests.jobs import Parked


@dataclass
class World:
    users: dict[str, User]
    jobs: dict[str, FetchJob]
    readers: dict[str, dict[str, str]]  # name → the headers a request of theirs carries
    ids: list[str] = field(default_factory=list)  # global ids of every kind, and ones of nothing
    cursors: list[str] = field(default_factory=list)


# Results of the finished job: every column's kinds of value, nulls, a timestamp with no microseconds.
RESULTS = [
    Result(0, "http://a.test/", Outcome.OK, 200, "http://a.test/", "text/html", 512, 12.5, None),
    Result(1, "http://b.test/x", Outcome.HTTP_ERROR, 404, None, "text/plain", 9, 3.0, "Not Found"),
    Result(2, "gopher://c.test/", Outcome.INVALID_URL, error="Only http and https URLs are fetched."),
    Result(3, 'http://d.test/"quoted"\\', Outcome.TIMEOUT, elapsed_ms=10000.25, error="Timed out ✓"),
]
ROUND_TIME = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


async def build_world(database: Database, settings: Settings, *, targets: str = "http://t.test") -> World:
    users = {
        "admin": await make_user(database, admin=True, display_name="Root"),
        "alice": await make_user(database, display_name="Alice %_ Liddell"),
        "bob": await make_user(database, display_name=None),
        "carol": await make_user(database, display_name="Carol"),
    }
    control = Parked()
    jobs: dict[str, FetchJob] = {}
    async with database.session() as session:
        for name, owner in [("done", "alice"), ("pending", "alice"), ("bobs", "bob"), ("extra", "alice")]:
            jobs[name] = await fetch_jobs.start_job(
                session,
                settings=settings,
                limiter=MemoryLimiter(),
                control=control,
                actor=Caller(user=users[owner]),
                urls=[result.url for result in RESULTS],
            )
        reader_key = await api_keys.create_api_key(
            session, actor=Caller(user=users["alice"]), data=ApiKeyCreate(name="r", scopes=["users:read"])
        )
        fetch_key = await api_keys.create_api_key(
            session, actor=Caller(user=users["alice"]), data=ApiKeyCreate(name="f", scopes=["fetch"])
        )
    async with database.session() as session:
        claim = await job_progress.claim(session, job_id=jobs["done"].id, lease=60, max_attempts=3)
        assert claim is not None
        for result in RESULTS:
            written = replace(result, fetched_at=ROUND_TIME) if result.position == 0 else result
            await job_progress.record(session, claim=claim, result=written, lease=60)
        await job_progress.finish(session, claim=claim, status=JobStatus.DONE)
    readers: dict[str, dict[str, str]] = {"anonymous": {}}
    for name in ("admin", "alice", "bob"):
        token = create_access_token(settings, users[name].id).token
        readers[name] = {"Authorization": f"Bearer {token}"}
    async with database.session() as session:  # sign-in sessions, one of them ended (a logout)
        signed_in = await sessions.start(session, settings=settings, user=users["bob"])
        logged_out = await sessions.start(session, settings=settings, user=users["alice"])
        ended = await sessions.find(session, refresh_token=logged_out.refresh_token)
        assert ended is not None
        await sessions.revoke_family(session, family_id=ended.family_id)
    readers["bob, signed in"] = {"Authorization": f"Bearer {signed_in.access.token}"}
    readers["alice, logged out"] = {"Authorization": f"Bearer {logged_out.access.token}"}
    readers["alice's users:read key"] = {"X-API-Key": reader_key.secret}
    readers["alice's fetch key"] = {"X-API-Key": fetch_key.secret}
    readers["a stale token"] = {"Authorization": "Bearer not-a-token"}
    world = World(users, jobs, readers)
    world.ids = [
        *(to_global_id(NodeType.USER, user.id) for user in users.values()),
        *(to_global_id(NodeType.FETCH_JOB, job.id) for job in jobs.values()),
        to_global_id(NodeType.API_KEY, reader_key.key.id),
        to_global_id(NodeType.USER, uuid.uuid4()),
        "not an id",
        "",
    ]
    ids = sorted([*(u.id for u in users.values()), *(j.id for j in jobs.values())])
    world.cursors = [encode_cursor(key) for key in ids[::2]] + ["not a cursor"]
    return world


def ordered(text: str) -> Any:
    """The JSON of ``text`` with every object as its list of pairs, so key order counts (and an
    error's request id, which differs for every request, left out: GraphQL's and REST's)."""
    ids = ("requestId", "request_id")
    return json.loads(text, object_pairs_hook=lambda pairs: [p for p in pairs if p[0] not in ids])
