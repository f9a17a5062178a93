"""Parsing and validating each distinct document once.

Strawberry's ``ParserCache`` raises parse errors from inside its hook, where they escape the operation
hooks (so ``ErrorRendering`` never sees them); its ``ValidationCache`` keys on the validation rules,
which the depth and alias limiters build anew for every operation, so it never hits. This extension
does both jobs for one schema: a document that does not parse is left for Strawberry's own parse to
report, and validation results are kept per document text (they depend on nothing else).
"""

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import suppress
from functools import lru_cache

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    Visitor,
    get_operation_ast,
    parse,
    visit,
)
from strawberry.extensions import SchemaExtension

CACHE_SIZE = 512


@lru_cache(maxsize=CACHE_SIZE)
def parsed(query: str, max_tokens: int) -> DocumentNode:
    return parse(query, max_tokens=max_tokens)


def _operation(query: object, operation_name: object, max_tokens: int) -> OperationDefinitionNode | None:
    """A request's operation; ``None`` for a document that does not parse or has no such
    operation, which Strawberry's own parse reports."""
    if not isinstance(query, str) or not (operation_name is None or isinstance(operation_name, str)):
        return None
    try:
        return get_operation_ast(parsed(query, max_tokens), operation_name)
    except GraphQLError:
        return None


def operation_type(query: object, operation_name: object, max_tokens: int) -> OperationType | None:
    """What a request's operation is (query, mutation, subscription), if it has one."""
    operation = _operation(query, operation_name, max_tokens)
    return None if operation is None else operation.operation


def root_fields(query: object, operation_name: object, max_tokens: int) -> frozenset[str]:
    """The names of the fields at the root of a request's operation, if it has one."""
    operation = _operation(query, operation_name, max_tokens)
    selections = () if operation is None else operation.selection_set.selections
    return frozenset(node.name.value for node in selections if isinstance(node, FieldNode))


INCREMENTAL = frozenset({"defer", "stream"})


def uses_incremental_delivery(query: object, max_tokens: int) -> bool:
    """Whether a request's document asks for ``@defer`` or ``@stream`` anywhere."""
    if not isinstance(query, str) or "@" not in query:
        return False
    try:
        document = parsed(query, max_tokens)
    except GraphQLError:
        return False
    found = False

    class Finder(Visitor):
        def enter_directive(self, node: DirectiveNode, *_: object) -> None:
            nonlocal found
            found = found or node.name.value in INCREMENTAL

    visit(document, Finder())
    return found


def only_reads(query: object, operation_name: object, max_tokens: int) -> bool:
    """Whether a request's operation is a query (it can run on a session that only reads); anything
    that is not plainly one (a mutation, a document that does not parse, an unknown operation)
    answers no, and gets a session that may write."""
    return operation_type(query, operation_name, max_tokens) is OperationType.QUERY


class ValidationResults:
    """The validation errors of recently seen documents, least recently used dropped first."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[str, list[GraphQLError]] = OrderedDict()

    def get(self, query: str) -> list[GraphQLError] | None:
        errors = self._entries.get(query)
        if errors is not None:
            self._entries.move_to_end(query)
        return errors

    def put(self, query: str, errors: list[GraphQLError]) -> None:
        self._entries[query] = errors
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)


class DocumentCache(SchemaExtension):
    def __init__(self, *, max_tokens: int, validated: ValidationResults) -> None:
        self.max_tokens = max_tokens
        self.validated = validated

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens
        if context.query and context.graphql_document is None:
            with suppress(GraphQLError):
                context.graphql_document = parsed(context.query, self.max_tokens)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        known = self.validated.get(query) if query else None
        if known is not None:
            context.pre_execution_errors = known  # Strawberry skips validating when this is set
        yield
        if known is None and query:
            self.validated.put(query, list(context.pre_execution_errors or ()))
