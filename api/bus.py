"""The event bus: small notices ("job J has a new result", "user U changed") from whoever changes
data to whoever streams it live, in this process or, through PostgreSQL, in every process.

An event names topics (``job:<id>``, ``owner:<id>``, ``users``) and carries ids and counters only;
a subscriber re-reads what it shows. An event is sent with the transaction that causes it: it goes
out when that commits and never if it rolls back.

Each subscriber has a bounded queue. One that falls behind is cut off (``Overflowed``) rather than
let memory grow; one whose events may have been lost (the PostgreSQL listener reconnected) gets
an event marked ``resync`` and re-reads the current state.
"""

import asyncio
import json
import logging
import time
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Any, Final, Self

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession

from api import metrics
from api.db.hooks import after_commit, echo_of, publisher_of
from api.errors import DomainError

logger = logging.getLogger("switchboard.bus")

MAX_EVENT_BYTES: Final = 8000  # PostgreSQL's limit for a NOTIFY payload
CHANNEL: Final = "switchboard_events"


@dataclass(eq=False, slots=True)
class Event:
    topics: tuple[str, ...]
    data: Mapping[str, Any]
    resync: bool = False  # events may have been missed: read the current state again
    # Reads that this process's subscribers share for this event (one read, however many of them).
    memo: dict[Any, Any] = field(default_factory=dict, repr=False)
    # When it was announced (in the transaction that causes it; wall clock, so that another process
    # can tell how long it took to arrive): the live feeds measure their delivery lag from it.
    sent_at: float = field(default_factory=time.time)
    # Events with the same key say the same thing anew (a job's state): a newer one replaces an older
    # one a subscriber has not read yet. Events without a key (a job's result) are each delivered.
    replaces: str | None = None

    def encode(self) -> str:
        message: dict[str, Any] = {"topics": self.topics, "data": self.data, "at": round(self.sent_at, 6)}
        if self.replaces is not None:
            message["replaces"] = self.replaces
        encoded = json.dumps(message, separators=(",", ":"))
        if len(encoded.encode()) > MAX_EVENT_BYTES:
            raise ValueError(f"an event must fit in {MAX_EVENT_BYTES} bytes: {encoded[:200]}…")
        return encoded

    @classmethod
    def decode(cls, raw: str) -> Self:
        parsed = json.loads(raw)
        topics, data = parsed["topics"], parsed["data"]
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise ValueError("topics must be a list of strings")
        if not isinstance(data, dict):
            raise ValueError("data must be an object")
        at, replaces = parsed.get("at"), parsed.get("replaces")
        replaces = replaces if isinstance(replaces, str) else None
        if isinstance(at, int | float):
            return cls(tuple(topics), data, sent_at=float(at), replaces=replaces)
        return cls(tuple(topics), data, replaces=replaces)  # from a process that does not say when: now


TOO_FAR_BEHIND = "The subscriber fell too far behind; subscribe again."


class Overflowed(DomainError):
    """The subscriber fell too far behind; its subscription is over (the client may subscribe again)."""

    code = "TOO_SLOW"
    status = 409
    title = "The subscriber fell too far behind."


_OVERFLOW: Final = Event((), {})


class Subscription:
    """A subscriber's bounded queue of events; ``async with`` it to stop receiving on the way out.

    What the subscriber has not read yet is coalesced: an event that ``replaces`` an older one still
    queued takes its place at the end, so a reader that fell behind reads the latest state once."""

    def __init__(self, bus: "Bus", topics: tuple[str, ...], maxsize: int) -> None:
        self._bus = bus
        self.topics = topics
        self._maxsize = maxsize
        self._queue: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.overflowed = False
        self.coalesced = 0  # events replaced before they were read

    def deliver(self, event: Event) -> None:
        if self.overflowed:
            return
        if event.replaces is not None and self._queue:
            older = next((e for e in self._queue if e.replaces == event.replaces), None)
            if older is not None:
                self._queue.remove(older)
                self.coalesced += 1
        if 0 < self._maxsize <= len(self._queue):  # 0: unbounded, as for asyncio.Queue
            self.overflowed = True
            metrics.SUBSCRIBERS_CUT_OFF.inc()
            self._bus.unsubscribe(self)
            self._queue.clear()  # drop the backlog now, not when the reader gets round to it
            self._queue.append(_OVERFLOW)
        else:
            self._queue.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> Event:
        """The next event (a ``resync`` one included); ``Overflowed`` once the queue has overflowed."""
        while not self._queue:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        event = self._queue[0]
        if event is _OVERFLOW:
            raise Overflowed(TOO_FAR_BEHIND)
        self._queue.popleft()
        return event

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._bus.unsubscribe(self)


