"""The REST shape of a keyset page: ``{"items": [...], "next_cursor": ...}`` and a ``Link`` header,
built from the service's rows, or by the database in one compiled statement (``CompiledPages``)."""

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar, get_args

from fastapi import Depends, Request, Response
from pydantic import BaseModel
from pydantic_core import from_json

from api.db.base import Entity
from api.db.engine import Database
from api.deps import DatabaseDep, SettingsDep
from api.rest.resources import Resource
from api.services import reads
from api.services.callers import Caller
from api.services.pagination import Page

ItemT = TypeVar("ItemT")
RowT = TypeVar("RowT", bound=Entity)


class ItemPage(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    next_cursor: str | None


def page_response(
    request: Request, response: Response, page: Page[RowT], convert: Callable[[RowT], ItemT]
) -> ItemPage[ItemT]:
    next_cursor = page.end_cursor if page.has_next else None
    _link(request, response, next_cursor)
    return ItemPage(items=[convert(row) for row in page.items], next_cursor=next_cursor)


def _link(request: Request, response: Response, next_cursor: str | None) -> None:
    if next_cursor is not None:
        next_url = request.url.include_query_params(cursor=next_cursor)
        response.headers["Link"] = f'<{next_url}>; rel="next"'


def item_members(model: type[BaseModel]) -> reads.Members:
    """What an item of ``model`` is built from, named by the model's own fields: each a column of
    the same name, then a resource's ``node_id``."""
    members: list[tuple[str, reads.Value]] = []
    for name, info in model.model_fields.items():
        time = datetime in (info.annotation, *get_args(info.annotation))
        members.append((name, reads.Column(name, timestamp=time)))
    if issubclass(model, Resource):
        members.append(("node_id", reads.GlobalId(model.node_type)))
    return tuple(members)


def listing(relation: reads.Relation, model: type[BaseModel]) -> reads.Selection:
    """A page of ``relation``'s rows as ``ItemPage[model]``: the request's first arguments are the
    page's (``first``, ``after`` and the relation's filters)."""
    page = (("items", reads.Nodes(item_members(model))), ("next_cursor", reads.Paging.NEXT_CURSOR))
    return reads.Selection(reads.Read(relation, 0, page))


class CompiledPages:
    """REST pages answered by one compiled statement, the body the database's text. ``None`` where
    the route's usual path answers instead: SQLite, compiled reads turned off, a refusal or a bad
    argument, a row the service would refuse as missing, or a statement that failed (the service then
    asks the database itself, so its answer ends an outage or reports it)."""

    def __init__(self, request: Request, database: Database | None) -> None:
        self.request = request
        self.database = database

    async def answer(
        self, selection: reads.Selection, actor: Caller, *arguments: Mapping[str, Any]
    ) -> Response | None:
        if self.database is None:
            return None
        text = await reads.answer_on(self.database, selection, actor=actor, arguments=arguments)
        if text is None:
            return None
        response = Response(text, media_type="application/json")
        _link(self.request, response, from_json(text)["next_cursor"])
        return response


def compiled_pages(request: Request, database: DatabaseDep, settings: SettingsDep) -> CompiledPages:
    return CompiledPages(request, database if settings.compiled_reads else None)


CompiledPagesDep = Annotated[CompiledPages, Depends(compiled_pages)]
