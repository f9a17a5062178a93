"""The job runner: a job a dead process left is taken over and finished, one interrupted too often
fails with a reason, a clean shutdown hands running jobs to the next start."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
from fastapi import FastAPI
from sqlalchemy import select

from api.app import create_app
from api.db.engine import Database
from api.db.models import FetchJob, JobStatus, Outcome
from api.services.callers import Caller
from api.services.fetch_jobs import results_of_jobs
from tests.conftest import asgi_client, fetch_settings
from tests.factories import bearer, make_user
from tests.jobs import key, runner, start
from tests.targets import gate
from tests.waiting import until


@asynccontextmanager
async def serving_app(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    async with app.router.lifespan_context(app), asgi_client(app) as client:
        yield client


async def crash() -> None:
    """What a killed process leaves: its runs stop where they are, with no chance to hand jobs back
    (returns once every run has stopped)."""
    runs = [task for task in asyncio.all_tasks() if task.get_name().startswith("fetch-job")]
    for task in runs:
        task.cancel()
    if runs:
        await asyncio.wait(runs)


async def job_row(database: Database, job_id: uuid.UUID) -> FetchJob:
    async with database.session() as session:
        row = await session.scalar(select(FetchJob).where(FetchJob.id == job_id))
    assert row is not None
    return row


async def test_a_job_left_running_by_a_dead_process_is_taken_over_and_finished(
    live_database: Database, targets: str
) -> None:
    settings = fetch_settings(fetch_job_lease=0.6, fetch_concurrency=2)
    user = await make_user(live_database)
    async with (
        gate(targets) as slow,  # in flight when the process dies; answers the next worker at once
        serving_app(create_app(settings, database=live_database)) as client,
    ):
        urls = [f"{targets}/ok", f"{targets}/ok", slow.url, slow.url, f"{targets}/ok"]
        job_id = key((await start(client, urls, bearer(settings, user)))["id"])

        async def two_in() -> bool:
            return (await job_row(live_database, job_id)).completed == 2

        await until(two_in)
        await crash()
        left = await job_row(live_database, job_id)
        assert (left.status, left.completed, left.attempts) == (JobStatus.RUNNING, 2, 1)
        assert left.lease_until is not None  # still held: nobody takes it before the lease runs out
        slow.open()

        async with serving_app(create_app(settings, database=live_database)):  # another worker

            async def done() -> bool:
                return (await job_row(live_database, job_id)).status is JobStatus.DONE

            await until(done, within=10)
    finished = await job_row(live_database, job_id)
    assert (finished.completed, finished.attempts, finished.error) == (5, 2, None)
    async with live_database.session() as session:
        results = (await results_of_jobs(session, actor=Caller(user), job_ids=[job_id]))[job_id]
    assert [r.position for r in results] == [0, 1, 2, 3, 4]  # each once: two kept, three fetched after
    assert {r.outcome for r in results} == {Outcome.OK}


async def test_a_job_interrupted_too_often_fails_with_a_reason(live_database: Database, targets: str) -> None:
    settings = fetch_settings(fetch_job_lease=0.3, fetch_job_max_attempts=1)
    user = await make_user(live_database)
    async with serving_app(create_app(settings, database=live_database)) as client:
        job_id = key((await start(client, [f"{targets}/slow?s=2"], bearer(settings, user)))["id"])

        async def running() -> bool:
            return (await job_row(live_database, job_id)).status is JobStatus.RUNNING

        await until(running)
        await crash()
        async with serving_app(create_app(settings, database=live_database)):

            async def failed() -> bool:
                return (await job_row(live_database, job_id)).status is JobStatus.FAILED

            await until(failed)
    row = await job_row(live_database, job_id)
    assert row.error == (
        "The job was interrupted 1 times (its server stopped while it ran); it was not started again."
    )
    assert row.finished_at is not None


async def test_a_clean_shutdown_hands_running_jobs_to_the_next_start(
    live_database: Database, targets: str
) -> None:
    settings = fetch_settings()  # a lease of an hour: only the hand-back lets the next start go on
    user = await make_user(live_database)
    # A page that answers in 2 s unless opened sooner: the shutdown must not wait for it, the next start
    # fetches it at once.
    async with gate(targets, within=2) as slow:
        async with serving_app(create_app(settings, database=live_database)) as client:
            job_id = key((await start(client, [f"{targets}/ok", slow.url], bearer(settings, user)))["id"])

            async def one_in() -> bool:
                return (await job_row(live_database, job_id)).completed == 1

            await until(one_in)
            started = time.perf_counter()
        assert time.perf_counter() - started < 1.0  # the shutdown did not wait for the slow fetch
    handed_back = await job_row(live_database, job_id)
    assert (handed_back.status, handed_back.lease_until, handed_back.attempts) == (JobStatus.RUNNING, None, 0)

    next_start = create_app(fetch_settings(), database=live_database)
    async with serving_app(next_start):
        await runner(next_start).wait(job_id)
    resumed = await job_row(live_database, job_id)
    assert (resumed.status, resumed.completed, resumed.attempts) == (JobStatus.DONE, 2, 1)
