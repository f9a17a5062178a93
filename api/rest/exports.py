"""``/api/v1/fetch-jobs/{id}/results``: a job's results as a page of JSON, or as CSV or NDJSON
files, streamed (``results.csv``, ``results.ndjson``, or the plain path with that ``Accept``).

For a file, the job is looked up (and the reader's right to it checked) before the first byte; the
rows then stream in batches, each read in a short session of its own, for as long as the client
takes.
"""

import csv
import io
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from fastapi.responses import StreamingResponse

from api.db.engine import Database
from api.db.models import FetchResult, Outcome
from api.deps import CurrentCaller, DatabaseDep, SessionDep
from api.negotiation import preferred_media
from api.rest.deprecation import Deprecation
from api.rest.fetch import FetchResultOut
from api.rest.pages import CompiledPagesDep, ItemPage, item_members
from api.rest.routing import Route
from api.services import fetch_jobs, reads

router = APIRouter(prefix="/fetch-jobs/{job_id}", tags=["fetch"], route_class=Route)

COLUMNS = list(FetchResultOut.model_fields)
# A cell that a spreadsheet would take for a formula (CSV injection) is prefixed with a quote.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv_lines(rows: Sequence[FetchResult]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        data = FetchResultOut.model_validate(row).model_dump(mode="json")
        writer.writerow([_csv_cell(data[column]) for column in COLUMNS])
    return buffer.getvalue()


def _ndjson_lines(rows: Sequence[FetchResult]) -> str:
    return "".join(FetchResultOut.model_validate(row).model_dump_json() + "\n" for row in rows)


JSON = "application/json"
CSV = "text/csv"
NDJSON = "application/x-ndjson"
# A job's results, as a page with no next one; a job the reader does not see is a missing row.
RESULTS = reads.Selection(
    reads.Read(
        reads.Relation.JOB,
        0,
        (
            ("items", reads.Read(reads.Relation.RESULTS, 1, item_members(FetchResultOut))),
            ("next_cursor", reads.Constant(None)),
        ),
    )
)
_FILES: dict[int | str, dict[str, Any]] = {
    200: {"content": {CSV: {}, NDJSON: {}}, "description": "The results, in the form `Accept` asks for"}
}


@router.get("/results", response_model=ItemPage[FetchResultOut], responses=_FILES)
async def job_results(
    job_id: uuid.UUID,
    caller: CurrentCaller,
    session: SessionDep,
    database: DatabaseDep,
    compiled: CompiledPagesDep,
    outcome: Outcome | None = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response | ItemPage[FetchResultOut]:
    """The job's results so far, in URL order (at most 100: a job holds no more URLs).

    ``Accept: text/csv`` or ``application/x-ndjson`` gets the file that ``results.csv`` or
    ``results.ndjson`` gives; JSON otherwise."""
    wanted = preferred_media(accept, (JSON, CSV, NDJSON))
    if wanted == CSV:
        return await export_csv(job_id, caller, session, database, outcome)
    if wanted == NDJSON:
        return await export_ndjson(job_id, caller, session, database, outcome)
    answered = await compiled.answer(RESULTS, caller, {"id": job_id}, {"outcome": outcome})
    if answered is not None:
        return answered
    rows = await fetch_jobs.job_results(session, actor=caller, job_id=job_id, outcome=outcome)
    return ItemPage(items=[FetchResultOut.model_validate(row) for row in rows], next_cursor=None)


def _export(
    database: Database,
    job_id: uuid.UUID,
    outcome: Outcome | None,
    media_type: str,
    extension: str,
    render: Callable[[Sequence[FetchResult]], str],
    header: str = "",
) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        if header:
            yield header
        async for batch in fetch_jobs.stream_results(database, job_id, outcome):
            yield render(batch)

    headers = {"Content-Disposition": f'attachment; filename="fetch-job-{job_id}.{extension}"'}
    return StreamingResponse(body(), media_type=media_type, headers=headers)


# The file paths came before ``Accept`` worked on ``/results``: one route serves every form now.
FILE_PATHS = Deprecation(
    since=date(2026, 12, 3),
    sunset=date(2027, 12, 1),
    successor="/api/v1/fetch-jobs/{job_id}/results",
    reason="Deprecated: ask `/results` with `Accept: text/csv` or `application/x-ndjson` instead.",
)


@router.get(
    "/results.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {CSV: {}}}},
    **FILE_PATHS.route(),
)
async def export_csv(
    job_id: uuid.UUID,
    caller: CurrentCaller,
    session: SessionDep,
    database: DatabaseDep,
    outcome: Outcome | None = None,
) -> StreamingResponse:
    """The job's results as CSV, one row per URL in URL order, with a header row."""
    job = await fetch_jobs.get_job(session, actor=caller, job_id=job_id)
    header = ",".join(COLUMNS) + "\r\n"
    return _export(database, job.id, outcome, f"{CSV}; charset=utf-8", "csv", _csv_lines, header)


@router.get(
    "/results.ndjson",
    response_class=StreamingResponse,
    responses={200: {"content": {NDJSON: {}}}},
    **FILE_PATHS.route(),
)
async def export_ndjson(
    job_id: uuid.UUID,
    caller: CurrentCaller,
    session: SessionDep,
    database: DatabaseDep,
    outcome: Outcome | None = None,
) -> StreamingResponse:
    """The job's results as newline-delimited JSON, one object per URL in URL order."""
    job = await fetch_jobs.get_job(session, actor=caller, job_id=job_id)
    return _export(database, job.id, outcome, NDJSON, "ndjson", _ndjson_lines)
