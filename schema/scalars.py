"""Scalars written the way the REST twin writes the same values, as ``StrawberryConfig.scalar_map``
takes them (the type each stands for, and how it is written and read)."""

from collections.abc import Mapping
from datetime import datetime

import strawberry
from strawberry.types.scalar import ScalarDefinition

from api.db.types import utc_text


def _parse(value: object) -> datetime:
    """An RFC 3339 timestamp with its offset (``Z`` or ``+hh:mm``); a naive one is ambiguous."""
    if not isinstance(value, str):
        raise ValueError("A DateTime is an RFC 3339 string.")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("A DateTime needs its offset (Z for UTC).")
    return parsed


DATETIME = strawberry.scalar(
    name="DateTime",
    description=(
        "A moment in UTC, RFC 3339 with `Z`, as the REST layer writes it: `2026-12-01T09:30:00.250000Z`."
    ),
    specified_by_url="https://datatracker.ietf.org/doc/html/rfc3339",
    serialize=utc_text,
    parse_value=_parse,
)

SCALARS: Mapping[object, ScalarDefinition] = {datetime: DATETIME}
