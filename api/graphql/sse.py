"""GraphQL over Server-Sent Events, as the graphql-sse protocol has it, at ``/graphql/stream``.

- **Distinct connections**: a ``GET`` or ``POST`` that accepts ``text/event-stream`` runs one
  operation (any kind) and streams its results as ``next`` events, then ``complete``. Errors before
  execution come as a ``next`` event too, as the protocol asks.
- **Single connection**: a ``PUT`` reserves a stream and answers ``201`` with a token; one ``GET``
  with that token (the ``X-GraphQL-Event-Stream-Token`` header, or ``?token=`` for a browser's
  ``EventSource``) opens it; each ``POST`` with the token runs an operation whose results come on
  the stream under its ``extensions.operationId`` (``202``); ``DELETE ?operationId=`` stops one.

Sign-in is the socket's: ``Authorization: Bearer`` or ``X-API-Key``, checked when the stream (or the
reservation) begins; each subscription re-checks its caller on every event, and a caller who is
signed out meanwhile gets an ``UNAUTHENTICATED`` result and the end of the stream. A reservation's
token is the short-lived credential of the stream it opens: it is good for one connection within
``RESERVATION_TTL`` seconds and is bound to the caller who reserved it, so a browser need not put a
long-lived token in a URL. Each operation and each event has a session of its own (``SocketContext``);
a stream holds none while it waits. A single connection runs at most ``WS_MAX_SUBSCRIPTIONS``
operations at once, as a socket does. Reservations live in the worker that made them: with several
workers, single connection mode needs a load balancer that keeps a client on one.
"""

import asyncio
import json
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.requests import HTTPConnection
from strawberry.http import process_result

from api import metrics
from api.deps import API_KEY_HEADER
from api.errors import DomainError, InvalidInput, NotFound, Unauthenticated
from api.graphql.context import SocketContext, socket_credentials
from api.services.callers import Caller

router = APIRouter(prefix="/graphql/stream", tags=["graphql"])

EVENT_STREAM = "text/event-stream"
TOKEN_HEADER = "x-graphql-event-stream-token"
RESERVATION_TTL = 60.0  # seconds a reservation waits for its stream
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def _event(name: str, data: object | None) -> str:
    return f"event: {name}\ndata: {'' if data is None else json.dumps(data, separators=(',', ':'))}\n\n"


@dataclass
class Reservation:
    """A stream reserved by ``caller``: its messages, once connected, and the operations it runs."""

    caller: Caller | None
    expires: float
    limit: int  # messages waiting for the client before the stream is ended as too slow
    connected: bool = False
    messages: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    operations: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    stopping: list[asyncio.Task[None]] = field(default_factory=list)  # cancelled, maybe not ended yet

    def send(self, message: str) -> None:
        """Queue a message for the stream; past ``limit`` waiting, the client is not keeping up, and
        its stream ends (with a last event saying so) rather than memory growing."""
        if self.messages.qsize() < self.limit:
            self.messages.put_nowait(message)
            return
        while not self.messages.empty():
            self.messages.get_nowait()
        self.messages.put_nowait(
            _event("error", {"code": "TOO_SLOW", "message": "The stream fell too far behind."})
        )
        self.close()

    def close(self) -> None:
        """End the stream (once its messages are read) and stop its operations."""
        for task in self.operations.values():
            task.cancel()
        self.stopping.extend(self.operations.values())
        self.operations.clear()
        self.messages.put_nowait(None)

    async def closed(self) -> None:
        """``close``, and wait for its operations to have ended (their sessions closed)."""
        self.close()
        await asyncio.gather(*self.stopping, return_exceptions=True)
        self.stopping.clear()


class Reservations:
    """The reservations of this worker, by token; ones never connected are forgotten once expired."""

    def __init__(self) -> None:
        self._by_token: dict[str, Reservation] = {}

    def make(self, caller: Caller | None, limit: int) -> str:
        now = time.monotonic()
        for token in [t for t, r in self._by_token.items() if not r.connected and r.expires <= now]:
            del self._by_token[token]
        token = secrets.token_urlsafe(32)
        self._by_token[token] = Reservation(caller, now + RESERVATION_TTL, limit)
        return token

    def get(self, token: str | None) -> Reservation | None:
        reservation = self._by_token.get(token or "")
        if reservation is None or (not reservation.connected and reservation.expires <= time.monotonic()):
            return None
        return reservation

    async def drop(self, token: str) -> None:
        reservation = self._by_token.pop(token, None)
        if reservation is not None:
            await reservation.closed()

    async def close(self) -> None:
        for token in list(self._by_token):
            await self.drop(token)


def _context(connection: HTTPConnection) -> SocketContext:
    """A stream's context: the socket's, with the app's services, signed in by ``_sign_in``."""
    state = connection.app.state
    return SocketContext(
        database=state.database,
        signins=state.signins,
        handshake={},
        settings=state.settings,
        limiter=state.limiter,
        client=connection.client.host if connection.client else "unknown",
        fetcher=state.fetcher,
        jobs=state.jobs,
        feeds=state.feeds,
    )


