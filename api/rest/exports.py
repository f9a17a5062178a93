"""``/api/v1/fetch-jobs/{id}/results.csv`` and ``.ndjson``: a job's results as files, streamed.

The job is looked up (and the reader's right to it checked) before the first byte; the rows then
stream in batches, each read in a short session of its own, for as long as the client takes.
"""

import csv
import io
import uuid
from collections.abc import AsyncIterator, Callable, Sequence

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from api.db.engine import Database
from api.db.models import FetchResult
from api.deps import CurrentCaller, DatabaseDep, SessionDep
from api.rest.fetch import FetchResultOut
from api.services import fetch_jobs

router = APIRouter(prefix="/fetch-jobs/{job_id}", tags=["fetch"])

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


def _export(
    database: Database,
    job_id: uuid.UUID,
    media_type: str,
    extension: str,
    render: Callable[[Sequence[FetchResult]], str],
    header: str = "",
) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        if header:
            yield header
        async for batch in fetch_jobs.stream_results(database, job_id):
            yield render(batch)

    disposition = f'attachment; filename="fetch-job-{job_id}.{extension}"'
    return StreamingResponse(body(), media_type=media_type, headers={"Content-Disposition": disposition})


@router.get("/results.csv", response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
async def export_csv(
    job_id: uuid.UUID, caller: CurrentCaller, session: SessionDep, database: DatabaseDep
) -> StreamingResponse:
    """The job's results as CSV, one row per URL in URL order, with a header row."""
    job = await fetch_jobs.get_job(session, actor=caller, job_id=job_id)
    header = ",".join(COLUMNS) + "\r\n"
    return _export(database, job.id, "text/csv; charset=utf-8", "csv", _csv_lines, header)


@router.get(
    "/results.ndjson",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def export_ndjson(
    job_id: uuid.UUID, caller: CurrentCaller, session: SessionDep, database: DatabaseDep
) -> StreamingResponse:
    """The job's results as newline-delimited JSON, one object per URL in URL order."""
    job = await fetch_jobs.get_job(session, actor=caller, job_id=job_id)
    return _export(database, job.id, "application/x-ndjson", "ndjson", _ndjson_lines)
