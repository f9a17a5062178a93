"""The job runner: runs fetch jobs in the background of the process, one task per job.

A job starts when the transaction that created it commits. Its runner claims it (a lease, renewed
while it runs), fetches the URLs not fetched yet, and writes each result in a short transaction of
its own as soon as it is in. It listens to the job's events on the bus meanwhile, so a cancellation,
committed here or by another process, stops its fetches at once. A sweeper, at
start-up and then every half lease, takes over jobs whose process died (their lease ran out) and
goes on where they stopped. On shutdown, running jobs are given back so the next start resumes them
at once.
"""

import asyncio
import logging
import uuid
from contextlib import aclosing, suppress

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from api.bus import Bus, Subscription
from api.db.engine import Database
from api.db.hooks import after_commit
from api.db.models import JobStatus
from api.errors import ServiceUnavailable
from api.fetcher import Fetcher
from api.services import job_progress
from api.services.events import job_topic
from api.services.job_progress import Claim

# What a database that does not answer raises: its driver's errors, and our own refusals when a turn
# or a connection did not come in time (SQLite's write turn, the pool). A job meeting them is left to
# its lease, not failed.
DATABASE_TROUBLE = (SQLAlchemyError, ServiceUnavailable)

logger = logging.getLogger("switchboard.jobs")

INTERNAL_FAILURE = "The job stopped on an internal error; its results so far are kept."


class JobRunner:
    def __init__(
        self,
        database: Database,
        fetcher: Fetcher,
        bus: Bus,
        *,
        concurrency: int = 10,
        lease: float = 30.0,
        max_attempts: int = 3,
    ) -> None:
        self.database = database
        self.fetcher = fetcher
        self.bus = bus
        self.concurrency = concurrency
        self.lease = lease
        self.max_attempts = max_attempts
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._closing = False

    # What the services ask for (``api.services.fetch_jobs.JobControl``).

    def run_after_commit(self, session: AsyncSession, job_id: uuid.UUID) -> None:
        after_commit(session, lambda: self._spawn(job_id))

    # The process's side.

    async def start(self) -> None:
        """Take over the jobs a dead process left, then keep looking for more. A database that does
        not answer yet does not stop the start (``/readyz`` reports it); the sweeper tries again."""
        await self.sweep()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="fetch-job-sweeper")

    async def sweep(self) -> None:
        try:
            async with self.database.session() as session:
                orphans = await job_progress.orphaned(session, lease=self.lease)
        except Exception as exc:
            if self.database.outage.refusal_for(exc, request=False) is None:  # else its one line says it
                logger.exception("looking for interrupted fetch jobs failed; trying again later")
            return
        for job_id in orphans:
            self._spawn(job_id)

    async def close(self, grace: float = 10.0) -> None:
        """Stop every job of this process and give each back (``job_progress.release``)."""
        self._closing = True
        tasks = [*self._tasks.values(), *([self._sweeper] if self._sweeper else [])]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)

    async def wait(self, job_id: uuid.UUID) -> None:
        """Until this process's run of the job ends (tests and benchmarks)."""
        task = self._tasks.get(job_id)
        if task is not None:
            with suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    def _spawn(self, job_id: uuid.UUID) -> None:
        if self._closing or job_id in self._tasks:
            return
        task = asyncio.create_task(self._run(job_id), name=f"fetch-job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job_id, None))

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 2)
            await self.sweep()

    async def _run(self, job_id: uuid.UUID) -> None:
        """Claim the job, fetch what remains, finish it.

        A database error on the way (a lock that did not come in time, a dropped connection) does
        not fail the job: its lease runs out and a sweep takes it over where it stopped. Only an
        error of our own (a bug) fails it, with a sentence and the traceback in the log.
        """
        # Listening from before the claim, so that a cancellation committed just after it is heard too.
        # No bound on the queue: a job's topic carries one event per URL and a few for its status, and
        # the lease keeper takes each as it comes.
        async with self.bus.subscribe(job_topic(job_id), maxsize=0) as news:
            claim: Claim | None = None
            keeper: asyncio.Task[None] | None = None
            try:
                async with self.database.session() as session:
                    claim = await job_progress.claim(
                        session, job_id=job_id, lease=self.lease, max_attempts=self.max_attempts
                    )
                if claim is None:
                    return
                keeper = asyncio.create_task(self._keep_lease(claim, asyncio.current_task(), news))
                if await self._fetch(claim):
                    async with self.database.session() as session:
                        await job_progress.finish(session, claim=claim)
            except asyncio.CancelledError:
                if self._closing and claim is not None:
                    with suppress(*DATABASE_TROUBLE):
                        async with self.database.session() as session:
                            await job_progress.release(session, claim=claim)
                raise
            except DATABASE_TROUBLE:
                logger.warning(
                    "fetch job %s stopped on a database error; it resumes when its lease runs out", job_id
                )
            except Exception:
                logger.exception("fetch job %s failed", job_id)
                if claim is not None:
                    with suppress(*DATABASE_TROUBLE):
                        async with self.database.session() as session:
                            await job_progress.finish(
                                session, claim=claim, status=JobStatus.FAILED, error=INTERNAL_FAILURE
                            )
            finally:
                if keeper is not None:
                    keeper.cancel()

    async def _fetch(self, claim: Claim) -> bool:
        """Fetch and record what remains; ``False`` if the job stopped being ours on the way."""
        results = self.fetcher.fetch_each(claim.remaining, concurrency=self.concurrency)
        async with aclosing(results):
            async for result in results:
                async with self.database.session() as session:
                    if not await job_progress.record(session, claim=claim, result=result, lease=self.lease):
                        return False
        return True

    async def _keep_lease(
        self, claim: Claim, runner: "asyncio.Task[object] | None", news: Subscription
    ) -> None:
        """Renew the lease while the job runs; stop the run when the job is no longer ours (it was
        cancelled through another process, or taken over). A cancellation announced on the bus
        (``news``, the job's events) stops it at once; the renewal notices it too, a third of a lease
        later at most, when its events were lost."""
        while not await _cancel_announced(news, self.lease / 3):
            try:
                async with self.database.session() as session:
                    ours = await job_progress.renew(session, claim=claim, lease=self.lease)
            except Exception as exc:
                if self.database.outage.refusal_for(exc, request=False) is None:
                    logger.exception("renewing the lease of fetch job %s failed; trying again", claim.job_id)
                continue
            if not ours:
                break
        if runner is not None:
            runner.cancel()


async def _cancel_announced(news: Subscription, wait: float) -> bool:
    """Whether the job's events announce it cancelled within ``wait`` seconds. A ``resync`` ends
    the wait early, ``False``: events may have been lost, so the renewal looks at the job itself."""
    with suppress(TimeoutError):
        async with asyncio.timeout(wait):
            while True:
                event = await news.get()
                if event.resync:
                    return False
                if event.data.get("status") == JobStatus.CANCELLED.value:
                    return True
    return False
