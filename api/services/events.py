"""What the services announce on the bus (``api.bus``) as data changes, and the topics it goes to.

Events carry ids, counters and a status; a subscriber re-reads the rows. The one exception is a
deleted user, whose row is gone: its event carries what a client was shown of it.
"""

import uuid
from collections.abc import Collection, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api import metrics
from api.bus import Event, publish
from api.db.hooks import after_commit
from api.db.models import JobStatus, User

USERS_TOPIC = "users"
ACCOUNTS_TOPIC = "accounts"  # what sign-in caches must forget (api.services.signins)
_TRANSITIONS = {status: metrics.JOB_TRANSITIONS.labels(status.value) for status in JobStatus}


class UserEventKind(StrEnum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"


def job_topic(job_id: uuid.UUID) -> str:
    return f"job:{job_id}"


def owner_topic(owner_id: uuid.UUID) -> str:
    return f"owner:{owner_id}"


async def job_changed(
    session: AsyncSession,
    *,
    job_id: uuid.UUID,
    owner_id: uuid.UUID,
    status: JobStatus,
    completed: int,
    position: int | None = None,
) -> None:
    """A job's status changed, or (``position``) its result at that position came in, making
    ``completed`` results in all. A change of status is also counted, once it is committed: every
    transition of a job is announced here (created, claimed, finished, failed, cancelled)."""
    data = {"job": str(job_id), "status": status.value, "completed": completed, "position": position}
    # A change of status is the job's state alone: a newer one replaces it in a subscriber's queue.
    replaces = f"job-state:{job_id}" if position is None else None
    await publish(session, Event((job_topic(job_id), owner_topic(owner_id)), data, replaces=replaces))
    if position is None:
        after_commit(session, _TRANSITIONS[status].inc)


async def user_changed(session: AsyncSession, *, kind: UserEventKind, user: User) -> None:
    data: dict[str, Any] = {"user": str(user.id), "kind": kind.value}
    if kind is UserEventKind.DELETED:
        data["gone"] = {
            "email": user.email,
            "display_name": user.display_name,
            "is_active": user.is_active,
            "is_admin": user.is_admin,
            "created_at": user.created_at.isoformat(),
        }
    await publish(session, Event((USERS_TOPIC,), data))


async def sign_ins_changed(
    session: AsyncSession, *, user_id: uuid.UUID | None = None, family_ids: Collection[uuid.UUID] = ()
) -> None:
    """Sign-in sessions ended: every one of ``user_id`` (and what is known of the account), or those
    of ``family_ids``. Each process's sign-in cache forgets them when this commits."""
    data: dict[str, Any] = {
        "user": str(user_id) if user_id else None,
        "families": [str(f) for f in family_ids],
    }
    await publish(session, Event((ACCOUNTS_TOPIC,), data))


def deleted_user(data: Mapping[str, Any]) -> User:
    """The user a ``DELETED`` event speaks of, rebuilt from the event (not attached to a session)."""
    gone = data["gone"]
    return User(
        id=uuid.UUID(data["user"]),
        email=gone["email"],
        display_name=gone["display_name"],
        is_active=gone["is_active"],
        is_admin=gone["is_admin"],
        created_at=datetime.fromisoformat(gone["created_at"]),
    )
