"""Parsing once per distinct document, with the token limit applied.

Strawberry's ``ParserCache`` raises parse errors from inside its hook, where they escape the operation
hooks (so ``ErrorRendering`` never sees them). This extension parses ahead of Strawberry instead; a
document that does not parse is left alone, and Strawberry's own parse reports it the normal way.
"""

from collections.abc import Iterator
from contextlib import suppress
from functools import lru_cache

from graphql import DocumentNode, GraphQLError, parse
from strawberry.extensions import SchemaExtension


@lru_cache(maxsize=512)
def _parse(query: str, max_tokens: int) -> DocumentNode:
    return parse(query, max_tokens=max_tokens)


class CachedParse(SchemaExtension):
    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens
        if context.query and context.graphql_document is None:
            with suppress(GraphQLError):
                context.graphql_document = _parse(context.query, self.max_tokens)
        yield