async def _signed_in(connection: HTTPConnection) -> SocketContext:
    """A context signed in with the request's credentials (``Unauthenticated`` if they fail)."""
    context = _context(connection)
    authorization = connection.headers.get("authorization")
    handshake = {"bearer": None, "api_key": connection.headers.get(API_KEY_HEADER)}
    params = {} if authorization is None else {"Authorization": authorization}
    bearer, api_key = socket_credentials(params, handshake)
    await context.sign_in_with(bearer, api_key)
    return context


@dataclass(frozen=True)
class Operation:
    query: str | None
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None


async def _operation(request: Request) -> Operation:
    """The GraphQL request of a GET's query string or a JSON POST's body (``InvalidInput`` if it is
    not one)."""
    if request.method == "GET":
        raw: dict[str, Any] = dict(request.query_params)
        for key in ("variables", "extensions"):
            if raw.get(key):
                try:
                    raw[key] = json.loads(raw[key])
                except ValueError:
                    raise InvalidInput({key: ["Must be JSON."]}) from None
    else:
        try:
            raw = json.loads(await request.body())
        except (ValueError, RecursionError):
            raise InvalidInput({"body": ["Must be a JSON object."]}) from None
        if not isinstance(raw, dict):
            raise InvalidInput({"body": ["Must be a JSON object (batches are not streamed)."]})
    query, variables, name = raw.get("query"), raw.get("variables"), raw.get("operationName")
    extensions = raw.get("extensions")
    if raw.get("documentId") is not None:  # carried as the router carries it (``Documents.resolve``)
        extensions = {**(extensions if isinstance(extensions, dict) else {}), "documentId": raw["documentId"]}
    problems = {
        key: [message]
        for key, value, kind, message in (
            ("query", query, str, "Must be a string."),
            ("variables", variables, dict, "Must be an object."),
            ("operationName", name, str, "Must be a string."),
            ("extensions", extensions, dict, "Must be an object."),
        )
        if value is not None and not isinstance(value, kind)
    }
    if problems:
        raise InvalidInput(problems)
    return Operation(query, variables, name, extensions)


async def _results(
    request: Request, context: SocketContext, operation: Operation
) -> AsyncGenerator[dict[str, Any], None]:
    """The results of ``operation`` as GraphQL responses, each in a scope (a session) of its own; a
    caller signed out meanwhile ends it with ``UNAUTHENTICATED``."""
    schema = request.app.state.graphql_schema
    documents = request.app.state.documents
    signed_out: asyncio.Queue[str] = asyncio.Queue()

    async def close(code: int, reason: str) -> None:
        signed_out.put_nowait(reason)

    context.close_socket = close
    async with context.scope():  # as a socket's operation: its events open scopes of their own
        try:
            query = await documents.resolve(operation.query, operation.extensions, context)
        except DomainError as refusal:
            yield {"errors": [{"message": refusal.message, "extensions": refusal.extensions()}]}
            return
        stream = await schema.stream(
            query,
            variable_values=operation.variables,
            context_value=context,
            operation_name=operation.operation_name,
            operation_extensions=operation.extensions,
        )
        async with aclosing(stream):
            async for result in stream:
                if not signed_out.empty():
                    break
                yield dict(process_result(result))
    if not signed_out.empty():
        message = signed_out.get_nowait()
        yield {"errors": [{"message": message, "extensions": {"code": Unauthenticated.code}}]}


def _refused(refusal: DomainError) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": refusal.message, "extensions": refusal.extensions()}]},
        status_code=refusal.status,
    )


async def _with_heartbeat(messages: AsyncIterator[str], heartbeat: float) -> AsyncIterator[str]:
    """``messages`` with a comment line whenever none came for ``heartbeat`` seconds; the next one is
    awaited in a task of its own, so a heartbeat does not cancel it."""
    pending: asyncio.Task[str] | None = None
    metrics.SSE_STREAMS_OPEN.inc()
    try:
        while True:
            pending = pending or asyncio.ensure_future(anext(messages))
            done, _ = await asyncio.wait([pending], timeout=heartbeat)
            if not done:
                yield ": heartbeat\n\n"
                continue
            try:
                message = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield message
    finally:
        metrics.SSE_STREAMS_OPEN.dec()
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)


def _streaming(request: Request, messages: AsyncIterator[str]) -> StreamingResponse:
    heartbeat = request.app.state.settings.sse_heartbeat
    return StreamingResponse(
        _with_heartbeat(messages, heartbeat), media_type=EVENT_STREAM, headers=STREAM_HEADERS
    )


