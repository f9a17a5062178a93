"""Fetch jobs as their owners see them: start, read, list, cancel, results and exports.

A job is visible to its owner and to administrators only; to anybody else it does not exist
(``NotFound``, or left out of a batch), on every path.
"""

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, Select, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from api.db.engine import Database
from api.db.models import FetchJob, FetchResult, JobStatus, Outcome
from api.db.types import utcnow
from api.errors import Conflict, NotFound
from api.ratelimit import Limiter
from api.services import events
from api.services.callers import Caller, Visibility, VisibilityTerms, acts_as_admin, require
from api.services.fetch import count_fetch, url_list
from api.services.pagination import Page, PageRequest, decode_cursor, page_of
from api.settings import Settings

SelectT = TypeVar("SelectT", bound=Select[Any])
EXPORT_BATCH = 500
CANCELLED_ERROR = "The job was cancelled before this URL was fetched."


class JobControl(Protocol):
    """What the services need of the process's job runner (``api.jobs.JobRunner``)."""

    def run_after_commit(self, session: AsyncSession, job_id: uuid.UUID) -> None:
        """Start the job once ``session`` commits (before, its row is not visible to the runner)."""
        ...


async def start_job(
    session: AsyncSession,
    *,
    settings: Settings,
    limiter: Limiter,
    control: JobControl,
    actor: Caller | None,
    urls: Sequence[str],
    field: str = "urls",
) -> FetchJob:
    """Record a job for ``urls`` and have it run in the background once the caller's transaction
    commits; it starts ``PENDING``."""
    user = require(actor, "fetch").user
    checked = url_list(settings, urls, field=field)
    await count_fetch(settings, limiter, user)
    job = FetchJob(owner_id=user.id, urls=checked, total=len(checked), status=JobStatus.PENDING)
    session.add(job)
    await session.flush()
    await events.job_changed(session, job_id=job.id, owner_id=user.id, status=job.status, completed=0)
    control.run_after_commit(session, job.id)
    return job


def job_visibility(actor: Caller | None) -> Visibility:
    """Which jobs ``actor`` sees: every one (an administrator) or their own; reading jobs at all
    takes the ``fetch`` scope."""
    caller = require(actor, "fetch")
    return Visibility(viewer_id=caller.user.id, sees_all=acts_as_admin(caller))


def visible_job(job: Any, terms: VisibilityTerms) -> ColumnElement[bool]:
    """The one rule of who sees a job, as SQL over ``job`` (the model, an alias or a subquery's
    columns): an administrator sees every job, anybody else their own."""
    sees_all, viewer_id = terms
    return or_(sees_all, job.owner_id == viewer_id)


def sees(actor: Caller | None, job: FetchJob) -> bool:
    """Whether ``actor`` may see ``job``, a row already read (``visible_job``'s rule in Python)."""
    seen = job_visibility(actor)
    return seen.sees_all or job.owner_id == seen.viewer_id


def _visible(query: SelectT, actor: Caller | None) -> SelectT:
    """``query`` (over jobs, or joined to them) narrowed to the jobs ``actor`` may see."""
    return query.where(visible_job(FetchJob, job_visibility(actor).constants()))


async def get_jobs(
    session: AsyncSession, *, actor: Caller | None, job_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, FetchJob]:
    """The jobs among ``job_ids`` that ``actor`` may see, in one query."""
    query = _visible(select(FetchJob).where(FetchJob.id.in_(set(job_ids))), actor)
    return {job.id: job for job in await session.scalars(query)}


async def get_job(session: AsyncSession, *, actor: Caller | None, job_id: uuid.UUID) -> FetchJob:
    job = (await get_jobs(session, actor=actor, job_ids=[job_id])).get(job_id)
    if job is None:
        raise NotFound("No such fetch job.")
    return job


async def list_jobs(
    session: AsyncSession, *, actor: Caller | None, page: PageRequest, status: JobStatus | None = None
) -> Page[FetchJob]:
    """The caller's own jobs, newest first, optionally those in one status."""
    viewer_id = job_visibility(actor).viewer_id
    return (await jobs_of_owners(session, actor=actor, owner_ids=[viewer_id], page=page, status=status))[
        viewer_id
    ]


