"""Live streams: a job's progress, all of a caller's jobs, and (for administrators) account changes,
as GraphQL subscriptions and Server-Sent Events use them.

A stream subscribes to the bus first, then reads the current state, so nothing falls between the
two. No session lives as long as a stream: each event is read in a short session of its own, and
that read is shared by every subscriber of this process that the event reaches (one read for a
thousand subscribers of a job). The caller is checked again on every event (``auth.recheck``):
``Unauthenticated`` ends the stream once the token runs out or is revoked; a job the caller may no
longer see ends it with ``NotFound``.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api import metrics
from api.bus import Bus, Event, Subscription
from api.db.engine import Database
from api.db.models import FetchJob, FetchResult, JobStatus, User
from api.errors import NotFound, Unauthenticated
from api.services import auth, fetch_jobs
from api.services.callers import Caller, require, require_admin
from api.services.events import USERS_TOPIC, UserEventKind, deleted_user, job_topic, owner_topic

T = TypeVar("T")

# The feeds, as the delivery metrics name them: one job's, every job of an owner's, accounts'.
JOB_FEED, OWNER_FEED, USERS_FEED = "job", "my_jobs", "users"
_delivery = {
    feed: (metrics.EVENTS_DELIVERED.labels(feed), metrics.DELIVERY_LAG.labels(feed))
    for feed in (JOB_FEED, OWNER_FEED, USERS_FEED)
}


_DELIVERED = object()  # the key of an event's feed and announcement time in what its subscribers share


def _delivered(feed: str, event: Event) -> None:
    """An update of ``event`` leaves ``feed`` for one subscriber, this long after it was announced
    (clocks of two hosts may differ a little: a lag below zero counts as none)."""
    delivered, lag = _delivery[feed]
    delivered.inc()
    lag.observe(max(0.0, time.time() - event.sent_at))
    event.memo[_DELIVERED] = (feed, event.sent_at)


def delivered_again(shared: "Shared", count: int) -> None:
    """The update of the event behind ``shared`` handed on to ``count`` more subscribers, as a
    subscription's relay hands one stream's updates to each of its followers."""
    found = None if shared is None else shared.get(_DELIVERED)
    if found is None or count <= 0:
        return
    feed, sent_at = found
    delivered, lag = _delivery[feed]
    delivered.inc(count)
    late = max(0.0, time.time() - sent_at)
    for _ in range(count):
        lag.observe(late)


@dataclass(frozen=True, slots=True)
class Feeds:
    """What a stream needs: where to read, where to listen, and how far a subscriber may lag."""

    database: Database
    bus: Bus
    queue_size: int = 100


# What the subscribers an event reached in this process share (the bus event's ``memo``): whoever
# turns an update into a response may keep it there for the others. None for an update read for
# one subscriber alone (a stream's first state, a re-read after a resync).
Shared = dict[Any, Any] | None


@dataclass(frozen=True, slots=True)
class JobUpdate:
    job: FetchJob
    result: FetchResult | None  # the result that just came in; none for a state or status event
    sequence: int  # results counted so far, in the order they came (``FetchResult.sequence``)
    shared: Shared = field(default=None, compare=False, repr=False)
    # The job has ended, as the event itself says. The row read for an earlier event that arrives
    # late may already say so, while results are still on their way: the stream ends on this.
    final: bool = False


@dataclass(frozen=True, slots=True)
class UserUpdate:
    kind: UserEventKind
    user: User
    shared: Shared = field(default=None, compare=False, repr=False)


async def job_events(
    feeds: Feeds,
    *,
    caller: Caller | None,
    job_id: uuid.UUID,
    after: int | None = None,
    session: AsyncSession | None = None,
) -> AsyncGenerator[JobUpdate, None]:
    """One job: first its state as it stands, then one update per result, ending when it ends.

    With ``after`` (a resuming client's last sequence number), the results that came in since are
    sent first, instead of the state. Refusals (``NotFound`` for a job the caller may not see) are
    raised here, before the stream starts. The state is read in ``session`` when the caller has one
    open (a request's: on SQLite, a second transaction beside it would wait for its lock).
    """
    caller = require(caller, "fetch")
    subscription = feeds.bus.subscribe(job_topic(job_id), maxsize=feeds.queue_size)
    try:
        if session is None:
            async with feeds.database.session(read_only=True) as own:
                caller, job, missed = await _job_now(own, caller, job_id, after)
        else:
            caller, job, missed = await _job_now(session, caller, job_id, after)
    except BaseException:
        feeds.bus.unsubscribe(subscription)
        raise
    return _job_stream(feeds, subscription, caller, job, missed, after)


async def _job_stream(
    feeds: Feeds,
    subscription: Subscription,
    caller: Caller,
    job: FetchJob,
    missed: list[FetchResult],
    after: int | None,
) -> AsyncGenerator[JobUpdate, None]:
    async with subscription:
        if after is None:
            yield JobUpdate(job, None, job.completed)
        for result in missed:
            yield JobUpdate(job, result, result.sequence or 0)
        if job.status.ended:
            if after is not None:
                yield JobUpdate(job, None, job.completed)
            return
        seen = max([job.completed, *(result.sequence or 0 for result in missed)])
        async for update in _job_updates(feeds, subscription, caller, seen, job.id):
            yield update
            if update.final:
                return


async def my_job_events(feeds: Feeds, *, caller: Caller | None) -> AsyncGenerator[JobUpdate, None]:
    """Every job of the caller's, as it is started and moves along; never ends by itself."""
    caller = require(caller, "fetch")
    async with feeds.database.session(read_only=True) as session:
        caller = await auth.recheck(session, caller=caller)
    topic = owner_topic(caller.user.id)
    return _my_job_stream(feeds, feeds.bus.subscribe(topic, maxsize=feeds.queue_size), caller)


async def _my_job_stream(
    feeds: Feeds, subscription: Subscription, caller: Caller
) -> AsyncGenerator[JobUpdate, None]:
    async with subscription:
        async for update in _job_updates(feeds, subscription, caller, 0, None):
            yield update


async def user_events(feeds: Feeds, *, caller: Caller | None) -> AsyncGenerator[UserUpdate, None]:
    """Accounts created, updated and deleted; for administrators, checked again on every event."""
    caller = require_admin(caller, "users:read")
    async with feeds.database.session(read_only=True) as session:  # as the account is now
        caller = require_admin(await auth.recheck(session, caller=caller), "users:read")
    return _user_stream(feeds, feeds.bus.subscribe(USERS_TOPIC, maxsize=feeds.queue_size), caller)


async def _user_stream(
    feeds: Feeds, subscription: Subscription, caller: Caller
) -> AsyncGenerator[UserUpdate, None]:
    async with subscription:
        while True:
            event = await subscription.get()
            caller = await _rechecked(feeds.database, event, caller)
            require_admin(caller, "users:read")
            if event.resync:
                continue  # nothing to catch up on: account changes are not kept
            kind = UserEventKind(event.data["kind"])
            if kind is UserEventKind.DELETED:
                _delivered(USERS_FEED, event)
                yield UserUpdate(kind, deleted_user(event.data), event.memo)
                continue
            user = await _shared(event, "user", partial(_user, feeds.database, uuid.UUID(event.data["user"])))
            if user is not None:
                _delivered(USERS_FEED, event)
                yield UserUpdate(kind, user, event.memo)


async def _job_updates(
    feeds: Feeds, subscription: Subscription, caller: Caller, seen: int, job_id: uuid.UUID | None
) -> AsyncGenerator[JobUpdate, None]:
    """The updates of the events in ``subscription`` (of one job, or of one owner's), skipping the
    results already sent (``seen``: the count of them, first in the state read at the start)."""
    while True:
        event = await subscription.get()
        caller = await _rechecked(feeds.database, event, caller)
        if event.resync:
            if job_id is not None:  # the stream of one job catches up: the results missed, its state
                async with feeds.database.session(read_only=True) as session:
                    caller, job, missed = await _job_now(session, caller, job_id, seen)
                for late in missed:
                    yield JobUpdate(job, late, late.sequence or 0)
                seen = max([seen, job.completed, *(late.sequence or 0 for late in missed)])
                yield JobUpdate(job, None, job.completed, final=job.status.ended)
            continue
        position: int | None = event.data["position"]
        completed: int = event.data["completed"]
        if position is not None and completed <= seen:
            continue
        read = partial(_job_and_result, feeds.database, uuid.UUID(event.data["job"]), position)
        row, result = await _shared(event, "job", read)
        if row is None or not fetch_jobs.sees(caller, row):
            raise NotFound("No such fetch job.")
        final = position is None and JobStatus(event.data["status"]).ended
        if position is not None and job_id is not None:  # counts are per job
            seen = completed
        _delivered(OWNER_FEED if job_id is None else JOB_FEED, event)
        yield JobUpdate(row, result, completed, event.memo, final)


async def _job_now(
    session: AsyncSession, caller: Caller, job_id: uuid.UUID, after: int | None
) -> tuple[Caller, FetchJob, list[FetchResult]]:
    """The caller checked again, the job as it stands, and its results after sequence ``after``."""
    caller = await auth.recheck(session, caller=caller)
    job = await fetch_jobs.get_job(session, actor=caller, job_id=job_id)
    missed: list[FetchResult] = []
    if after is not None:
        query = (
            select(FetchResult)
            .where(FetchResult.job_id == job_id, FetchResult.sequence > after)
            .order_by(FetchResult.sequence)
        )
        missed = list(await session.scalars(query))
    return caller, job, missed


async def _job_and_result(
    database: Database, job_id: uuid.UUID, position: int | None
) -> tuple[FetchJob | None, FetchResult | None]:
    async with database.session(read_only=True) as session:
        job = await session.get(FetchJob, job_id)
        result = None if position is None else await session.get(FetchResult, (job_id, position))
    return job, result


async def _user(database: Database, user_id: uuid.UUID) -> User | None:
    async with database.session(read_only=True) as session:
        return await session.get(User, user_id)


async def _rechecked(database: Database, event: Event, caller: Caller) -> Caller:
    """``caller`` checked again for ``event``, together with every other subscriber the event woke."""
    rechecks = event.memo.get(_Rechecks)
    if rechecks is None:
        rechecks = event.memo[_Rechecks] = _Rechecks(database)
    return await asyncio.shield(rechecks.ask(caller))


class _Rechecks:
    """The callers to check again for one event. The subscribers an event wakes all run in the same
    turn of the loop, and each asks here before it goes on; the question is sent at the end of that
    turn, so a thousand subscribers cost one short session and three queries, not a thousand. A
    credential shared by several subscribers is checked once."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.answers: dict[tuple[Any, ...], asyncio.Future[Caller]] = {}
        self.waiting: list[tuple[Caller, asyncio.Future[Caller]]] = []
        self.checks: set[asyncio.Task[None]] = set()

    def ask(self, caller: Caller) -> "asyncio.Future[Caller]":
        key = (caller.user.id, caller.session_id, caller.api_key_id, caller.expires_at, caller.scopes)
        answer = self.answers.get(key)
        if answer is None:
            loop = asyncio.get_running_loop()
            answer = self.answers[key] = loop.create_future()
            answer.add_done_callback(lambda done: done.cancelled() or done.exception())
            if not self.waiting:
                loop.call_soon(self._send)
            self.waiting.append((caller, answer))
        return answer

    def _send(self) -> None:
        batch, self.waiting = self.waiting, []
        check = asyncio.ensure_future(self._check(batch))
        self.checks.add(check)
        check.add_done_callback(self.checks.discard)

    async def _check(self, batch: list[tuple[Caller, "asyncio.Future[Caller]"]]) -> None:
        try:
            async with self.database.session(read_only=True) as session:
                checked = await auth.recheck_many(session, callers=[caller for caller, _ in batch])
        except asyncio.CancelledError:
            for _, answer in batch:
                answer.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 (not swallowed: every subscriber asking fails with it)
            for _, answer in batch:
                answer.set_exception(exc)
            return
        for (_, answer), outcome in zip(batch, checked, strict=True):
            if isinstance(outcome, Unauthenticated):
                answer.set_exception(outcome)
            else:
                answer.set_result(outcome)


async def _shared(event: Event, key: Any, read: Callable[[], Awaitable[T]]) -> T:
    """The result of ``read`` for ``event``, read once by whichever subscriber asks first. A
    subscriber that goes away meanwhile does not cancel the read for the others (``shield``)."""
    task: asyncio.Future[T] | None = event.memo.get(key)
    if task is None:
        task = event.memo[key] = asyncio.ensure_future(read())
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return await asyncio.shield(task)
