"""Shapes shared by every domain: the ``Node`` interface and cursor connections.

Connections are plain data built once per page, and every field on them is a plain attribute: the
read path pays no resolver call per row or per field.
"""

from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

import strawberry

from api.db.base import Entity
from api.services.pagination import Page, encode_cursor

ResolverT = TypeVar("ResolverT", bound=Callable[..., Any])


def described_field(description: str) -> Callable[[ResolverT], ResolverT]:
    """``@strawberry.field(description=...)`` as a decorator that keeps the method's type (Strawberry
    types that form as ``Any``, which strict mypy refuses as an untyped decorator)."""
    return cast(Callable[[ResolverT], ResolverT], strawberry.field(description=description))


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


NodeT = TypeVar("NodeT")


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    nodes: list[NodeT] = strawberry.field(description="The nodes of `edges`, without the cursors.")
    page_info: PageInfo


RowT = TypeVar("RowT", bound=Entity)


def connection_of(page: Page[RowT], convert: Callable[[RowT], NodeT]) -> Connection[NodeT]:
    """A connection over one keyset page. ``hasPreviousPage`` is false when paging forward, which the
    Cursor Connections specification allows when it cannot be known cheaply."""
    nodes = [convert(row) for row in page.items]
    cursors = [encode_cursor(row.id) for row in page.items]
    return Connection(
        edges=[Edge(cursor=c, node=n) for c, n in zip(cursors, nodes, strict=True)],
        nodes=nodes,
        page_info=PageInfo(
            has_next_page=page.has_next,
            has_previous_page=False,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        ),
    )
