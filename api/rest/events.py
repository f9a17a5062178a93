"""A job's progress as Server-Sent Events, for clients that cannot hold a WebSocket.

Each message is the twin of a ``fetchJobEvents`` event: ``data`` holds the job and the result that
just came in (``null`` in the first message and in status changes), and ``id`` the number of results
counted so far, in the order they came. A client that reconnects with ``Last-Event-ID`` gets the
results it missed, then the rest. A comment line every ``SSE_HEARTBEAT`` seconds keeps proxies from
closing a quiet stream. Database trouble while reading an event ends the stream with an ``error``
event of code ``SERVICE_UNAVAILABLE``: the client reconnects with ``Last-Event-ID`` when it likes.
"""

import asyncio
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse

from api import metrics
from api.db.engine import Database
from api.deps import CurrentCaller, FeedsDep, SessionDep, SettingsDep
from api.errors import DomainError, InvalidInput
from api.rest.fetch import FetchJobOut, FetchResultOut
from api.rest.routing import Route
from api.services import live
from api.services.live import JobUpdate

router = APIRouter(prefix="/fetch-jobs/{job_id}", tags=["fetch"], route_class=Route)

EVENT_STREAM = "text/event-stream"


def _message(update: JobUpdate) -> str:
    result = (
        None
        if update.result is None
        else FetchResultOut.model_validate(update.result).model_dump(mode="json")
    )
    data = {"job": FetchJobOut.model_validate(update.job).model_dump(mode="json"), "result": result}
    kind = "job" if update.result is None else "result"
    return f"id: {update.sequence}\nevent: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _error(code: str, message: str) -> str:
    return f"event: error\ndata: {json.dumps({'code': code, 'message': message})}\n\n"


async def _stream(
    updates: AsyncGenerator[JobUpdate, None], heartbeat: float, database: Database
) -> AsyncIterator[str]:
    """The messages of ``updates``, with a heartbeat whenever none came for ``heartbeat`` seconds.
    The next update is awaited in a task of its own, so a heartbeat does not cancel it."""
    pending: asyncio.Task[JobUpdate] | None = None
    metrics.SSE_STREAMS_OPEN.inc()
    try:
        while True:
            pending = pending or asyncio.ensure_future(anext(updates))
            done, _ = await asyncio.wait([pending], timeout=heartbeat)
            if not done:
                yield ": heartbeat\n\n"
                continue
            update, pending = pending.result(), None
            yield _message(update)
    except StopAsyncIteration:
        return
    except DomainError as exc:
        yield _error(exc.code, exc.message)
    except Exception as exc:
        if (down := database.outage.refusal_for(exc)) is None:
            raise
        yield _error(down.code, down.message)
    finally:
        metrics.SSE_STREAMS_OPEN.dec()
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        await updates.aclose()


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {EVENT_STREAM: {}}, "description": "The job's progress, as it happens."}},
)
async def job_events(
    job_id: uuid.UUID,
    caller: CurrentCaller,
    session: SessionDep,
    feeds: FeedsDep,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Follow a job: its state, then each result as it comes, until it ends (Server-Sent Events)."""
    after = None
    if last_event_id is not None:
        if not last_event_id.isdigit():
            raise InvalidInput({"last_event_id": ["Must be the id of an event of this stream."]})
        after = int(last_event_id)
    updates = await live.job_events(feeds, caller=caller, job_id=job_id, after=after, session=session)
    return StreamingResponse(
        _stream(updates, settings.sse_heartbeat, feeds.database),
        media_type=EVENT_STREAM,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
