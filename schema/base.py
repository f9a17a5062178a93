"""Shapes shared by every domain: the ``Node`` interface and cursor connections.

Connections are plain data built once per page, and every field on them is a plain attribute: the
read path pays no resolver call per row or per field.
"""

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, Self, TypeVar, cast

import strawberry

from api.db.base import Entity
from api.ids import NodeType, to_global_id
from api.services.pagination import Page, encode_cursor

ResolverT = TypeVar("ResolverT", bound=Callable[..., Any])


def described_field(description: str, directives: Sequence[object] = ()) -> Callable[[ResolverT], ResolverT]:
    """``@strawberry.field(description=..., directives=...)`` as a decorator that keeps the method's
    type (Strawberry types that form as ``Any``, which strict mypy refuses as an untyped decorator)."""
    return cast(
        Callable[[ResolverT], ResolverT], strawberry.field(description=description, directives=directives)
    )


T = TypeVar("T")


_copied: dict[type, tuple[str, ...]] = {}  # per type: the names of the fields its constructor takes


def from_row(cls: type[T], row: object, **given: Any) -> T:
    """``cls`` with every field read from the attribute of ``row`` of the same name, but those
    ``given``: the one conversion of a row (or a fetcher's result) into its GraphQL type, as the
    REST models read theirs with pydantic's ``from_attributes``."""
    names = _copied.get(cls)
    if names is None:
        names = _copied[cls] = tuple(f.name for f in dataclasses.fields(cls) if f.init)  # type: ignore[arg-type]  # strawberry types are dataclasses
    return cls(**{name: getattr(row, name) for name in names if name not in given}, **given)


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID
    key: strawberry.Private[uuid.UUID]  # the row's id, for the nested fields' loaders
    node_type: ClassVar[NodeType]  # the type name inside its global ids: the GraphQL type's name

    @classmethod
    def from_model(cls, row: Entity) -> Self:
        return from_row(cls, row, id=strawberry.ID(to_global_id(cls.node_type, row.id)), key=row.id)


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
