"""Resolvers of fetching: one-shot fetches, and the jobs' root fields."""

from collections.abc import AsyncGenerator

import strawberry
from strawberry.file_uploads import Upload

from api.db.models import JobStatus
from api.ids import NodeType, node_key
from api.services import fetch, fetch_jobs, live
from api.services.commands import build
from api.services.pagination import DEFAULT_PAGE_SIZE, PageRequest
from resolvers.context import Info, signed_in, streamed
from schema.base import connection_of, from_row
from schema.events import FetchJobEvent
from schema.fetch import FetchResult
from schema.nodes import FetchJob, FetchJobConnection


async def fetch_now(info: Info, urls: list[str]) -> list[FetchResult]:
    caller, ctx = signed_in(info), info.context
    results = await fetch.fetch_now(
        ctx.session, settings=ctx.settings, limiter=ctx.limiter, fetcher=ctx.fetcher, actor=caller, urls=urls
    )
    return [from_row(FetchResult, result) for result in results]


async def fetch_job(info: Info, id: strawberry.ID) -> FetchJob | None:
    caller = signed_in(info)
    job = await fetch_jobs.get_job(
        info.context.session, actor=caller, job_id=node_key(id, NodeType.FETCH_JOB)
    )
    return FetchJob.from_model(job)


async def my_fetch_jobs(
    info: Info,
    first: int | None = DEFAULT_PAGE_SIZE,
    after: str | None = None,
    status: JobStatus | None = None,
) -> FetchJobConnection:
    caller = signed_in(info)
    page = build(PageRequest, {"first": first, "after": after})
    found = await fetch_jobs.list_jobs(info.context.session, actor=caller, page=page, status=status)
    return connection_of(found, FetchJob.from_model)


async def start_fetch_job(info: Info, urls: list[str]) -> FetchJob:
    caller, ctx = signed_in(info), info.context
    job = await fetch_jobs.start_job(
        ctx.session, settings=ctx.settings, limiter=ctx.limiter, control=ctx.jobs, actor=caller, urls=urls
    )
    return FetchJob.from_model(job)


async def start_fetch_job_from_file(info: Info, file: Upload) -> FetchJob:
    ctx = info.context
    try:  # the upload is closed whatever the answer, a refused caller's included
        caller = signed_in(info)
        data = await file.read(ctx.settings.upload_max_bytes + 1)  # type: ignore[attr-defined]
    finally:
        await file.close()  # type: ignore[attr-defined]
    urls = fetch.urls_in_file(ctx.settings, data)
    job = await fetch_jobs.start_job(
        ctx.session,
        settings=ctx.settings,
        limiter=ctx.limiter,
        control=ctx.jobs,
        actor=caller,
        urls=urls,
        field="file",
    )
    return FetchJob.from_model(job)


async def cancel_fetch_job(info: Info, id: strawberry.ID) -> FetchJob:
    caller = signed_in(info)
    job = await fetch_jobs.cancel_job(
        info.context.session, actor=caller, job_id=node_key(id, NodeType.FETCH_JOB)
    )
    return FetchJob.from_model(job)


async def fetch_job_events(info: Info, id: strawberry.ID) -> AsyncGenerator[FetchJobEvent, None]:
    caller = signed_in(info)
    updates = await live.job_events(
        info.context.feeds, caller=caller, job_id=node_key(id, NodeType.FETCH_JOB)
    )
    return streamed(info, updates, FetchJobEvent.from_update)


async def my_fetch_job_events(info: Info) -> AsyncGenerator[FetchJobEvent, None]:
    updates = await live.my_job_events(info.context.feeds, caller=signed_in(info))
    return streamed(info, updates, FetchJobEvent.from_update)