@router.put(
    "", status_code=201, response_class=PlainTextResponse, summary="Reserve a single-connection stream"
)
async def reserve(request: Request) -> Response:
    """Reserve a stream for the caller; the token in the body opens it once, within a minute."""
    try:
        context = await _signed_in(request)
    except Unauthenticated as refusal:
        return _refused(refusal)
    settings = request.app.state.settings
    token = request.app.state.sse_reservations.make(context.caller, settings.subscription_queue_size)
    return PlainTextResponse(token, status_code=201, headers={"Cache-Control": "no-store"})


@router.get("", response_class=StreamingResponse, summary="Open a reserved stream, or stream one operation")
async def open_stream(request: Request) -> Response:
    """With a reservation's token: the stream of its operations. Otherwise: one operation from the
    query string, streamed (distinct connections mode)."""
    token = request.headers.get(TOKEN_HEADER) or request.query_params.get("token")
    if (
        token is not None
        and request.query_params.get("query") is None
        and request.query_params.get("documentId") is None
    ):
        return _connect(request, token)
    return await _distinct(request, token)


@router.post("", response_class=StreamingResponse, status_code=200, summary="Run an operation over SSE")
async def run_operation(request: Request) -> Response:
    """With a reservation's token: run the operation on its stream (202). Otherwise: run it and
    stream its results in the response (distinct connections mode)."""
    token = request.headers.get(TOKEN_HEADER)
    if token is None:
        return await _distinct(request, None)
    reservation = request.app.state.sse_reservations.get(token)
    if reservation is None or not reservation.connected:
        return _refused(NotFound("No open stream for this token: reserve one (PUT) and open it (GET) first."))
    try:
        operation = await _operation(request)
    except InvalidInput as refusal:
        return _refused(refusal)
    operation_id = (operation.extensions or {}).get("operationId")
    if not isinstance(operation_id, str) or not operation_id:
        return _refused(InvalidInput({"extensions.operationId": ["Each operation needs an id of its own."]}))
    if operation_id in reservation.operations:
        return _refused(InvalidInput({"extensions.operationId": ["An operation with this id is running."]}))
    if len(reservation.operations) >= request.app.state.settings.ws_max_subscriptions:
        return _refused(InvalidInput({"extensions.operationId": ["Too many operations on this stream."]}))
    context = _context(request)
    context.sign_in(reservation.caller)
    task = asyncio.get_running_loop().create_task(
        _run_on(request, reservation, context, operation, operation_id)
    )
    reservation.operations[operation_id] = task
    return Response(status_code=202)


@router.delete("", summary="Stop an operation of a reserved stream")
async def stop_operation(request: Request) -> Response:
    reservation = request.app.state.sse_reservations.get(request.headers.get(TOKEN_HEADER))
    if reservation is None:
        return _refused(NotFound("No open stream for this token."))
    task = reservation.operations.pop(request.query_params.get("operationId", ""), None)
    if task is not None:
        task.cancel()
    return Response(status_code=200)


async def _run_on(
    request: Request,
    reservation: Reservation,
    context: SocketContext,
    operation: Operation,
    operation_id: str,
) -> None:
    try:
        async with aclosing(_results(request, context, operation)) as results:
            async for payload in results:
                reservation.send(_event("next", {"id": operation_id, "payload": payload}))
        reservation.send(_event("complete", {"id": operation_id}))
    finally:
        reservation.operations.pop(operation_id, None)


def _connect(request: Request, token: str) -> Response:
    reservations: Reservations = request.app.state.sse_reservations
    reservation = reservations.get(token)
    if reservation is None:
        return _refused(NotFound("No such reservation, or it ran out: reserve a stream again (PUT)."))
    if reservation.connected:
        return _refused(InvalidInput({"token": ["This reservation's stream is open already."]}))
    reservation.connected = True

    async def messages() -> AsyncIterator[str]:
        try:
            while (message := await reservation.messages.get()) is not None:
                yield message
        finally:
            await reservations.drop(token)

    return _streaming(request, messages())


async def _distinct(request: Request, token: str | None) -> Response:
    if EVENT_STREAM not in request.headers.get("accept", ""):
        return _refused(InvalidInput({"accept": [f"This endpoint answers {EVENT_STREAM}."]}))
    try:
        operation = await _operation(request)
        if token is not None:  # a browser's EventSource, signed in by its reservation
            reservation = request.app.state.sse_reservations.get(token)
            if reservation is None or reservation.connected:
                raise Unauthenticated("No such reservation, or it is spent: reserve a stream again (PUT).")
            context = _context(request)
            context.sign_in(reservation.caller)
            await request.app.state.sse_reservations.drop(token)
        else:
            context = await _signed_in(request)
    except DomainError as refusal:
        return _refused(refusal)

    async def messages() -> AsyncIterator[str]:
        async with aclosing(_results(request, context, operation)) as results:
            async for payload in results:
                yield _event("next", payload)
        yield _event("complete", None)

    return _streaming(request, messages())
