"""The Strawberry schema as served: the root types of ``schema.root`` with this transport's
extensions, executor and configuration."""

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from api.graphql.complexity import Limits, Measures
from api.graphql.errors import ErrorRendering, log_unexpected
from api.graphql.execution import LeafShortcutExecutor
from api.graphql.limits import OperationLimits
from api.graphql.metrics import OperationMetrics
from api.graphql.parsing import DocumentCache, ValidationResults
from api.graphql.planning import Plans
from api.ratelimit import Limit
from api.settings import Settings
from schema.root import NODE_TYPES, Mutation, Query, Subscription
from schema.scalars import SCALARS


class Schema(strawberry.Schema):
    validated: ValidationResults  # what its DocumentCache found of each document
    measures: Measures  # what each operation of its documents costs, and how deep it goes
    limits: Limits  # what one operation may ask
    budget: Limit  # what one caller may spend on operations in a window
    plans: Plans  # the compiled reads of its valid query documents

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only what is a bug; refusals and bad documents are the client's business."""
        log_unexpected(errors)

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """As Strawberry's, never a subscription: only plain HTTP requests come here (sockets
        subscribe), and a subscription there would be run as a query and fail as a bug. Refused,
        it is ``InvalidOperationTypeError``, which the router answers with a 400 saying where
        subscriptions are served."""
        allowed = set(allowed_operation_types or (OperationType.QUERY, OperationType.MUTATION))
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed - {OperationType.SUBSCRIPTION},
            operation_extensions,
        )


def build_schema(settings: Settings) -> Schema:
    """The schema with its limits taken from ``settings``.

    Extensions are given as classes or factories: Strawberry makes fresh ones for every operation.
    """
    validated = ValidationResults()
    extensions: list[Callable[[], SchemaExtension]] = [
        ErrorRendering,
        partial(DocumentCache, max_tokens=settings.graphql_max_tokens, validated=validated),
        OperationLimits,
    ]
    if not settings.introspection_enabled:
        extensions.append(DisableIntrospection)
    if settings.metrics_enabled:
        extensions.insert(0, OperationMetrics)  # first: it reads the errors as rendered
    schema = Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=NODE_TYPES,
        extensions=extensions,
        execution_context_class=LeafShortcutExecutor,
        config=StrawberryConfig(
            scalar_map=SCALARS,
            disable_field_suggestions=settings.is_production,
            batching_config={"max_operations": settings.graphql_max_batch},
            enable_experimental_incremental_execution=True,
        ),
    )
    schema.validated = validated
    schema.plans = Plans(schema._schema)
    schema.measures = Measures(schema._schema)
    schema.limits = Limits(
        max_cost=settings.graphql_max_cost,
        max_depth=settings.graphql_max_depth,
        max_aliases=settings.graphql_max_aliases,
    )
    schema.budget = Limit(settings.graphql_cost_budget, settings.graphql_cost_window)
    return schema
