"""Work to do once a session's transaction commits, and never if it rolls back: actions of the
process's own, and events for the bus."""

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

_PENDING = "switchboard.after_commit"
_HOOKED = "switchboard.after_commit_hooked"
_PUBLISHER = "switchboard.publisher"
_ECHO = "switchboard.echo"


class Publisher(Protocol):
    """What the data layer needs of an event bus (``api.bus`` has two): to send an event with a
    session's transaction, so that it goes out when that commits and never if it rolls back. What an
    event holds is the bus's business, not the database's."""

    async def send(self, session: AsyncSession, event: Any) -> None: ...


def publish_with(session: AsyncSession, publisher: Publisher) -> None:
    """Let what changes data in ``session`` announce it through ``publisher``."""
    session.info[_PUBLISHER] = publisher


def echo_to(session: AsyncSession, listener: Callable[[Any], None]) -> None:
    """Hand each event ``session`` publishes to ``listener`` too, in this process, as soon as it
    commits: what must hold from the very next request (a sign-in cache forgetting an account) cannot
    wait for the bus to bring the event back, and a bus may never bring it back at all (a test's
    transaction that is rolled back, where PostgreSQL sends no notification)."""
    session.info[_ECHO] = listener


def echo_of(session: AsyncSession) -> Callable[[Any], None] | None:
    listener: Callable[[Any], None] | None = session.info.get(_ECHO)
    return listener


def publisher_of(session: AsyncSession) -> Publisher | None:
    """The publisher of ``session``; none for one that publishes nothing (the CLI's, a migration's)."""
    publisher: Publisher | None = session.info.get(_PUBLISHER)
    return publisher


def after_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run ``action`` on the loop once ``session`` commits; never, if it rolls back first.

    The actions wait in ``session.info``: a commit runs them in the order they came, a rollback (a
    failed GraphQL operation, say, whose session then commits nothing) drops them.
    """
    pending: list[Callable[[], None]] = session.info.setdefault(_PENDING, [])
    if not session.info.get(_HOOKED):
        loop = asyncio.get_running_loop()
        sync = session.sync_session

        def committed(_session: Session) -> None:
            for queued in sync.info.pop(_PENDING, []):
                loop.call_soon(queued)

        def rolled_back(_session: Session, *_: object) -> None:
            sync.info.pop(_PENDING, None)

        event.listen(sync, "after_commit", committed)
        event.listen(sync, "after_soft_rollback", rolled_back)
        session.info[_HOOKED] = True
    pending.append(action)
