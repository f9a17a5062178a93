"""The ``/graphql`` endpoint: Strawberry's router with our context getter, socket handlers and
socket sign-in, answering as the GraphQL over HTTP specification asks."""

import asyncio
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import timedelta
from typing import Any, cast

from cross_web import AsyncHTTPRequestAdapter
from cross_web import HTTPException as StrawberryHTTPException
from graphql import GraphQLError
from graphql.execution import ExperimentalIncrementalExecutionResults, SubsequentIncrementalExecutionResult
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from api import ide
from api.deps import API_KEY_HEADER
from api.errors import DomainError, RateLimited, TimedOut, Unauthenticated
from api.graphql import compiled
from api.graphql.compiled import GRAPHQL_RESPONSE
from api.graphql.context import SocketContext, get_context, socket_credentials
from api.graphql.documents import Documents
from api.graphql.errors import (
    escaped_errors_rendered,
    log_unexpected,
    refused_by_database,
    render_later,
    request_error_extensions,
)
from api.graphql.parsing import only_reads, root_fields, uses_incremental_delivery
from api.graphql.relay import Relays
from api.graphql.schema import Schema
from api.graphql.sockets import LegacyWSHandler, TransportWSHandler
from api.settings import Settings
from resolvers.context import Context

FETCH_NOW = "fetch"  # the root field that fetches URLs while the request waits
MULTIPART = "multipart/mixed"
NO_PAYLOAD = cast(UnsetType, UNSET)  # a connection_ack without a payload
PREFLIGHT_HEADERS = ("GraphQL-Require-Preflight", "Apollo-Require-Preflight", "X-Apollo-Operation-Name")
SUBSCRIPTIONS_ELSEWHERE = (
    "Subscriptions are served over WebSocket (graphql-transport-ws or graphql-ws on this path) and "
    "as Server-Sent Events (graphql-sse at /graphql/stream), not over plain HTTP."
)


def _accepts_graphql_response(request: Request) -> bool:
    return GRAPHQL_RESPONSE in request.headers.get("accept", "")


_ENTRY_FIELDS = {"query": str, "operationName": str, "variables": dict, "extensions": dict, "documentId": str}


def _entry_problem(entry: object) -> str | None:
    """What is wrong with the shape of one operation of a batch (Strawberry checks a single one's)."""
    if not isinstance(entry, dict):
        return "it must be an object."
    for name, kind in _ENTRY_FIELDS.items():
        if entry.get(name) is not None and not isinstance(entry[name], kind):
            return f"its {name} must be of type {kind.__name__}."
    return None


class IncrementalNotAccepted(DomainError):
    status = 406
    title = (
        "The operation uses @defer or @stream, whose results come in parts: send "
        "Accept: multipart/mixed to receive them."
    )


async def _rendered(
    parts: AsyncGenerator[SubsequentIncrementalExecutionResult, None], session: AsyncExitStack
) -> AsyncGenerator[SubsequentIncrementalExecutionResult, None]:
    """The later parts of an operation's results, their errors rendered as its first ones are; its
    session ends (committed, or rolled back on a failure) with the last of them, or when the client
    goes away."""
    try:
        async for part in parts:
            for piece in (*(part.incremental or ()), *(part.completed or ())):
                piece.errors = render_later(piece.errors)
            yield part
    except BaseException as exc:
        await session.__aexit__(type(exc), exc, exc.__traceback__)
        raise
    else:
        await session.aclose()
    finally:
        await parts.aclose()


