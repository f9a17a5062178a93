"""What a verified access token's account and sign-in session are now, without a query per request.

An access token is checked by its signature; what it cannot say (the account was deactivated,
demoted or deleted, the session ended by a logout, a password change or a detected reuse) lives in
the database. Each process keeps what it last read of both, and forgets an entry as soon as the
bus says it changed (``api.services.events``: the users topic, and the accounts topic for sessions
and passwords), on every worker; a bus that lost events (a PostgreSQL listener that reconnected, a
queue that overflowed) makes it forget everything. An entry also expires after ``ttl`` seconds, a
bound on what a missed event could ever cost.

A read that raced a change is not kept: each forgetting moves an epoch, and an answer read before
the epoch moved is used for that request only.
"""

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from api.bus import Bus, Event, Overflowed
from api.db.models import User
from api.services import sessions, users
from api.services.events import ACCOUNTS_TOPIC, USERS_TOPIC

logger = logging.getLogger("switchboard.signins")
TTL = 60.0
SIZE = 20_000


@dataclass(frozen=True, slots=True)
class _Entry:
    value: Any
    until: float


class SignIns:
    """The process's memory of accounts (active ones, as detached rows; ``None`` for one that is gone
    or inactive) and of sign-in sessions (live or ended)."""

    def __init__(self, *, ttl: float = TTL, size: int = SIZE) -> None:
        self.ttl = ttl
        self.size = size
        self.epoch = 0
        self._accounts: OrderedDict[uuid.UUID, _Entry] = OrderedDict()
        self._sessions: OrderedDict[uuid.UUID, _Entry] = OrderedDict()
        self._sessions_of: dict[uuid.UUID, set[uuid.UUID]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._bus: Bus | None = None
        self.listening = False  # subscribed to the bus (a subscriber of the process's own, not a client's)

    def known_account(self, user_id: uuid.UUID) -> object:
        """What the cache knows of account ``user_id``: the row, ``None`` (gone or inactive), or
        ``UNKNOWN`` when only the database can say."""
        return self._recall(self._accounts, user_id)

    def known_session(self, family_id: uuid.UUID) -> object:
        """Whether sign-in session ``family_id`` goes on, or ``UNKNOWN``."""
        return self._recall(self._sessions, family_id)

    async def account(self, session: AsyncSession, user_id: uuid.UUID) -> User | None:
        """The active account ``user_id``, or ``None`` when it is gone or deactivated."""
        found = self._recall(self._accounts, user_id)
        if found is not UNKNOWN:
            return cast(User | None, found)
        epoch = self.epoch
        user = await users.get_active(session, user_id=user_id)
        if user is not None:
            session.expunge(user)  # shared by requests from now on: no session's to change
        if epoch == self.epoch:
            self._keep(self._accounts, user_id, user)
        return user

    async def session_live(self, session: AsyncSession, user_id: uuid.UUID, family_id: uuid.UUID) -> bool:
        """Whether the sign-in session ``family_id`` of ``user_id`` goes on."""
        found = self._recall(self._sessions, family_id)
        if found is not UNKNOWN:
            return bool(found)
        epoch = self.epoch
        live = family_id in await sessions.live_among(session, family_ids=[family_id])
        if epoch == self.epoch:
            self._keep(self._sessions, family_id, live)
            self._sessions_of.setdefault(user_id, set()).add(family_id)
        return live

    def forget(self, *, user_id: uuid.UUID | None = None, family_ids: Collection[uuid.UUID] = ()) -> None:
        """Forget an account and every session of it, or some sessions."""
        self.epoch += 1
        if user_id is not None:
            self._accounts.pop(user_id, None)
            for family_id in self._sessions_of.pop(user_id, ()):
                self._sessions.pop(family_id, None)
        for family_id in family_ids:
            self._sessions.pop(family_id, None)

    def hear(self, event: Event) -> None:
        """Forget what ``event`` says changed: from the bus, and at once from the process's own
        sessions as they commit (``Database.listeners``)."""
        if event.resync:  # the bus may have missed events meanwhile
            self.forget_everything()
        elif set(event.topics) & {USERS_TOPIC, ACCOUNTS_TOPIC}:
            try:
                user, families = event.data.get("user"), event.data.get("families", ())
                self.forget(
                    user_id=uuid.UUID(user) if user else None,
                    family_ids=[uuid.UUID(family) for family in families],
                )
            except (AttributeError, TypeError, ValueError):  # not one of ours: whatever it meant, forget
                logger.warning("the sign-in cache got an event it cannot read; it starts afresh")
                self.forget_everything()

    def forget_everything(self) -> None:
        self.epoch += 1
        self._accounts.clear()
        self._sessions.clear()
        self._sessions_of.clear()

    @property
    def trusted(self) -> bool:
        """Whether what is kept can be believed: the bus is heard (a cache that follows none, as a
        test's, is believed). While the listener is down or the bus is away, every sign-in reads the
        database, and nothing read is kept."""
        return self._bus is None or (self.listening and self._bus.ready)

    def _recall(self, entries: "OrderedDict[uuid.UUID, _Entry]", key: uuid.UUID) -> object:
        if not self.trusted:
            return UNKNOWN
        entry = entries.get(key)
        if entry is None:
            return UNKNOWN
        if entry.until < time.monotonic():
            del entries[key]
            return UNKNOWN
        return entry.value

    def _keep(self, entries: "OrderedDict[uuid.UUID, _Entry]", key: uuid.UUID, value: object) -> None:
        if not self.trusted:
            return
        entries[key] = _Entry(value, time.monotonic() + self.ttl)
        entries.move_to_end(key)
        if len(entries) > self.size:
            entries.popitem(last=False)

    async def follow(self, bus: Bus) -> None:
        """Forget what the bus says changed, from now until ``close``."""
        self._bus = bus
        self._listener = asyncio.create_task(self._listen(bus))
        await asyncio.sleep(0)  # subscribed before the app answers anything

    async def _listen(self, bus: Bus) -> None:
        while True:
            self.forget_everything()  # what was read before this subscription may have changed unheard
            async with bus.subscribe(USERS_TOPIC, ACCOUNTS_TOPIC, maxsize=10_000) as subscription:
                self.listening = True
                try:
                    while True:
                        self.hear(await subscription.get())
                except Overflowed:
                    logger.warning("the sign-in cache fell behind the bus; it starts afresh")
                finally:
                    self.listening = False

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None


UNKNOWN = object()
