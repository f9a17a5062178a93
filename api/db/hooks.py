"""Work to do once a session's transaction commits, and never if it rolls back."""

import asyncio
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

_PENDING = "switchboard.after_commit"
_HOOKED = "switchboard.after_commit_hooked"
BUS_KEY = "switchboard.bus"  # the event bus a session publishes to (``api.bus.publish``)


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
