"""The extension that refuses an operation asking too much: past the cost, depth or alias limits of
one operation, or past what its caller may spend in a window (``api.graphql.complexity`` measures).

It runs as execution starts, once the document has validated, so the request's variables (the page
sizes they give) are known. Over HTTP the refusal becomes the operation's result and nothing runs;
a subscription's refusal is raised, which Strawberry sends as the subscription's one result.
"""

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, cast

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from api.errors import DomainError, RateLimited, Unauthenticated
from api.graphql.complexity import Limits, Measure, Measures
from api.ratelimit import Limit, Limiter
from api.services.callers import Caller
from resolvers.context import Context


class Limited(Protocol):
    """What the served schema (``api.graphql.schema.Schema``) holds for this extension."""

    measures: Measures
    limits: Limits
    budget: Limit


def spender(caller: Caller | None, client: str) -> str:
    """Whose budget an operation spends: the signed-in account's, else its client address's."""
    if caller is not None:
        return f"graphql-cost:user:{caller.user.id}"
    return f"graphql-cost:address:{client}"


def charge(
    schema: Limited, measure: Measure, variables: Mapping[str, Any] | None, limiter: Limiter, spender: str
) -> int:
    """Check an operation against the schema's limits and spend its cost from its caller's budget
    (the cost spent); ``QueryTooComplex`` or ``RateLimited`` if it may not run."""
    cost = schema.limits.check(measure, variables)
    wait = limiter.spend(spender, schema.budget, cost)
    if wait is not None:
        raise RateLimited(wait, "The caller's budget for query cost is spent for now.")
    return cost


class OperationLimits(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        schema = cast(Limited, execution.schema)
        document = execution.graphql_document
        measure = (
            None
            if document is None
            else schema.measures.of(document, execution.query, execution.operation_name)
        )
        if measure is not None:
            context = cast(Context, execution.context)
            try:
                caller = context.caller
            except Unauthenticated:
                caller = None  # stale credentials: the operation may still be one that needs none
            try:
                charge(schema, measure, execution.variables, context.limiter, spender(caller, context.client))
            except DomainError as refusal:
                if execution.operation_type is OperationType.SUBSCRIPTION:
                    raise
                execution.result = ExecutionResult(
                    None, [GraphQLError(refusal.message, original_error=refusal)]
                )
        yield
