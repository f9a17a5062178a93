"""Answering a GraphQL request from its plan: one statement, the database's JSON as the body.

A request whose document has a plan (``api.graphql.planning``) is answered here: its variables are
coerced, the reads service runs the one statement, and the text it returns becomes the body without
being parsed in Python. Everything else goes on to Strawberry: a document not seen yet (validated
there first), one that did not validate, variables that do not fit, a refusal or a bad argument
(the service raises, and the executor answers with the error as it always does), a row missing
where the executor raises, a database that fails.

Two ways in. ``CompiledReads`` is pure ASGI, the innermost layer of the app: for a caller the
sign-in cache knows (or none), it answers from the socket to the statement and back, with no
dependency resolution, no request object and no session; the middleware around it (request id,
body cap, CORS, security headers, metrics) still applies. ``answer`` is the same from inside the
GraphQL router, with the context Strawberry built: for API keys, and callers not known yet.
"""

import json
from dataclasses import dataclass
from time import perf_counter
from typing import Any
from urllib.parse import parse_qs

from graphql import GraphQLError
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import DomainError, Unauthenticated
from api.graphql import metrics
from api.graphql.complexity import Measure
from api.graphql.documents import Documents, named_digest
from api.graphql.limits import charge, spender
from api.graphql.parsing import parsed
from api.graphql.planning import Plan
from api.graphql.schema import Schema
from api.ratelimit import Limiter
from api.services import auth, reads
from api.services.callers import Caller
from resolvers.context import Context

GRAPHQL_RESPONSE = "application/graphql-response+json"


@dataclass(frozen=True, slots=True)
class Asked:
    """What a request asks: its document (as sent, or named by its hash), operation name and
    variables."""

    query: str | None
    operation_name: str | None
    variables: object
    digest: str | None = None  # the hash it names its document by

    def allowed(self, documents: Documents, caller: Caller | None) -> "Asked | None":
        """The question with the text of its document, when this process knows it and it may run
        for ``caller``; ``None`` for Strawberry to find it, or refuse it."""
        text = documents.known(self.query, self.digest, caller)
        return None if text is None else Asked(text, self.operation_name, self.variables)


def asked(method: str, query_string: str, content_type: str, body: bytes | None) -> Asked | None:
    """The question of a GET, or of a JSON POST; ``None`` for anything Strawberry should look at."""
    if method == "GET":
        params = {name: values[-1] for name, values in parse_qs(query_string, keep_blank_values=True).items()}
        data: Any = {key: params.get(key) for key in ("query", "operationName", "documentId")}
        for key in ("variables", "extensions"):
            if key in params:
                try:
                    data[key] = json.loads(params[key])
                except (ValueError, RecursionError):
                    return None
    elif content_type.split(";")[0].strip() == "application/json" and body is not None:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if not isinstance(data, dict):
            return None
    else:
        return None
    query, name = data.get("query"), data.get("operationName")
    if not (query is None or isinstance(query, str)) or not (name is None or isinstance(name, str)):
        return None
    try:
        digest = named_digest(data.get("documentId"), data.get("extensions"))
    except DomainError:
        return None
    if query is None and digest is None:
        return None
    return Asked(query, name, data.get("variables"), digest)


def plan_of(
    schema: Schema, question: Asked, max_tokens: int
) -> tuple[Plan, list[dict[str, Any]], Measure] | None:
    """The plan of a question, its reads' arguments and its measure, for a document Strawberry
    validated without an error (it validates, and remembers, the first time a document comes)."""
    if question.query is None or schema.validated.get(question.query) != []:
        return None
    try:
        document = parsed(question.query, max_tokens)
    except GraphQLError:
        return None
    found = schema.plans.find(document, question.query, question.operation_name, question.variables)
    measure = None if found is None else schema.measures.of(document, question.query, question.operation_name)
    return None if found is None or measure is None else (*found, measure)


def charged(schema: Schema, question: Asked, measure: Measure, limiter: Limiter, spender: str) -> int | None:
    """The cost spent from the caller's budget, or ``None`` when the question is past the limits or
    the budget: Strawberry refuses it then, as it would have without a plan."""
    variables = question.variables if isinstance(question.variables, dict) else None
    try:
        return charge(schema, measure, variables, limiter, spender)
    except DomainError:
        return None


def body_of(text: str) -> bytes:
    return b'{"data":' + text.encode() + b"}"


def media_type(accept: str) -> str:
    return GRAPHQL_RESPONSE if GRAPHQL_RESPONSE in accept else "application/json"


