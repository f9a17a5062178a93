"""Fixed-window rate limiting: in the process by default, in PostgreSQL when that is the database
(so every worker and host counts against the same windows).

A hit is recorded on its own, outside the request's transaction: a refused or failed operation (a
wrong password, above all) must still count, whatever happens to the rest of the request.
"""

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api.db.engine import Database, create_engine
from api.errors import RateLimited, ServiceUnavailable


@dataclass(frozen=True, slots=True)
class Limit:
    hits: int
    seconds: int


class Limiter(Protocol):
    async def hit(self, key: str, limit: Limit) -> float | None:
        """Count one hit on ``key``; the seconds to wait if that went over ``limit``, else None."""
        ...

    async def close(self) -> None: ...


class MemoryLimiter:
    """Windows kept in this process (one worker, or SQLite)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._windows: dict[str, tuple[float, int]] = {}

    async def hit(self, key: str, limit: Limit) -> float | None:
        now = time.monotonic()
        start, hits = self._windows.get(key, (now, 0))
        if now - start >= limit.seconds:
            start, hits = now, 0
        self._windows[key] = (start, hits + 1)
        if len(self._windows) > self.max_keys:
            self._forget_expired(now, limit.seconds)
        return start + limit.seconds - now if hits + 1 > limit.hits else None

    async def close(self) -> None:
        self._windows.clear()

    def _forget_expired(self, now: float, seconds: int) -> None:
        for key in [k for k, (start, _) in self._windows.items() if now - start >= seconds]:
            del self._windows[key]


_UPSERT = text(
    """
    INSERT INTO rate_limit_windows AS w (key, window_start, hits) VALUES (:key, now(), 1)
    ON CONFLICT (key) DO UPDATE SET
        hits = CASE WHEN w.window_start <= now() - make_interval(secs => :seconds) THEN 1 ELSE w.hits + 1 END,
        window_start = CASE WHEN w.window_start <= now() - make_interval(secs => :seconds)
                            THEN now() ELSE w.window_start END
    RETURNING hits, EXTRACT(EPOCH FROM (w.window_start + make_interval(secs => :seconds) - now()))
    """
)


class PostgresLimiter:
    """Windows in the ``rate_limit_windows`` table; each hit is one statement in its own transaction.

    The hits go through a small pool of their own. A request counts a hit while its session holds a
    connection of the main pool; were the hit to need a second one from that pool, enough
    concurrent requests would each hold one and wait for another, for ever.

    A hit that cannot be counted within ``wait`` seconds (its pool busy with others, the database
    slow) is refused with ``ServiceUnavailable`` (503, ``Retry-After``) rather than left to the pool's
    30 s timeout: the pool is small, and two hundred sign-ins at once would queue there.
    """

    def __init__(self, database: Database, *, connections: int = 2, wait: float = 2.0) -> None:
        url = database.engine.url.render_as_string(hide_password=False)
        self.engine = create_engine(url, pool_size=connections, max_overflow=connections)
        self.wait = wait

    async def hit(self, key: str, limit: Limit) -> float | None:
        try:
            async with asyncio.timeout(self.wait), self.engine.begin() as connection:
                hits, remaining = (
                    await connection.execute(_UPSERT, {"key": key, "seconds": limit.seconds})
                ).one()
        except (TimeoutError, PoolTimeout):
            raise ServiceUnavailable(f"rate-limit hit not counted within {self.wait:g} s", 1) from None
        return max(float(remaining), 0.0) if hits > limit.hits else None

    async def close(self) -> None:
        await self.engine.dispose()


async def throttle(limiter: Limiter, *checks: tuple[str, Limit]) -> None:
    """Count a hit on every key; ``RateLimited`` (with the longest wait) if any went over its limit."""
    waits = [wait for key, limit in checks if (wait := await limiter.hit(key, limit)) is not None]
    if waits:
        raise RateLimited(max(waits))


def limiter_for(database: Database) -> Limiter:
    if database.engine.dialect.name == "postgresql":
        return PostgresLimiter(database)
    return MemoryLimiter()