class Bus:
    """What both buses share: the subscribers of this process and the fan-out to them. Its ``send``
    is all a database needs of it (``api.db.hooks.Publisher``)."""

    def __init__(self) -> None:
        self._topics: defaultdict[str, set[Subscription]] = defaultdict(set)

    def subscribe(self, *topics: str, maxsize: int = 100) -> Subscription:
        subscription = Subscription(self, topics, maxsize)
        for topic in topics:
            self._topics[topic].add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        for topic in subscription.topics:
            subscribers = self._topics.get(topic)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._topics[topic]

    @property
    def subscribers(self) -> int:
        return len(self._everyone())

    def _everyone(self) -> set[Subscription]:
        return {s for subscribers in self._topics.values() for s in subscribers}

    def dispatch(self, event: Event) -> None:
        """Hand ``event`` to each local subscriber of any of its topics, once."""
        reached: set[Subscription] = set()
        for topic in event.topics:
            reached.update(self._topics.get(topic, ()))
        for subscription in reached:
            subscription.deliver(event)

    def resync(self) -> None:
        event = Event((), {}, resync=True)
        for subscription in self._everyone():
            subscription.deliver(event)

    async def send(self, session: AsyncSession, event: Event) -> None:
        """Send ``event`` when ``session`` commits."""
        raise NotImplementedError

    @property
    def ready(self) -> bool:
        return True

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class LocalBus(Bus):
    """The bus of one process (the default): events go straight to its own subscribers."""

    async def send(self, session: AsyncSession, event: Event) -> None:
        event.encode()  # the same size rule as across processes, so nothing works here only
        after_commit(session, lambda: self.dispatch(event))


class PostgresBus(Bus):
    """Events through PostgreSQL's LISTEN/NOTIFY, so every process sharing the database gets them.

    A ``NOTIFY`` in the sending transaction goes out when it commits. One connection per process,
    outside the pool, listens; a keepalive query notices a connection that died quietly. On a drop
    it connects again, backing off, and then sends a ``resync`` event to every subscriber: what was
    announced meanwhile is lost, and they re-read.
    """

    def __init__(self, database_url: URL, *, keepalive: float = 5.0, retry: float = 0.5) -> None:
        super().__init__()
        self._dsn = database_url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._keepalive = keepalive
        self._retry = retry
        self._connection: asyncpg.Connection | None = None
        self._dropped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def send(self, session: AsyncSession, event: Event) -> None:
        await session.execute(select(func.pg_notify(CHANNEL, event.encode())))

    @property
    def ready(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    @property
    def listener_pid(self) -> int | None:
        """The backend process id of the listening connection (tests terminate it)."""
        return self._connection.get_server_pid() if self.ready and self._connection else None

    async def start(self) -> None:
        """Listen, or keep trying in the background: a database not up yet does not stop the start."""
        await self._connect()
        self._task = asyncio.create_task(self._supervise(), name="event-bus-listener")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._disconnect()

    async def _connect(self) -> bool:
        try:
            connection = await asyncpg.connect(self._dsn, timeout=5)
            await connection.add_listener(CHANNEL, self._on_notify)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            logger.warning("the event bus cannot listen yet (%s); trying again", exc)
            return False
        connection.add_termination_listener(lambda _: self._dropped.set())
        self._dropped.clear()
        self._connection = connection
        return True

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            connection.terminate()

    async def _supervise(self) -> None:
        delay = self._retry
        while True:
            if self.ready:
                delay = self._retry
                if await self._alive():
                    continue
                logger.warning("the event bus lost its connection; listening again")
                await self._disconnect()
            await asyncio.sleep(delay)
            if await self._connect():
                metrics.BUS_RECONNECTS.inc()
                self.resync()
            else:
                delay = min(delay * 2, 10.0)

    async def _alive(self) -> bool:
        """Wait a keepalive period; whether the connection still answers after it."""
        try:
            await asyncio.wait_for(self._dropped.wait(), self._keepalive)
            return False
        except TimeoutError:
            pass
        assert self._connection is not None
        try:
            await self._connection.fetchval("SELECT 1", timeout=self._keepalive)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return False
        return True

    def _on_notify(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            event = Event.decode(payload)
        except (ValueError, KeyError) as exc:
            logger.warning("ignored a malformed event on %s: %s", CHANNEL, exc)
            return
        self.dispatch(event)


def bus_for(database_url: URL) -> Bus:
    """PostgreSQL's LISTEN/NOTIFY with a PostgreSQL database (several workers share it), else the
    process's own."""
    if database_url.get_backend_name() == "postgresql":
        return PostgresBus(database_url)
    return LocalBus()


async def publish(session: AsyncSession, event: Event) -> None:
    """Announce ``event`` when ``session`` commits, on the bus of the database the session came from
    (``Database.session``). A session from elsewhere (the CLI, a migration) announces nothing."""
    bus = publisher_of(session)
    if bus is not None:
        await bus.send(session, event)
        after_commit(session, metrics.EVENTS_PUBLISHED.inc)
    echo = echo_of(session)
    if echo is not None:
        after_commit(session, partial(echo, event))