async def answer(
    request: Request, context: Context, schema: Schema, *, max_tokens: int, metrics_enabled: bool
) -> Response | None:
    """The response to ``request`` from its plan, in the router's context, or ``None`` for
    Strawberry to answer."""
    started = perf_counter()
    body = await request.body() if request.method == "POST" else None
    try:
        caller = context.caller
    except Unauthenticated:
        return None  # the executor says so, unless the operation needs no one
    question = asked(request.method, request.url.query, request.headers.get("content-type", ""), body)
    question = None if question is None else question.allowed(request.app.state.documents, caller)
    if question is None:
        return None
    found = plan_of(schema, question, max_tokens)
    if found is None:
        return None
    plan, arguments, measure = found
    who = spender(caller, context.client)
    cost = charged(schema, question, measure, context.limiter, who)
    if cost is None:
        return None
    text = await _read(context, plan, caller, arguments)
    if text is None:
        context.limiter.spend(who, schema.budget, -cost)  # given back: the executor answers, and charges
        return None
    response = Response(body_of(text), media_type=media_type(request.headers.get("accept", "")))
    if request.method == "POST":
        response.headers["Cache-Control"] = "no-store"
    if metrics_enabled:
        metrics.record("query", question.operation_name, metrics.NO_ERROR, perf_counter() - started)
    return response


async def _read(
    context: Context, plan: Plan, caller: Caller | None, arguments: list[dict[str, Any]]
) -> str | None:
    """The plan's answer on the operation's session, or ``None`` for the executor to give."""
    try:
        return await reads.answer(context.session, plan.selection, actor=caller, arguments=arguments)
    except (DomainError, reads.NotCompiled):
        return None
    except SQLAlchemyError as exc:
        reads.failed(exc)
        # A fresh start for the executor. Closed, not rolled back: the caller's row stays loaded.
        await context.session.close()
        return None


class CompiledReads:
    """The lean path: planned reads answered in pure ASGI (see the module's docstring)."""

    def __init__(self, app: ASGIApp, *, schema: Schema, path: str) -> None:
        self.app = app
        self.schema = schema
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        if scope["type"] != "http" or scope["path"] != self.path or method not in ("GET", "POST"):
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        bearer = content_type = accept = ""
        for name, value in scope["headers"]:
            if name == b"authorization" and not bearer:  # the first, as Starlette reads headers
                bearer = value.decode("latin-1")
            elif name == b"x-api-key":
                await self.app(scope, receive, send)  # the key's use is written down: the usual path
                return
            elif name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"accept":
                accept = value.decode("latin-1")
        if method == "POST" and content_type.split(";")[0].strip() != "application/json":
            await self.app(scope, receive, send)  # an upload, or what Strawberry refuses
            return
        body, receive = await _read_body(receive) if method == "POST" else (None, receive)
        response = await self._answer(scope, method, bearer, content_type, body)
        if response is None:
            await self.app(scope, receive, send)
            return
        text, operation_name = response
        headers = [
            (b"content-type", media_type(accept).encode()),
            (b"content-length", str(len(text)).encode()),
        ]
        if method == "POST":
            headers.append((b"cache-control", b"no-store"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": text})
        state = scope["app"].state
        if state.settings.metrics_enabled:
            metrics.record("query", operation_name, metrics.NO_ERROR, perf_counter() - started)

    async def _answer(
        self, scope: Scope, method: str, bearer: str, content_type: str, body: bytes | None
    ) -> tuple[bytes, str | None] | None:
        state = scope["app"].state
        settings = state.settings
        query_string = scope["query_string"].decode("latin-1")
        question = asked(method, query_string, content_type, body)
        if question is None:
            return None
        caller: Caller | None = None
        if bearer:
            scheme, _, token = bearer.partition(" ")
            if scheme.lower() != "bearer":
                return None
            caller = auth.known_caller(settings=settings, signins=state.signins, token=token.strip())
            if caller is None:
                return None
        question = question.allowed(state.documents, caller)
        if question is None:
            return None
        client = scope.get("client")
        who = spender(caller, client[0] if client else "unknown")
        found = plan_of(self.schema, question, settings.graphql_max_tokens)
        if found is None:
            return None
        plan, arguments, measure = found
        cost = charged(self.schema, question, measure, state.limiter, who)
        if cost is None:
            return None
        text = await reads.answer_on(state.database, plan.selection, actor=caller, arguments=arguments)
        if text is None:
            state.limiter.spend(
                who, self.schema.budget, -cost
            )  # given back: the executor answers, and charges
            return None
        return body_of(text), question.operation_name


async def _read_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole body, and a ``receive`` that hands it on again to whoever answers instead. A body
    that did not all come (the client left, it passed the cap, it trickled past the time allowed)
    is ``None``, and the ``receive`` handed on tells the same to the app, which answers it."""
    chunks = []
    try:
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None, _replaying([message], receive)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
    except Exception as refusal:  # noqa: BLE001 (not swallowed: raised again to the app that answers)
        return None, _replaying([], receive, refusal)
    body = b"".join(chunks)
    return body, _replaying([{"type": "http.request", "body": body, "more_body": False}], receive)


def _replaying(messages: list[Message], receive: Receive, refusal: Exception | None = None) -> Receive:
    async def replay() -> Message:
        nonlocal refusal
        if refusal is not None:
            raised, refusal = refusal, None
            raise raised
        return messages.pop(0) if messages else await receive()

    return replay
