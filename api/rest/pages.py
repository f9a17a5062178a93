"""The REST shape of a keyset page: ``{"items": [...], "next_cursor": ...}`` and a ``Link`` header."""

from collections.abc import Callable
from typing import Generic, TypeVar

from fastapi import Request, Response
from pydantic import BaseModel

from api.db.base import Entity
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
    if next_cursor is not None:
        next_url = request.url.include_query_params(cursor=next_cursor)
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return ItemPage(items=[convert(row) for row in page.items], next_cursor=next_cursor)
