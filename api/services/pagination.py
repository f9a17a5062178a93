"""Keyset pagination over time-ordered UUID primary keys.

A cursor is the last id of a page, base64url-encoded so clients treat it as opaque; the next page is
``WHERE id > cursor ORDER BY id LIMIT n + 1``, one index range scan whatever the depth (never OFFSET).
"""

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.db.base import Entity
from api.errors import InvalidInput

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class PageRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    first: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE
    after: str | None = None

    @field_validator("first", mode="before")
    @classmethod
    def _default_when_null(cls, value: object) -> object:
        """``first: null`` asks for the default page, as leaving it out does."""
        return DEFAULT_PAGE_SIZE if value is None else value


T = TypeVar("T", bound=Entity)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    has_next: bool

    @property
    def end_cursor(self) -> str | None:
        return encode_cursor(self.items[-1].id) if self.items else None


def encode_cursor(key: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(key.bytes).rstrip(b"=").decode()


def decode_cursor(cursor: str, *, field: str = "after") -> uuid.UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (binascii.Error, ValueError):
        raise InvalidInput({field: ["Not a valid cursor."]}) from None


def page_of(rows: Sequence[T], size: int) -> Page[T]:
    """Build a page from a query that asked for ``size + 1`` rows (the extra one tells a next exists)."""
    return Page(items=rows[:size], has_next=len(rows) > size)