class GraphQLApp(GraphQLRouter[Context, None]):
    """Strawberry's router, answering as GraphQL over HTTP asks.

    With ``Accept: application/graphql-response+json`` a document that cannot run (it does not parse
    or validate, or its variables do not fit) is a 400 with no ``data`` entry; plain JSON clients get
    200 as before. Malformed requests get a GraphQL-shaped error body, not plain text.
    """

    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, schema: Schema, settings: Settings, documents: Documents, **kwargs: Any) -> None:
        super().__init__(
            schema,
            context_getter=get_context,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            connection_init_wait_timeout=timedelta(seconds=settings.ws_connection_init_timeout),
            keep_alive=True,
            keep_alive_interval=settings.ws_ping_interval,
            multipart_uploads_enabled=True,
            **kwargs,
        )
        self.max_subscriptions_per_connection = settings.ws_max_subscriptions
        self.allowed_origins = frozenset(settings.cors_origins)
        self.relays = Relays()  # the subscriptions running for this app's sockets
        self.compiled_schema = schema if settings.compiled_reads else None
        self.max_tokens = settings.graphql_max_tokens
        self.metrics_enabled = settings.metrics_enabled
        self.documents = documents
        self.max_batch = settings.graphql_max_batch
        self.timeout = settings.graphql_timeout

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Sign the socket in with the credentials of its ``connection_init``; refused ones close it
        with 4403. A socket without credentials may still run what needs none."""
        assert isinstance(context, SocketContext)
        try:
            bearer, api_key = socket_credentials(context.connection_params or {}, context.handshake)
            await context.sign_in_with(bearer, api_key)
        except Unauthenticated as exc:
            raise ConnectionRejectionError({"message": exc.message, "code": exc.code}) from None
        return NO_PAYLOAD

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        """GraphiQL, from our own origin when its files are installed (``api.ide``)."""
        return ide.tools(request).graphiql(request)

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        """As Strawberry's, but not for a GET naming its document by hash instead of sending it."""
        named = any(request.query_params.get(name) is not None for name in ("documentId", "extensions"))
        return not named and super().should_render_graphql_ide(request)

    async def parse_multipart(self, request: AsyncHTTPRequestAdapter) -> dict[str, str]:
        """Uploads (the GraphQL multipart request specification), from scripts and apps only.

        A browser sends a cross-site ``multipart/form-data`` POST without a CORS preflight, with the
        user's cookies, so a page elsewhere could start a job in their name. Asking for a header that
        no plain form can set, as Apollo's CSRF prevention does, forces that preflight.
        """
        if not any(request.headers.get(name) for name in PREFLIGHT_HEADERS):
            raise StrawberryHTTPException(
                400,
                "Multipart requests must carry a non-empty "
                f"{' or '.join(PREFLIGHT_HEADERS)} header (CSRF protection).",
            )
        return await super().parse_multipart(request)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """As Strawberry's, with a ``documentId`` (which it drops) carried in the extensions, where
        APQ's hash is: ``execute_single`` finds the document named either way."""
        if request.method == "POST" and (await request.get_body()).lstrip()[:1] == b"[":
            batch = self.parse_json(await request.get_body())
            if isinstance(batch, list) and len(batch) > self.max_batch:
                raise StrawberryHTTPException(
                    400, f"A batch holds at most {self.max_batch} operations; this one has {len(batch)}."
                )
            for number, entry in enumerate(batch if isinstance(batch, list) else [], start=1):
                if (problem := _entry_problem(entry)) is not None:
                    raise StrawberryHTTPException(400, f"Operation {number} of the batch: {problem}")
        parsed = await super().parse_http_body(request)
        if not any(data.query is None for data in (parsed if isinstance(parsed, list) else [parsed])):
            return parsed
        if request.method == "GET":
            given: object = {"documentId": request.query_params.get("documentId")}
        else:
            given = self.parse_json(await request.get_body())
        items = given if isinstance(given, list) else [given]
        for data, item in zip(parsed if isinstance(parsed, list) else [parsed], items, strict=True):
            document_id = item.get("documentId") if isinstance(item, dict) else None
            if data.query is None and document_id is not None:
                data.extensions = {**(data.extensions or {}), "documentId": document_id}
        return parsed

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        """Also: a request that got no data for database trouble is a 503 (whatever the client
        accepts), told once to the database's ``Outage``; one refused as a whole for its caller's
        spending is a 429, one stopped for its time a 504, one whose parts the client would not
        take a 406."""
        if result.errors:
            result.errors = escaped_errors_rendered(result.errors)
            if (down := refused_by_database(result.errors)) is not None:
                request.app.state.database.outage.refuse(down)
                if result.data is None:
                    request.state.graphql_unavailable = down
        body = await super().process_result(request, result)
        if result.data is None and result.errors and all(e.path is None for e in result.errors):
            request.state.graphql_request_error = True
            stopped = [
                e.original_error
                for e in result.errors
                if isinstance(e.original_error, RateLimited | TimedOut | IncrementalNotAccepted)
            ]
            if stopped:
                request.state.graphql_stopped = stopped[0]
            if _accepts_graphql_response(request):
                body.pop("data", None)
        return body

    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> Any:
        """As Strawberry's, but the operations of a batch run one after the other, in order (its
        mutations too), each with a session and loaders of its own, committed or rolled back on
        its own: one failing takes nothing from the others."""
        if not isinstance(request_data, list):
            return await super().execute_operation(
                request, request_adapter, request_data, context, root_value, sub_response
            )
        request.state.graphql_batch = True
        await context.session.commit()  # the sign-in's, before each operation takes a session of its own
        database = request.app.state.database
        results = []
        keyed = API_KEY_HEADER in request.headers  # its use is written down
        wrote = False
        for data in request_data:
            reads = only_reads(data.query, data.operation_name, self.max_tokens)
            try:
                async with database.session(read_only=reads and not keyed) as session:
                    own = await context.with_session(session, reread=wrote)
                    try:
                        result = await self.execute_single(
                            request, request_adapter, sub_response, own, root_value, data
                        )
                    except StrawberryHTTPException as exc:
                        error = GraphQLError(exc.reason, extensions=request_error_extensions())
                        result = ExecutionResult(data=None, errors=[error])
            except Exception as exc:  # noqa: BLE001 (its commit failed: this entry's error, masked or a 503's)
                failure = GraphQLError(str(exc), original_error=exc)
                log_unexpected([failure])
                result = ExecutionResult(data=None, errors=[failure])
            results.append(result)
            wrote = wrote or not reads
        return results

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """As Strawberry's, for the document the request names if it sends none (trusted documents,
        APQ), or refused with the reason; within ``GRAPHQL_TIMEOUT`` (but a one-shot ``fetch``, which
        the fetch limits bound), past which it stops with ``TIMEOUT`` and rolls back; a mutation sent
        with GET is 405, as GraphQL over HTTP requires, and a subscription is a 400 that says where
        subscriptions are served."""
        try:
            request_data = await self._named_document(request_data, context)
        except DomainError as refusal:
            return ExecutionResult(
                data=None,
                errors=[GraphQLError(refusal.message, extensions=refusal.extensions())],
            )
        incremental = uses_incremental_delivery(request_data.query, self.max_tokens)
        if incremental and MULTIPART not in request.headers.get("accept", ""):
            unaccepted = IncrementalNotAccepted()
            error = GraphQLError(
                unaccepted.message, original_error=unaccepted, extensions=unaccepted.extensions()
            )
            return ExecutionResult(data=None, errors=[error])
        later = AsyncExitStack() if incremental else None
        if later is not None:
            # Its later parts run once this has returned, when the request's session has ended: they
            # get a session of their own, ended when the last of them has been sent.
            reads = only_reads(request_data.query, request_data.operation_name, self.max_tokens)
            # The sign-in's session is done with: on SQLite, two writers of one request would wait
            # for each other.
            await context.session.commit()
            own = await later.enter_async_context(request.app.state.database.session(read_only=reads))
            context = await context.with_session(own, reread=False)
        roots = root_fields(request_data.query, request_data.operation_name, self.max_tokens)
        exempt = FETCH_NOW in roots and roots <= {FETCH_NOW, "__typename"}  # a fetch, and nothing else
        deadline = asyncio.timeout(None if exempt else self.timeout)
        try:
            async with deadline:
                result = await super().execute_single(
                    request, request_adapter, sub_response, context, root_value, request_data
                )
        except BaseException as exc:
            if later is not None:  # rolled back: the refusal or failure leaves nothing behind
                await later.__aexit__(type(exc), exc, exc.__traceback__)
            if isinstance(exc, TimeoutError) and deadline.expired():
                if later is None:
                    await context.session.rollback()  # what it wrote so far, if anything
                stopped = TimedOut(self.timeout)
                error = GraphQLError(stopped.message, original_error=stopped, extensions=stopped.extensions())
                return ExecutionResult(data=None, errors=[error])
            refused = exc.__cause__
            if isinstance(exc, StrawberryHTTPException) and isinstance(refused, InvalidOperationTypeError):
                if refused.operation_type is OperationType.SUBSCRIPTION:
                    raise StrawberryHTTPException(400, SUBSCRIPTIONS_ELSEWHERE) from exc
                if request_adapter.method == "GET":
                    raise StrawberryHTTPException(405, exc.reason) from exc
            raise
        if later is None:
            return result
        if not isinstance(result, ExperimentalIncrementalExecutionResults):
            await later.aclose()
            return result
        later_parts = _rendered(result.subsequent_results, later)
        return result._replace(subsequent_results=later_parts)

    async def _named_document(self, request_data: GraphQLRequestData, context: Context) -> GraphQLRequestData:
        """The request with the text of the document it names, checked against the policy."""
        query = await self.documents.resolve(request_data.query, request_data.extensions, context)
        return replace(request_data, query=query)

    def decode_json(self, data: str | bytes) -> object:
        """As Strawberry's, with a body that is not UTF-8 or nests too deep for the parser (the
        stack runs out long before the body cap) refused as a bad request, not failing as a bug."""
        try:
            return super().decode_json(data)
        except (UnicodeDecodeError, RecursionError) as exc:
            raise StrawberryHTTPException(400, "Unable to parse request body as JSON") from exc

    async def run(  # type: ignore[override]
        self,
        request: Request | WebSocket,
        context: Context = UNSET,
        root_value: None = UNSET,
    ) -> Response | WebSocket:
        if (
            self.compiled_schema is not None
            and isinstance(request, Request)
            and isinstance(context, Context)
            and not isinstance(context, SocketContext)
        ):
            planned = await compiled.answer(
                request,
                context,
                self.compiled_schema,
                max_tokens=self.max_tokens,
                metrics_enabled=self.metrics_enabled,
            )
            if planned is not None:
                return planned
        try:
            response = await super().run(request, context=context, root_value=root_value)
            if isinstance(response, Response) and isinstance(request, Request) and request.method == "POST":
                response.headers["Cache-Control"] = "no-store"  # answers may carry tokens and secrets
        except StrawberryHTTPException as exc:
            body = {"errors": [{"message": exc.reason, "extensions": request_error_extensions()}]}
            return JSONResponse(body, status_code=exc.status_code)
        state = request.state if isinstance(request, Request) else None
        batch = getattr(state, "graphql_batch", False)  # each operation's errors are in its own result
        if (
            isinstance(response, Response)
            and response.media_type == "application/json"
            and isinstance(request, Request)
            and _accepts_graphql_response(request)
        ):
            response.headers["content-type"] = GRAPHQL_RESPONSE
            if getattr(state, "graphql_request_error", False) and not batch:
                response.status_code = 400
        # Whatever the client accepts: Retry-After means something only beside these statuses.
        stopped = getattr(state, "graphql_unavailable", None) or getattr(state, "graphql_stopped", None)
        if isinstance(response, Response) and stopped is not None and not batch:
            response.status_code = stopped.status
            if (retry_after := getattr(stopped, "retry_after", None)) is not None:
                response.headers["Retry-After"] = str(retry_after)
        return response
