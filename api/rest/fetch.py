"""``/api/v1/fetch`` and ``/api/v1/fetch-jobs``: fetching now, and fetch jobs, over the fetch services."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import UploadFile

from api.db import models
from api.db.models import Outcome
from api.deps import BodyReadFirst, CurrentCaller, FetcherDep, JobsDep, LimiterDep, SessionDep, SettingsDep
from api.errors import InvalidInput
from api.ids import NodeType
from api.problems import refusals
from api.rest.pages import CompiledPagesDep, ItemPage, listing, page_response
from api.rest.resources import Resource
from api.rest.routing import Route
from api.services import fetch, fetch_jobs, reads
from api.services.commands import FetchJobCreate, build
from api.services.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageRequest

router = APIRouter(tags=["fetch"], route_class=Route)


class FetchResultOut(BaseModel):
    # Read from a fresh result or a stored one: both carry these fields by the same names.
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "position": 0,
                    "url": "https://example.com/",
                    "outcome": "OK",
                    "status_code": 200,
                    "final_url": "https://example.com/",
                    "content_type": "text/html; charset=UTF-8",
                    "bytes": 1256,
                    "elapsed_ms": 84.5,
                    "error": None,
                    "fetched_at": "2026-12-01T09:32:00.120000Z",
                }
            ]
        },
    )

    position: int
    url: str
    outcome: Outcome
    status_code: int | None
    final_url: str | None
    content_type: str | None
    bytes: int | None
    elapsed_ms: float | None
    error: str | None
    fetched_at: datetime | None


class FetchJobOut(Resource):
    node_type = NodeType.FETCH_JOB
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0193a6e6-02f1-7b55-a1c2-d3e4f5a6b7c8",
                    "node_id": "RmV0Y2hKb2I6MDE5M2E2ZTYtMDJmMS03YjU1LWExYzItZDNlNGY1YTZiN2M4",
                    "owner_id": "0193a6e4-4b7e-7c3a-9f1e-3c5d2a1b0c9d",
                    "status": "RUNNING",
                    "total": 3,
                    "completed": 1,
                    "error": None,
                    "created_at": "2026-12-01T09:32:00Z",
                    "started_at": "2026-12-01T09:32:00.050000Z",
                    "finished_at": None,
                }
            ]
        }
    )

    owner_id: uuid.UUID
    status: models.JobStatus
    total: int
    completed: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@router.get("/fetch", responses=refusals(429))
async def fetch_now(
    caller: CurrentCaller,
    session: SessionDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    fetcher: FetcherDep,
    # Not required here: the service refuses an empty list, after it has checked the caller's scopes.
    urls: Annotated[list[str], Query(description="A URL to fetch; repeat for more (1 to 100).")] = [],  # noqa: B006 (FastAPI copies a default per request)
) -> ItemPage[FetchResultOut]:
    """Fetch the URLs now and answer when every result is in (nothing is stored)."""
    results = await fetch.fetch_now(
        session, settings=settings, limiter=limiter, fetcher=fetcher, actor=caller, urls=urls
    )
    return ItemPage(items=[FetchResultOut.model_validate(r) for r in results], next_cursor=None)


_START_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {"schema": FetchJobCreate.model_json_schema()},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
    },
}


@router.post(
    "/fetch-jobs",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={"requestBody": _START_BODY},
    responses=refusals(413, 422, 429),
)
async def start_job(
    _body: BodyReadFirst,
    request: Request,
    response: Response,
    caller: CurrentCaller,
    session: SessionDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    jobs: JobsDep,
) -> FetchJobOut:
    """Start fetching in the background and answer at once; follow ``Location`` for progress.

    Send ``{"urls": [...]}`` as JSON, or a text file of URLs (one a line, ``#`` for comments) as the
    multipart field ``file``.
    """
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        urls, field = (
            fetch.urls_in_file(settings, await _uploaded(request, settings.upload_max_bytes)),
            "file",
        )
    else:
        urls, field = build(FetchJobCreate, await _json(request)).urls, "urls"
    job = await fetch_jobs.start_job(
        session, settings=settings, limiter=limiter, control=jobs, actor=caller, urls=urls, field=field
    )
    response.headers["Location"] = str(request.url_for("read_job", job_id=job.id))
    return FetchJobOut.model_validate(job)


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise InvalidInput({"__root__": ["The body is not JSON."]}) from None


async def _uploaded(request: Request, limit: int) -> bytes:
    """The first ``limit + 1`` bytes of the ``file`` field (enough to tell it is too large)."""
    async with request.form(max_files=1, max_fields=10) as form:  # a malformed body is Starlette's 400
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput({"file": ["Send the URLs as a file in the multipart field named file."]})
        return await upload.read(limit + 1)


JOBS = listing(reads.Relation.MY_JOBS, FetchJobOut)


@router.get("/fetch-jobs", response_model=ItemPage[FetchJobOut])
async def list_jobs(
    request: Request,
    response: Response,
    caller: CurrentCaller,
    session: SessionDep,
    compiled: CompiledPagesDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    status: models.JobStatus | None = None,
) -> Response | ItemPage[FetchJobOut]:
    """The caller's jobs, newest first, optionally those in one status; follow ``next_cursor`` or the
    ``Link`` header for older ones."""
    answered = await compiled.answer(JOBS, caller, {"first": limit, "after": cursor, "status": status})
    if answered is not None:
        return answered
    page = await fetch_jobs.list_jobs(
        session, actor=caller, page=PageRequest(first=limit, after=cursor), status=status
    )
    return page_response(request, response, page, FetchJobOut.model_validate)


@router.get("/fetch-jobs/{job_id}")
async def read_job(job_id: uuid.UUID, caller: CurrentCaller, session: SessionDep) -> FetchJobOut:
    """One of the caller's jobs (any, for an admin)."""
    return FetchJobOut.model_validate(await fetch_jobs.get_job(session, actor=caller, job_id=job_id))


@router.delete("/fetch-jobs/{job_id}", responses=refusals(409))
async def cancel_job(job_id: uuid.UUID, caller: CurrentCaller, session: SessionDep) -> FetchJobOut:
    """Cancel a job: its fetches in flight stop, and the URLs not fetched get ``CANCELLED`` results.
    The job stays, with the results it has; the answer is the job as it now stands."""
    return FetchJobOut.model_validate(await fetch_jobs.cancel_job(session, actor=caller, job_id=job_id))
