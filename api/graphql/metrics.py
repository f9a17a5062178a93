"""GraphQL operations counted and timed (``api.metrics``), as a schema extension.

Listed first among the schema's extensions, so its ``on_operation`` ends after ``ErrorRendering``'s:
the codes it reads are the rendered ones, masked bugs included (``INTERNAL_SERVER_ERROR``).
"""

from collections.abc import AsyncIterator, Iterator
from time import perf_counter

from graphql import GraphQLError
from prometheus_client import Counter, Histogram
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult, StreamExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.utils.operation import get_operation_type

from api.errors import INTERNAL_ERROR_CODE
from api.metrics import (
    GRAPHQL_DURATION,
    GRAPHQL_OPERATIONS,
    SUBSCRIPTIONS_ACTIVE,
    OperationNames,
)

NO_ERROR = "none"
BAD_REQUEST = "BAD_REQUEST"  # as the HTTP view renders an error about the request itself
# What Strawberry raises, past the extensions, for a request that names no operation it can run:
# the view answers them 400 (405 for a mutation over GET).
_REFUSED_REQUESTS = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)
UNKNOWN_TYPE = "unknown"  # the document did not parse, or names no operation it holds
_names = OperationNames()
# The labelled series, kept: ``labels()`` costs more than the update itself. Bounded, as the labels are.
_counted: dict[tuple[str, str, str], Counter] = {}
_timed: dict[tuple[str, str], Histogram] = {}


def _code(error: GraphQLError) -> str:
    """An error's ``extensions.code``; one that has none yet is rendered later, at the HTTP view,
    as a masked bug if it has a cause, else as a bad request (``escaped_errors_rendered``)."""
    code = (error.extensions or {}).get("code")
    if isinstance(code, str) and code.isupper() and len(code) <= 40:
        return code
    return INTERNAL_ERROR_CODE if error.original_error is not None else BAD_REQUEST


class OperationMetrics(SchemaExtension):
    def __init__(self) -> None:
        self.error_code: str | None = None
        self.subscribed = False
        self.kind: str | None = None

    async def on_operation(self) -> AsyncIterator[None]:
        started = perf_counter()
        try:
            yield
        except _REFUSED_REQUESTS:
            self.error_code = self.error_code or BAD_REQUEST
            raise
        except Exception:
            self.error_code = self.error_code or INTERNAL_ERROR_CODE
            raise
        finally:
            if self.subscribed:
                SUBSCRIPTIONS_ACTIVE.dec()
            self._record(perf_counter() - started)

    def on_execute(self) -> Iterator[None]:
        """The operation parsed and validated: a subscription is running from here on."""
        if not self.subscribed and self._type() == OperationType.SUBSCRIPTION.value:
            self.subscribed = True
            SUBSCRIPTIONS_ACTIVE.inc()
        yield

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        """Over a socket: the first error of any result is the operation's (rendered by now, as
        ``ErrorRendering`` renders before it yields)."""
        yield
        if self.error_code is None and isinstance(result, ExecutionResult) and result.errors:
            self.error_code = _code(result.errors[0])

    def _type(self) -> str:
        if self.kind is None:
            context = self.execution_context
            if context.graphql_document is None:
                return UNKNOWN_TYPE  # not parsed (yet): nothing to remember
            try:
                self.kind = get_operation_type(context.graphql_document, context.operation_name).value
            except RuntimeError:  # the request names an operation the document does not hold
                self.kind = UNKNOWN_TYPE
        return self.kind

    def _record(self, elapsed: float) -> None:
        context = self.execution_context
        kind = self._type()
        code = self.error_code
        if code is None:
            result = getattr(context.result, "initial_result", context.result)  # of @defer: its first part
            code = _code(result.errors[0]) if result is not None and result.errors else NO_ERROR
        record(kind, context.operation_name, code, elapsed)


def record(kind: str, operation_name: str | None, code: str, elapsed: float) -> None:
    """One operation counted, and timed unless it is a subscription (the compiled read path,
    ``api.graphql.compiled``, counts its answers here too)."""
    name = _names.label(operation_name) if kind != UNKNOWN_TYPE else OperationNames.OTHER
    counter = _counted.get((kind, name, code))
    if counter is None:
        counter = _counted[kind, name, code] = GRAPHQL_OPERATIONS.labels(kind, name, code)
    counter.inc()
    if kind != OperationType.SUBSCRIPTION.value:
        histogram = _timed.get((kind, name))
        if histogram is None:
            histogram = _timed[kind, name] = GRAPHQL_DURATION.labels(kind, name)
        histogram.observe(elapsed)
