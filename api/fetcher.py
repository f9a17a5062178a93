"""Fetching URLs safely: through the SSRF guard, to the address it checked, with bounded
concurrency (per call, per host and per process), timeouts, a size cap and at most a few redirects,
each hop checked again. Every URL gets a result; nothing here raises for a bad URL or a bad server.
"""

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncGenerator, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime

import httpx2

from api import metrics
from api.db.models import Outcome
from api.db.types import utcnow
from api.settings import Settings
from api.ssrf import BlockedTarget, Guard, InvalidTarget, Target, UnresolvableTarget

USER_AGENT = "Switchboard-Fetcher/0.1"


_FETCHES = {outcome: metrics.FETCHES.labels(outcome.value) for outcome in Outcome}


@dataclass(frozen=True, slots=True)
class Result:
    position: int
    url: str
    outcome: Outcome
    status_code: int | None = None
    final_url: str | None = None
    content_type: str | None = None
    bytes: int | None = None
    elapsed_ms: float | None = None
    error: str | None = None
    fetched_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int = 1024 * 1024
    max_redirects: int = 5
    connect_timeout: float = 5.0
    total_timeout: float = 10.0
    per_host: int = 4
    per_process: int = 100


def fetch_limits(settings: Settings) -> Limits:
    return Limits(
        max_bytes=settings.fetch_max_bytes,
        max_redirects=settings.fetch_max_redirects,
        connect_timeout=settings.fetch_connect_timeout,
        total_timeout=settings.fetch_total_timeout,
        per_host=settings.fetch_per_host,
        per_process=settings.fetch_per_process,
    )


def outbound_client(settings: Settings) -> httpx2.AsyncClient:
    """The process's one client for fetching. It follows no redirect itself (the fetcher checks each
    hop) and ignores proxy settings from the environment: a proxy would make the connection the
    guard checked go somewhere else."""
    return httpx2.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
        limits=httpx2.Limits(max_connections=settings.fetch_per_process, max_keepalive_connections=20),
    )


class _Refused(Exception):
    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


class Fetcher:
    """One per process, around the shared ``AsyncClient`` the app's lifespan opens."""

    def __init__(self, client: httpx2.AsyncClient, guard: Guard, limits: Limits = Limits()) -> None:
        self.client = client
        self.guard = guard
        self.limits = limits
        self._process = asyncio.Semaphore(limits.per_process)
        self._hosts: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(limits.per_host)
        )

    async def fetch_all(self, urls: Sequence[str], *, concurrency: int = 10) -> list[Result]:
        """Every URL's result, in the order given (duplicates kept), at most ``concurrency`` at once."""
        async with aclosing(self.fetch_each(enumerate(urls), concurrency=concurrency)) as results:
            return sorted([result async for result in results], key=lambda result: result.position)

    async def fetch_each(
        self, items: Iterable[tuple[int, str]], *, concurrency: int = 10
    ) -> AsyncGenerator[Result]:
        """The result of each ``(position, url)`` as soon as it is in, at most ``concurrency`` at once.

        Closing the iterator early (``aclosing``), or cancelling its consumer, cancels the fetches still
        under way: a cancelled job stops its connections at once instead of waiting for them.
        """
        gate = asyncio.Semaphore(concurrency)

        async def one(position: int, url: str) -> Result:
            async with gate:
                return await self.fetch(position, url)

        tasks = [asyncio.create_task(one(position, url)) for position, url in items]
        try:
            for done in asyncio.as_completed(tasks):
                yield await done
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def fetch(self, position: int, url: str) -> Result:
        started = time.perf_counter()

        def result(outcome: Outcome, **fields: object) -> Result:
            _FETCHES[outcome].inc()
            elapsed = round((time.perf_counter() - started) * 1000, 1)
            return Result(position, url, outcome, elapsed_ms=elapsed, fetched_at=utcnow(), **fields)  # type: ignore[arg-type]

        try:
            async with asyncio.timeout(self.limits.total_timeout):
                final, response_status, content_type, size = await self._follow(url)
        except _Refused as refusal:
            return result(refusal.outcome, error=str(refusal))
        except TimeoutError:
            return result(
                Outcome.TIMEOUT, error=f"No complete answer within {self.limits.total_timeout:g} s."
            )
        except httpx2.TimeoutException:
            return result(Outcome.TIMEOUT, error=f"No connection within {self.limits.connect_timeout:g} s.")
        except httpx2.HTTPError as exc:
            return result(Outcome.CONNECTION_ERROR, error=f"The connection failed: {type(exc).__name__}.")
        outcome = Outcome.OK if response_status < 400 else Outcome.HTTP_ERROR
        error = None if outcome is Outcome.OK else f"The server answered {response_status}."
        return result(
            outcome,
            status_code=response_status,
            final_url=final,
            content_type=content_type,
            bytes=size,
            error=error,
        )

    async def _follow(self, url: str) -> tuple[str, int, str | None, int]:
        for _ in range(self.limits.max_redirects + 1):
            target = await self._check(url)
            async with self._hosts[target.url.host], self._process:
                response = await self._send(target)
                try:
                    location = response.headers.get("location")
                    if response.is_redirect and location:
                        url = str(target.url.join(location))
                        continue
                    size = 0
                    async for chunk in response.aiter_raw():
                        size += len(chunk)
                        if size > self.limits.max_bytes:
                            raise _Refused(
                                Outcome.TOO_LARGE, f"The body is over {self.limits.max_bytes} bytes."
                            )
                    return str(target.url), response.status_code, response.headers.get("content-type"), size
                finally:
                    await response.aclose()
        raise _Refused(Outcome.HTTP_ERROR, f"More than {self.limits.max_redirects} redirects.")

    async def _check(self, url: str) -> Target:
        try:
            return await self.guard.check(url)
        except InvalidTarget as exc:
            raise _Refused(Outcome.INVALID_URL, str(exc)) from None
        except BlockedTarget as exc:
            raise _Refused(Outcome.BLOCKED, str(exc)) from None
        except UnresolvableTarget as exc:
            raise _Refused(Outcome.CONNECTION_ERROR, str(exc)) from None

    async def _send(self, target: Target) -> httpx2.Response:
        """Connect to the checked address, not to the name (no second lookup: DNS rebinding), while
        the request still names the host (``Host`` header, TLS server name and certificate check)."""
        request = self.client.build_request(
            "GET",
            target.url.copy_with(host=str(target.address)),
            headers={"Host": target.url.netloc.decode("ascii")},
            extensions={
                "sni_hostname": target.url.host,
                "timeout": {
                    "connect": self.limits.connect_timeout,
                    "read": self.limits.total_timeout,
                    "write": self.limits.total_timeout,
                    "pool": self.limits.total_timeout,
                },
            },
        )
        return await self.client.send(request, stream=True)
