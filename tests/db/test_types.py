"""Column types: timestamps come back aware and in UTC, ids are time-ordered UUIDv7."""

from datetime import UTC, datetime, timedelta, timezone

from api.db.engine import Database
from api.db.models import User
from api.db.types import uuid7
from tests.factories import make_user


async def test_timestamps_come_back_aware_and_in_utc(database: Database) -> None:
    created = await make_user(database)
    async with database.session() as session:
        row = await session.get_one(User, created.id)
        row.updated_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    async with database.sessions() as session:
        user = await session.get_one(User, created.id)
    assert user.updated_at == datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert user.updated_at.tzinfo == UTC
    assert user.created_at.tzinfo == UTC


def test_ids_are_version_7_and_ordered_by_creation() -> None:
    ids = [uuid7() for _ in range(1000)]
    assert {i.version for i in ids} == {7}
    # Ordered across milliseconds; within one millisecond the order is random.
    millis = [i.int >> 80 for i in ids]
    assert millis == sorted(millis)
