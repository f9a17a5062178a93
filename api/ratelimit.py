"""Fixed-window rate limiting: in the process by default, in PostgreSQL when that is the database
(so every worker and host counts against the same windows).

A hit is recorded on its own, outside the request's transaction: a refused or failed operation (a
wrong password, above all) must still count, whatever happens to the rest of the request.

Spending (what GraphQL operations cost, counted against a budget per caller) is checked in the
process at once and settled with the shared windows in the background, a batch every fraction of a
second: a read answered by one statement must not take a second one to count its cost. A caller
spreading its spending over several workers may pass its budget by what one batch holds.
"""

import asyncio
import contextlib
import logging
import time
from contextvars import Context
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api.db.engine import Database, create_engine
from api.errors import RateLimited, ServiceUnavailable

logger = logging.getLogger("switchboard.ratelimit")


@dataclass(frozen=True, slots=True)
class Limit:
    hits: int
    seconds: int


class Limiter(Protocol):
    async def hit(self, key: str, limit: Limit) -> float | None:
        """Count one hit on ``key``; the seconds to wait if that went over ``limit``, else None."""
        ...

    def spend(self, key: str, limit: Limit, amount: int) -> float | None:
        """Spend ``amount`` of the budget ``limit`` gives ``key`` in a window; the seconds until it
        is renewed if that would pass it (and then nothing is spent), else None."""
        ...

    async def close(self) -> None: ...


class MemoryLimiter:
    """Windows kept in this process (one worker, or SQLite)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._windows: dict[str, tuple[float, int]] = {}

    async def hit(self, key: str, limit: Limit) -> float | None:
        return self._add(key, limit, 1, refuse=False)

    def spend(self, key: str, limit: Limit, amount: int) -> float | None:
        return self._add(key, limit, amount, refuse=True)

    def _add(self, key: str, limit: Limit, amount: int, *, refuse: bool) -> float | None:
        """Add ``amount`` to the window of ``key``; the seconds left in it when that passed
        ``limit``. A hit past it counts anyway (its attempt was made); spending past it is
        refused when ``refuse`` (the operation does not run, so costs nothing)."""
        now = time.monotonic()
        start, hits = self._windows.get(key, (now, 0))
        if now - start >= limit.seconds:
            start, hits = now, 0
        over = hits + amount > limit.hits
        if not (over and refuse):
            self._windows[key] = (start, max(hits + amount, 0))  # given back: never below nothing
        if len(self._windows) > self.max_keys:
            self._forget_expired(now, limit.seconds)
        return start + limit.seconds - now if over else None

    async def close(self) -> None:
        self._windows.clear()

    def _forget_expired(self, now: float, seconds: int) -> None:
        for key in [k for k, (start, _) in self._windows.items() if now - start >= seconds]:
            del self._windows[key]


# Adds each key's amount to its window (a new one if the old has run out) and says where each stands.
_ADD = text(
    """
    INSERT INTO rate_limit_windows AS w (key, window_start, hits)
    SELECT key, now(), amount FROM unnest(CAST(:keys AS text[]), CAST(:amounts AS int[])) AS t(key, amount)
    ON CONFLICT (key) DO UPDATE SET
        hits = GREATEST(0, CASE WHEN w.window_start <= now() - make_interval(secs => :seconds)
                                THEN excluded.hits ELSE w.hits + excluded.hits END),
        window_start = CASE WHEN w.window_start <= now() - make_interval(secs => :seconds)
                            THEN now() ELSE w.window_start END
    RETURNING key, hits, EXTRACT(EPOCH FROM (w.window_start + make_interval(secs => :seconds) - now()))
    """
)


@dataclass(slots=True)
class _Tally:
    """One key's spending as this process sees it."""

    limit: Limit
    renewed: float  # when the window runs out (monotonic), as last heard
    shared: int = 0  # spent in the window by every process, as last heard
    settling: int = 0  # spent here, on its way to the database
    pending: int = 0  # spent here since
    doubted: bool = False  # refused here: worth hearing again, as others may have given some back

    def spent(self) -> int:
        return self.shared + self.settling + self.pending


