"""What the job runner writes as a job moves along: claiming it, each result, the end.

Every write is fenced by the attempt that claimed the job: a claim counts ``attempts`` up, and a
runner writes only while the job is ``RUNNING`` under its own attempt. So a job cancelled meanwhile,
or taken over by another process after its lease ran out, refuses the stale runner's writes, and the
runner stops.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.models import FetchJob, FetchResult, JobStatus
from api.db.types import utcnow
from api.fetcher import Result
from api.services import events

_LIVE = (JobStatus.PENDING, JobStatus.RUNNING)


@dataclass(frozen=True, slots=True)
class Claim:
    job_id: uuid.UUID
    owner_id: uuid.UUID
    attempt: int
    remaining: list[tuple[int, str]]  # (position, url) not fetched yet


async def claim(session: AsyncSession, *, job_id: uuid.UUID, lease: float, max_attempts: int) -> Claim | None:
    """Take the job for this process, if it is pending, or running with no live lease. ``None``
    when somebody else has it, it has ended, or it was interrupted too often (then it is failed)."""
    now = utcnow()
    taken = await session.execute(
        update(FetchJob)
        .where(
            FetchJob.id == job_id,
            FetchJob.status.in_(_LIVE),
            or_(FetchJob.lease_until.is_(None), FetchJob.lease_until < now),
        )
        .values(
            status=JobStatus.RUNNING,
            attempts=FetchJob.attempts + 1,
            lease_until=now + timedelta(seconds=lease),
        )
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount == 0:  # type: ignore[attr-defined]
        return None
    job = await session.get_one(FetchJob, job_id, populate_existing=True)
    if job.attempts > max_attempts:
        job.status, job.finished_at, job.lease_until = JobStatus.FAILED, now, None
        job.error = (
            f"The job was interrupted {max_attempts} times (its server stopped while it ran); "
            "it was not started again."
        )
        await session.flush()
        await events.job_changed(
            session, job_id=job.id, owner_id=job.owner_id, status=job.status, completed=job.completed
        )
        return None
    if job.started_at is None:
        job.started_at = now
    done = set(await session.scalars(select(FetchResult.position).where(FetchResult.job_id == job_id)))
    await session.flush()
    remaining = [(position, url) for position, url in enumerate(job.urls) if position not in done]
    await events.job_changed(
        session, job_id=job.id, owner_id=job.owner_id, status=job.status, completed=job.completed
    )
    return Claim(job_id, job.owner_id, job.attempts, remaining)


def _ours(claim: Claim) -> tuple[object, ...]:
    return (
        FetchJob.id == claim.job_id,
        FetchJob.status == JobStatus.RUNNING,
        FetchJob.attempts == claim.attempt,
    )


async def record(session: AsyncSession, *, claim: Claim, result: Result, lease: float) -> bool:
    """Write one result and count it (renewing the lease); ``False``, writing nothing, when the job
    is no longer this runner's to write (cancelled, or taken over)."""
    completed = await session.scalar(
        update(FetchJob)
        .where(*_ours(claim))  # type: ignore[arg-type]
        .values(completed=FetchJob.completed + 1, lease_until=utcnow() + timedelta(seconds=lease))
        .returning(FetchJob.completed)
        .execution_options(synchronize_session=False)
    )
    if completed is None:
        return False
    session.add(
        FetchResult(
            job_id=claim.job_id,
            position=result.position,
            url=result.url,
            outcome=result.outcome,
            status_code=result.status_code,
            final_url=result.final_url,
            content_type=result.content_type,
            bytes=result.bytes,
            elapsed_ms=result.elapsed_ms,
            error=result.error,
            fetched_at=result.fetched_at or utcnow(),
            sequence=completed,
        )
    )
    await session.flush()
    await events.job_changed(
        session,
        job_id=claim.job_id,
        owner_id=claim.owner_id,
        status=JobStatus.RUNNING,
        completed=completed,
        position=result.position,
    )
    return True


async def renew(session: AsyncSession, *, claim: Claim, lease: float) -> bool:
    """Extend the lease; ``False`` when the job is no longer this runner's."""
    renewed = await session.execute(
        update(FetchJob)
        .where(*_ours(claim))  # type: ignore[arg-type]
        .values(lease_until=utcnow() + timedelta(seconds=lease))
        .execution_options(synchronize_session=False)
    )
    return bool(renewed.rowcount)  # type: ignore[attr-defined]


async def finish(
    session: AsyncSession, *, claim: Claim, status: JobStatus = JobStatus.DONE, error: str | None = None
) -> None:
    """End the job: ``DONE`` when every result is in, or ``FAILED`` with the reason."""
    completed = await session.scalar(
        update(FetchJob)
        .where(*_ours(claim))  # type: ignore[arg-type]
        .values(status=status, error=error, finished_at=utcnow(), lease_until=None)
        .returning(FetchJob.completed)
        .execution_options(synchronize_session=False)
    )
    if completed is not None:
        await events.job_changed(
            session, job_id=claim.job_id, owner_id=claim.owner_id, status=status, completed=completed
        )


async def release(session: AsyncSession, *, claim: Claim) -> None:
    """Give the job back on a clean shutdown, for the next start (or another process) to go on with
    at once. The attempt is handed back too: only an interruption without notice counts."""
    await session.execute(
        update(FetchJob)
        .where(*_ours(claim))  # type: ignore[arg-type]
        .values(lease_until=None, attempts=FetchJob.attempts - 1)
        .execution_options(synchronize_session=False)
    )


async def orphaned(session: AsyncSession, *, lease: float) -> list[uuid.UUID]:
    """Jobs no live process is running: running with a lapsed (or given-back) lease, or pending
    longer than a lease (the process that accepted them stopped before starting them)."""
    now = utcnow()
    query = select(FetchJob.id).where(
        FetchJob.status.in_(_LIVE),
        or_(
            FetchJob.lease_until < now,
            and_(
                FetchJob.lease_until.is_(None),
                or_(
                    FetchJob.status == JobStatus.RUNNING,
                    FetchJob.created_at < now - timedelta(seconds=lease),
                ),
            ),
        ),
    )
    return list(await session.scalars(query.order_by(FetchJob.id)))
