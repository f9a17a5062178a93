"""The Strawberry schema as served: the root types of ``schema.root`` with this transport's
extensions, executor and configuration."""

from collections.abc import Callable
from functools import partial

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from api.graphql.errors import ErrorRendering, log_unexpected
from api.graphql.execution import LeafShortcutExecutor
from api.graphql.metrics import OperationMetrics
from api.graphql.parsing import DocumentCache, ValidationResults
from api.settings import Settings
from schema.root import NODE_TYPES, Mutation, Query, Subscription


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only what is a bug; refusals and bad documents are the client's business."""
        log_unexpected(errors)


def build_schema(settings: Settings) -> Schema:
    """The schema with its limits taken from ``settings``.

    Extensions are given as classes or factories: Strawberry makes fresh ones for every operation.
    """
    extensions: list[Callable[[], SchemaExtension]] = [
        ErrorRendering,
        partial(DocumentCache, max_tokens=settings.graphql_max_tokens, validated=ValidationResults()),
        partial(QueryDepthLimiter, max_depth=settings.graphql_max_depth),
        partial(MaxAliasesLimiter, max_alias_count=settings.graphql_max_aliases),
    ]
    if not settings.introspection_enabled:
        extensions.append(DisableIntrospection)
    if settings.metrics_enabled:
        extensions.insert(0, OperationMetrics)  # first: it reads the errors as rendered
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=NODE_TYPES,
        extensions=extensions,
        execution_context_class=LeafShortcutExecutor,
        config=StrawberryConfig(disable_field_suggestions=settings.is_production),
    )
