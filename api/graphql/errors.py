"""How errors leave GraphQL: domain errors with their ``extensions.code``, everything else masked.

- an error from a resolver whose cause is a ``DomainError`` keeps its message and gains its code;
- an error whose cause is database trouble (``api.db.outages``) is ``SERVICE_UNAVAILABLE``, with
  ``retryAfter``, and is not logged: the database's ``Outage`` tells of it once;
- an error with no field path is about the request itself (a document that does not parse or
  validate, a variable of the wrong type) and is shown as graphql-core wrote it, with a code;
- any other error is a bug: its text is replaced by a fixed message and the request id, and the
  original is logged with its traceback under that id.
"""

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult

from api.db.outages import unavailable
from api.errors import (
    INTERNAL_ERROR_CODE,
    INTERNAL_ERROR_MESSAGE,
    DomainError,
    InvalidInput,
    ServiceUnavailable,
)
from api.graphql.complexity import token_limit_passed
from api.logs import request_id_var

logger = logging.getLogger("switchboard.graphql")

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


def _camel(path: str) -> str:
    head, *rest = path.split("_")
    return head + "".join(part.title() for part in rest)


def is_unexpected(error: GraphQLError) -> bool:
    """A failure that is not a domain refusal: a bug to mask and log.

    From a resolver (it has a path), any cause but a ``DomainError`` or graphql-core's own report on
    the document or its variables (a directive's variable given as null below the root, found only
    while that field completes). Without a path, graphql-core's errors about the document or its
    variables point at nodes of it; an exception from elsewhere (an extension, the database) arrives
    wrapped with a cause and no nodes.
    """
    cause = error.original_error
    if isinstance(cause, DomainError | GraphQLError | None) or unavailable(cause) is not None:
        return False
    return error.path is not None or not error.nodes


def _extensions(error: GraphQLError, parsed: bool, validation_errors: list[GraphQLError]) -> dict[str, Any]:
    cause = error.original_error
    if isinstance(cause, InvalidInput):
        fields = {".".join(_camel(p) for p in k.split(".")): v for k, v in cause.fields.items()}
        return {**cause.extensions(), "fields": fields}
    if isinstance(cause, DomainError):
        return cause.extensions()
    if not parsed:
        too_long = token_limit_passed(error.message)
        return {"code": PARSE_FAILED} if too_long is None else too_long.extensions()
    if error in validation_errors:
        return {"code": VALIDATION_FAILED}
    return {"code": InvalidInput.code}


def render_error(
    error: GraphQLError, *, parsed: bool = True, validation_errors: list[GraphQLError] | None = None
) -> GraphQLError:
    """``error`` as the client sees it; ``parsed``: whether its document parsed, and
    ``validation_errors``: what validating it found (the errors of a later payload of ``@defer``
    or ``@stream`` come from resolvers, with neither)."""
    if (down := _unavailable(error)) is not None:
        return _refused(error, down)
    if is_unexpected(error):
        return _masked(error)
    extensions = {**(error.extensions or {}), **_extensions(error, parsed, validation_errors or [])}
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions=extensions,
    )


class ErrorRendering(SchemaExtension):
    """Renders every error of the operation, and rolls back its session when there is any, so a
    mutation that fails half-way leaves nothing behind."""

    def __init__(self) -> None:
        self.validation_errors: list[GraphQLError] = []
        self.streamed = False

    def on_validate(self) -> Iterator[None]:
        yield
        self.validation_errors = list(self.execution_context.pre_execution_errors or ())

    async def on_operation(self) -> AsyncIterator[None]:
        yield
        if not self.streamed:
            await self._settle(self.execution_context.result)

    async def on_stream_result(self, result: object) -> AsyncIterator[None]:
        """Over a socket, each result is settled before it is sent: its errors rendered, and the
        session of its scope rolled back on an error or else committed, so what a client is told
        has happened is stored."""
        self.streamed = True
        if isinstance(result, ExecutionResult):
            await self._settle(result, commit=True)
        yield

    async def _settle(self, result: Any, *, commit: bool = False) -> None:
        """``result``: graphql-core's or Strawberry's execution result (both have ``errors``), or the
        results of ``@defer`` and ``@stream``, whose first part is settled here (the router renders
        the errors of the later ones, ``render_later``)."""
        result = getattr(result, "initial_result", result)
        if result is None:
            return
        session = getattr(self.execution_context.context, "session", None)
        if not result.errors:
            if commit and session is not None and session.in_transaction():
                await session.commit()
            return
        keep = all(getattr(e.original_error, "keeps_changes", False) for e in result.errors)
        if session is not None and not keep:
            try:
                await session.rollback()
            except Exception as exc:  # noqa: BLE001 (becomes the operation's error: masked, logged)
                failure = GraphQLError(str(exc), original_error=exc)
                log_unexpected([failure])
                result.errors.append(failure)
        parsed = self.execution_context.graphql_document is not None
        result.errors = [
            render_error(e, parsed=parsed, validation_errors=self.validation_errors) for e in result.errors
        ]


def render_later(errors: list[GraphQLError] | None) -> list[GraphQLError] | None:
    """The errors of a later payload of ``@defer`` or ``@stream``, rendered (and a bug's logged)
    as the operation's first ones are."""
    if not errors:
        return errors
    log_unexpected(errors)
    return [render_error(error) for error in errors]


def escaped_errors_rendered(errors: list[GraphQLError]) -> list[GraphQLError]:
    """The last line, at the HTTP view: an error that escaped ``ErrorRendering`` (an extension failed
    before execution, so Strawberry answered from outside the operation hooks) is rendered here, any
    with a cause masked (``Schema.process_errors`` has logged it)."""
    return [
        e
        if "code" in (e.extensions or {})
        else _refused(e, down)
        if (down := _unavailable(e)) is not None
        else _masked(e)
        if e.original_error is not None
        else GraphQLError(e.message, extensions=request_error_extensions())
        for e in errors
    ]


def request_error_extensions() -> dict[str, Any]:
    """The extensions of an error about the HTTP request itself (not JSON, no query, ...)."""
    return {"code": "BAD_REQUEST", "requestId": request_id_var.get()}


def _unavailable(error: GraphQLError) -> ServiceUnavailable | None:
    cause = error.original_error
    return None if cause is None else unavailable(cause)


def refused_by_database(errors: list[GraphQLError]) -> ServiceUnavailable | None:
    """The database trouble behind one of the rendered ``errors``, if any."""
    for error in errors:
        if isinstance(error.original_error, ServiceUnavailable):
            return error.original_error
    return None


def _refused(error: GraphQLError, down: ServiceUnavailable) -> GraphQLError:
    """Database trouble as the client sees it: the 503's message (never the driver's, which may
    carry SQL), its code and when to try again."""
    return GraphQLError(
        down.message,
        nodes=error.nodes,
        path=error.path,
        original_error=down,
        extensions={**down.extensions(), "requestId": request_id_var.get()},
    )


def _masked(error: GraphQLError) -> GraphQLError:
    """A bug's error as the client sees it: a fixed message and the id to find it in the log."""
    return GraphQLError(
        INTERNAL_ERROR_MESSAGE,
        nodes=error.nodes,
        path=error.path,
        extensions={"code": INTERNAL_ERROR_CODE, "requestId": request_id_var.get()},
    )


def log_unexpected(errors: list[GraphQLError]) -> None:
    for error in errors:
        if is_unexpected(error):
            cause = error.original_error
            logger.error(
                "unexpected error in %s",
                ".".join(map(str, error.path or ())),
                exc_info=(type(cause), cause, cause.__traceback__) if cause else None,
            )
