"""Resolvers of fetching: one-shot fetches, and the jobs' root fields."""

import uuid
from collections.abc import AsyncGenerator

import strawberry
from strawberry.file_uploads import Upload

from api.db.models import JobStatus
from api.errors import InvalidInput
from api.ids import from_global_id
from api.services import fetch, fetch_jobs, live
from api.services.commands import build
from api.services.pagination import DEFAULT_PAGE_SIZE, PageRequest
from resolvers.context import Info, signed_in, streamed
from schema.base import connection_of
from schema.events import FetchJobEvent
from schema.fetch import FetchResult
from schema.nodes import FetchJob, FetchJobConnection


def job_key(global_id: strawberry.ID) -> uuid.UUID:
    decoded = from_global_id(global_id)
    if decoded is None or decoded[0] != "FetchJob":
        raise InvalidInput({"id": ["Not the id of a fetch job."]})
    return decoded[1]


async def fetch_now(info: Info, urls: list[str]) -> list[FetchResult]:
    ctx = info.context
    results = await fetch.fetch_now(
        ctx.session, ctx.settings, ctx.attempt.limiter, ctx.fetcher, signed_in(info), urls
    )
    return [FetchResult.from_result(result) for result in results]


async def fetch_job(info: Info, id: strawberry.ID) -> FetchJob | None:
    job = await fetch_jobs.get_job(info.context.session, signed_in(info), job_key(id))
    return FetchJob.from_model(job)


async def my_fetch_jobs(
    info: Info,
    first: int | None = DEFAULT_PAGE_SIZE,
    after: str | None = None,
    status: JobStatus | None = None,
) -> FetchJobConnection:
    page = build(PageRequest, {"first": first, "after": after})
    found = await fetch_jobs.list_jobs(info.context.session, signed_in(info), page, status=status)
    return connection_of(found, FetchJob.from_model)


async def start_fetch_job(info: Info, urls: list[str]) -> FetchJob:
    ctx = info.context
    job = await fetch_jobs.start_job(
        ctx.session, ctx.settings, ctx.attempt.limiter, ctx.jobs, signed_in(info), urls
    )
    return FetchJob.from_model(job)


async def start_fetch_job_from_file(info: Info, file: Upload) -> FetchJob:
    ctx = info.context
    caller = signed_in(info)
    try:
        data = await file.read(ctx.settings.upload_max_bytes + 1)  # type: ignore[attr-defined]
    finally:
        await file.close()  # type: ignore[attr-defined]
    urls = fetch.urls_in_file(ctx.settings, data)
    job = await fetch_jobs.start_job(
        ctx.session, ctx.settings, ctx.attempt.limiter, ctx.jobs, caller, urls, field="file"
    )
    return FetchJob.from_model(job)


async def cancel_fetch_job(info: Info, id: strawberry.ID) -> FetchJob:
    caller = signed_in(info)
    job = await fetch_jobs.cancel_job(info.context.session, caller, job_key(id))
    return FetchJob.from_model(job)


async def fetch_job_events(info: Info, id: strawberry.ID) -> AsyncGenerator[FetchJobEvent, None]:
    updates = await live.job_events(info.context.feeds, signed_in(info), job_key(id))
    return streamed(info, updates, FetchJobEvent.from_update)


async def my_fetch_job_events(info: Info) -> AsyncGenerator[FetchJobEvent, None]:
    updates = await live.my_job_events(info.context.feeds, signed_in(info))
    return streamed(info, updates, FetchJobEvent.from_update)