class PostgresLimiter:
    """Windows in the ``rate_limit_windows`` table; each hit is one statement in its own transaction.

    The hits go through a small pool of their own. A request counts a hit while its session holds a
    connection of the main pool; were the hit to need a second one from that pool, enough
    concurrent requests would each hold one and wait for another, for ever.

    A hit that cannot be counted within ``wait`` seconds (its pool busy with others, the database
    slow) is refused with ``ServiceUnavailable`` (503, ``Retry-After``) rather than left to the pool's
    30 s timeout: the pool is small, and two hundred sign-ins at once would queue there.

    Spending is settled every ``settle_every`` seconds, every key in one statement, which also
    tells this process what the others spent; a key refused here is heard again the same way. While
    the database is away the spending waits, checked in this process alone, and is settled once it
    is back.
    """

    def __init__(
        self, database: Database, *, connections: int = 2, wait: float = 2.0, settle_every: float = 0.25
    ) -> None:
        url = database.engine.url.render_as_string(hide_password=False)
        self.engine = create_engine(url, pool_size=connections, max_overflow=connections)
        self.wait = wait
        self.settle_every = settle_every
        self._tallies: dict[str, _Tally] = {}
        self._settling: asyncio.Task[None] | None = None

    async def hit(self, key: str, limit: Limit) -> float | None:
        try:
            hits, remaining = (await self._add(limit.seconds, {key: 1}))[key]
        except (TimeoutError, PoolTimeout):
            raise ServiceUnavailable(f"rate-limit hit not counted within {self.wait:g} s", 1) from None
        return remaining if hits > limit.hits else None

    def spend(self, key: str, limit: Limit, amount: int) -> float | None:
        now = time.monotonic()
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = _Tally(limit, now + limit.seconds)
        elif now >= tally.renewed:
            tally.shared, tally.renewed = 0, now + limit.seconds
        refused = tally.spent() + amount > limit.hits
        if refused:
            tally.doubted = True
        else:
            tally.pending += amount
        if self._settling is None or self._settling.done():
            # In a context of its own: the task outlives the request, and must not keep its context.
            self._settling = asyncio.get_running_loop().create_task(self._settle_soon(), context=Context())
        return tally.renewed - now if refused else None

    async def close(self) -> None:
        if self._settling is not None:
            self._settling.cancel()
            with contextlib.suppress(asyncio.CancelledError):  # a settling in flight puts back its amounts
                await self._settling
        with contextlib.suppress(Exception):  # the database may be gone: nothing left to tell it
            await self.settle()
        await self.engine.dispose()

    async def _settle_soon(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.settle_every)
            try:
                await self.settle()
            except (TimeoutError, PoolTimeout, SQLAlchemyError, OSError) as exc:
                if not failing:
                    logger.warning("spending not settled, kept for the next try: %s", type(exc).__name__)
                failing = True
            else:
                return

    async def settle(self) -> None:
        """Tell the database what was spent here, and hear what every process has spent."""
        now = time.monotonic()
        for key in [k for k, t in self._tallies.items() if not t.spent() and now >= t.renewed]:
            del self._tallies[key]
        by_window: dict[int, dict[str, _Tally]] = {}
        for key, tally in self._tallies.items():
            if tally.pending or tally.doubted:
                tally.doubted = False
                by_window.setdefault(tally.limit.seconds, {})[key] = tally
        for seconds, tallies in by_window.items():
            for tally in tallies.values():
                tally.settling, tally.pending = tally.pending, 0
            try:
                heard = await self._add(seconds, {key: tally.settling for key, tally in tallies.items()})
            except BaseException:
                for tally in tallies.values():
                    tally.settling, tally.pending = 0, tally.pending + tally.settling
                raise
            now = time.monotonic()
            for key, tally in tallies.items():
                tally.shared, remaining = heard[key]
                tally.settling, tally.renewed = 0, now + remaining

    async def _add(self, seconds: int, amounts: dict[str, int]) -> dict[str, tuple[int, float]]:
        """Add to the windows of ``amounts``' keys; each one's hits and seconds left, after."""
        parameters = {"keys": list(amounts), "amounts": list(amounts.values()), "seconds": seconds}
        async with asyncio.timeout(self.wait), self.engine.begin() as connection:
            rows = (await connection.execute(_ADD, parameters)).all()
        return {key: (hits, max(float(remaining), 0.0)) for key, hits, remaining in rows}


async def throttle(limiter: Limiter, *checks: tuple[str, Limit]) -> None:
    """Count a hit on every key; ``RateLimited`` (with the longest wait) if any went over its limit."""
    waits = [wait for key, limit in checks if (wait := await limiter.hit(key, limit)) is not None]
    if waits:
        raise RateLimited(max(waits))


def limiter_for(database: Database) -> Limiter:
    if database.engine.dialect.name == "postgresql":
        return PostgresLimiter(database)
    return MemoryLimiter()