async def jobs_of_owners(
    session: AsyncSession,
    *,
    actor: Caller | None,
    owner_ids: Sequence[uuid.UUID],
    page: PageRequest,
    status: JobStatus | None = None,
) -> dict[uuid.UUID, Page[FetchJob]]:
    """A page of jobs for each owner, newest first, in one query however many owners
    (``User.fetchJobs`` for a whole list of users). Owners whose jobs ``actor`` may not see get an
    empty page."""
    terms = job_visibility(actor).constants()
    pages: dict[uuid.UUID, list[FetchJob]] = {owner: [] for owner in owner_ids}
    if owner_ids:
        rank = func.row_number().over(partition_by=FetchJob.owner_id, order_by=FetchJob.id.desc())
        ranked = select(FetchJob, rank.label("rank")).where(
            FetchJob.owner_id.in_(set(owner_ids)), visible_job(FetchJob, terms)
        )
        if status is not None:
            ranked = ranked.where(FetchJob.status == status)
        if page.after is not None:
            ranked = ranked.where(FetchJob.id < decode_cursor(page.after))
        subquery = ranked.subquery()
        job = aliased(FetchJob, subquery)
        query = (
            select(job)
            .where(subquery.c.rank <= page.first + 1)
            .order_by(subquery.c.owner_id, subquery.c.id.desc())
        )
        for row in await session.scalars(query):
            pages[row.owner_id].append(row)
    return {owner: page_of(rows, page.first) for owner, rows in pages.items()}


async def results_of_jobs(
    session: AsyncSession,
    *,
    actor: Caller | None,
    job_ids: Sequence[uuid.UUID],
    outcome: Outcome | None = None,
) -> dict[uuid.UUID, list[FetchResult]]:
    """The results so far of each job, in URL order, in one query; a job ``actor`` may not see has
    none."""
    query = (
        select(FetchResult)
        .join(FetchJob, FetchJob.id == FetchResult.job_id)
        .where(FetchResult.job_id.in_(set(job_ids)))
        .order_by(FetchResult.job_id, FetchResult.position)
    )
    if outcome is not None:
        query = query.where(FetchResult.outcome == outcome)
    results: dict[uuid.UUID, list[FetchResult]] = defaultdict(list)
    for row in await session.scalars(_visible(query, actor)):
        results[row.job_id].append(row)
    return {job_id: results[job_id] for job_id in job_ids}


async def job_results(
    session: AsyncSession, *, actor: Caller | None, job_id: uuid.UUID, outcome: Outcome | None = None
) -> list[FetchResult]:
    job = await get_job(session, actor=actor, job_id=job_id)
    return (await results_of_jobs(session, actor=actor, job_ids=[job.id], outcome=outcome))[job.id]


async def cancel_job(session: AsyncSession, *, actor: Caller | None, job_id: uuid.UUID) -> FetchJob:
    """Cancel a job that has not ended: the URLs not fetched yet get ``CANCELLED`` results and its
    fetches in flight stop (its runner, wherever it runs, hears the CANCELLED event). Cancelling a
    cancelled job changes nothing; one that ended otherwise is a ``Conflict``.

    The status changes first, in one conditional update: it locks the job's row, so a result being
    written at the same moment either lands before (and is kept) or finds the job cancelled.
    """
    job = await get_job(session, actor=actor, job_id=job_id)
    now = utcnow()
    claimed = await session.execute(
        update(FetchJob)
        .where(FetchJob.id == job.id, FetchJob.status.in_([JobStatus.PENDING, JobStatus.RUNNING]))
        .values(status=JobStatus.CANCELLED, finished_at=now, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount == 0:  # type: ignore[attr-defined]
        await session.refresh(job)
        if job.status is JobStatus.CANCELLED:
            return job
        raise Conflict(f"The job has already ended ({job.status.value}).")
    done = set(await session.scalars(select(FetchResult.position).where(FetchResult.job_id == job.id)))
    missing = [(position, url) for position, url in enumerate(job.urls) if position not in done]
    session.add_all(
        FetchResult(
            job_id=job.id,
            position=position,
            url=url,
            outcome=Outcome.CANCELLED,
            error=CANCELLED_ERROR,
            fetched_at=now,
            sequence=len(done) + number,
        )
        for number, (position, url) in enumerate(missing, start=1)
    )
    await session.flush()
    await session.execute(
        update(FetchJob)
        .where(FetchJob.id == job.id)
        .values(completed=FetchJob.total)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(job)
    await events.job_changed(
        session, job_id=job.id, owner_id=job.owner_id, status=job.status, completed=job.completed
    )
    return job


async def stream_results(
    database: Database, job_id: uuid.UUID, outcome: Outcome | None = None
) -> AsyncIterator[Sequence[FetchResult]]:
    """A job's results in URL order (those with ``outcome``, if given), a batch at a time, each batch
    read in a short session of its own: an export streams for as long as the client reads, and
    holds no connection meanwhile. The caller checks that the reader may see the job (``get_job``)
    before streaming."""
    after = -1
    while True:
        async with database.session() as session:
            query = (
                select(FetchResult)
                .where(FetchResult.job_id == job_id, FetchResult.position > after)
                .order_by(FetchResult.position)
                .limit(EXPORT_BATCH)
            )
            if outcome is not None:
                query = query.where(FetchResult.outcome == outcome)
            batch = (await session.scalars(query)).all()
        if not batch:
            return
        yield batch
        after = batch[-1].position
