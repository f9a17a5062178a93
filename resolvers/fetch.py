"""Resolvers of fetching: one-shot fetches, jobs, their owners and results.

The schema modules of jobs and users import this one back (their fields resolve here), so it refers
to them as modules and its annotations are evaluated when the schema is built, not at import.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator

import strawberry
from strawberry.file_uploads import Upload

from api.db.models import JobStatus
from api.errors import InvalidInput, NotFound
from api.fetcher import Outcome
from api.ids import from_global_id
from api.services import fetch, fetch_jobs, live
from api.services.commands import build
from api.services.pagination import DEFAULT_PAGE_SIZE, PageRequest
from resolvers.context import Info, signed_in, streamed
from schema import fetch as fetch_schema
from schema import users as user_schema
from schema.base import connection_of


def job_key(global_id: strawberry.ID) -> uuid.UUID:
    decoded = from_global_id(global_id)
    if decoded is None or decoded[0] != "FetchJob":
        raise InvalidInput({"id": ["Not the id of a fetch job."]})
    return decoded[1]


async def fetch_now(info: Info, urls: list[str]) -> list[fetch_schema.FetchResult]:
    ctx = info.context
    results = await fetch.fetch_now(
        ctx.session, ctx.settings, ctx.attempt.limiter, ctx.fetcher, signed_in(info), urls
    )
    return [fetch_schema.FetchResult.from_result(result) for result in results]


async def fetch_job(info: Info, id: strawberry.ID) -> fetch_schema.FetchJob | None:
    job = await fetch_jobs.get_job(info.context.session, signed_in(info), job_key(id))
    return fetch_schema.FetchJob.from_model(job)


async def my_fetch_jobs(
    info: Info,
    first: int | None = DEFAULT_PAGE_SIZE,
    after: str | None = None,
    status: JobStatus | None = None,
) -> fetch_schema.FetchJobConnection:
    page = build(PageRequest, {"first": first, "after": after})
    found = await fetch_jobs.list_jobs(info.context.session, signed_in(info), page, status=status)
    return connection_of(found, fetch_schema.FetchJob.from_model)


async def start_fetch_job(info: Info, urls: list[str]) -> fetch_schema.FetchJob:
    ctx = info.context
    job = await fetch_jobs.start_job(
        ctx.session, ctx.settings, ctx.attempt.limiter, ctx.jobs, signed_in(info), urls
    )
    return fetch_schema.FetchJob.from_model(job)


async def start_fetch_job_from_file(info: Info, file: Upload) -> fetch_schema.FetchJob:
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
    return fetch_schema.FetchJob.from_model(job)


async def cancel_fetch_job(info: Info, id: strawberry.ID) -> fetch_schema.FetchJob:
    caller = signed_in(info)
    job = await fetch_jobs.cancel_job(info.context.session, caller, job_key(id))
    return fetch_schema.FetchJob.from_model(job)


async def job_owner(job: fetch_schema.FetchJob, info: Info) -> user_schema.User:
    row = await info.context.loaders.users.load(job.owner_key)
    if row is None:
        raise NotFound("No such user.")
    return user_schema.User.from_model(row)


async def job_results(
    job: fetch_schema.FetchJob, info: Info, outcome: Outcome | None
) -> list[fetch_schema.FetchResult]:
    rows = await info.context.loaders.results.load((job.key, outcome))
    return [fetch_schema.FetchResult.from_result(row) for row in rows]


async def user_fetch_jobs(
    user: user_schema.User, info: Info, first: int | None, after: str | None, status: JobStatus | None
) -> fetch_schema.FetchJobConnection:
    page = build(PageRequest, {"first": first, "after": after})
    found = await info.context.loaders.jobs_of_owners.load((user.key, page, status))
    return connection_of(found, fetch_schema.FetchJob.from_model)


async def fetch_job_events(info: Info, id: strawberry.ID) -> AsyncGenerator[fetch_schema.FetchJobEvent, None]:
    updates = await live.job_events(info.context.feeds, signed_in(info), job_key(id))
    return streamed(info, updates, fetch_schema.FetchJobEvent.from_update)


async def my_fetch_job_events(info: Info) -> AsyncGenerator[fetch_schema.FetchJobEvent, None]:
    updates = await live.my_job_events(info.context.feeds, signed_in(info))
    return streamed(info, updates, fetch_schema.FetchJobEvent.from_update)
