"""Column types that behave the same on SQLite and PostgreSQL."""

import os
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp.

    PostgreSQL keeps the zone (``timestamptz``); SQLite keeps none, so values come back naive and are
    marked UTC here. Naive values are refused on the way in: they would be ambiguous.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a timezone-aware one is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utc_text(value: datetime) -> str:
    """A timestamp as every transport writes it: RFC 3339 in UTC with ``Z``, microseconds only when
    there are any (pydantic's way, which the REST models use; GraphQL's ``DateTime`` takes it too)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def version_of(moment: datetime) -> str:
    """A row's version from the time it last changed: its microseconds since 1970, in hex. Short,
    opaque to clients (an HTTP entity tag), and turned back by ``moment_of``."""
    return format((moment - EPOCH) // MICROSECOND, "x")


def moment_of(version: str) -> datetime | None:
    """The time a ``version_of`` text stands for; ``None`` for text that is no version (a client's
    guess), which matches no row."""
    try:
        return EPOCH + int(version, 16) * MICROSECOND if len(version) <= 16 else None
    except (ValueError, OverflowError):  # not hex, or past the year 9999
        return None


def utcnow() -> datetime:
    return datetime.now(UTC)


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7).

    Ids sort by creation time, so a keyset page is one index range scan on the primary key and new rows
    land at the end of the index instead of at random places in it.
    """
    unix_ms = time.time_ns() // 1_000_000
    value = (unix_ms & (2**48 - 1)) << 80 | int.from_bytes(os.urandom(10)) & (2**80 - 1)
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 9562 variant
    return uuid.UUID(int=value)
