"""Answering a GraphQL request from its plan: one statement, the database's JSON as the body.

A request whose document has a plan (``api.graphql.planning``) is answered here, before Strawberry
parses anything: its variables are coerced, the reads service runs the one statement, and the text
it returns becomes the body without being parsed in Python. Everything else goes on to Strawberry:
a document not seen yet (so validated there first), one that did not validate, variables that do
not fit, a refusal or a bad argument (the service raises, and the executor answers with the error as
it always does), a row that is missing where the executor raises, a database that fails.
"""

import json
import logging
from time import perf_counter
from typing import Any

from graphql import GraphQLError
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response

from api.db.outages import unavailable
from api.errors import DomainError
from api.graphql import metrics
from api.graphql.parsing import parsed
from api.graphql.schema import Schema
from api.services import reads
from resolvers.context import Context

GRAPHQL_RESPONSE = "application/graphql-response+json"
logger = logging.getLogger("switchboard.errors")
_NO_ERROR = metrics.NO_ERROR


def _request_data(request: Request, body: bytes | None) -> dict[str, Any] | None:
    """The query, operation name and variables of a GET or JSON POST request, as sent."""
    if request.method == "GET":
        params = request.query_params
        data: dict[str, Any] = {"query": params.get("query"), "operationName": params.get("operationName")}
        if "variables" in params:
            try:
                data["variables"] = json.loads(params["variables"])
            except (ValueError, RecursionError):
                return None
        return data
    if body is None:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


async def answer(
    request: Request, context: Context, schema: Schema, *, max_tokens: int, metrics_enabled: bool
) -> Response | None:
    """The response to ``request`` from its plan, or ``None`` for Strawberry to answer."""
    started = perf_counter()
    body = None
    if request.method == "POST":
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return None
        body = await request.body()
    data = _request_data(request, body)
    if data is None:
        return None
    query, operation_name = data.get("query"), data.get("operationName")
    if not isinstance(query, str) or not (operation_name is None or isinstance(operation_name, str)):
        return None
    if schema.validated.get(query) != []:
        return None  # not validated yet (Strawberry does it, and remembers), or not valid
    try:
        document = parsed(query, max_tokens)
    except GraphQLError:
        return None
    found = schema.plans.find(document, query, operation_name, data.get("variables"))
    if found is None:
        return None
    plan, arguments = found
    try:
        caller = context.caller
        text = await reads.answer(context.session, plan.selection, actor=caller, arguments=arguments)
    except (DomainError, reads.NotCompiled):
        return None
    except SQLAlchemyError as exc:
        if unavailable(exc) is None:
            logger.exception("compiled read failed; the executor answers it")
        # A fresh start for the executor, which runs it again and answers as it does (a 503 when
        # the database is away). Closed, not rolled back: the caller's row stays loaded.
        await context.session.close()
        return None
    if text is None:
        return None
    accepted = GRAPHQL_RESPONSE in request.headers.get("accept", "")
    response = Response(
        b'{"data":' + text.encode() + b"}",
        media_type=GRAPHQL_RESPONSE if accepted else "application/json",
    )
    if request.method == "POST":
        response.headers["Cache-Control"] = "no-store"
    if metrics_enabled:
        metrics.record("query", operation_name, _NO_ERROR, perf_counter() - started)
    return response
