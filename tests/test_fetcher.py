"""The fetcher against a real local server (allowlisted 127.0.0.0/8): every outcome, concurrency."""

import ipaddress
import time
from collections.abc import AsyncIterator
from contextlib import aclosing

import httpx2
import pytest

from api.db.models import Outcome
from api.fetcher import Fetcher, Limits
from api.ssrf import Guard, IPAddress


@pytest.fixture
def base(targets: str) -> str:
    return targets


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    limits = Limits(max_bytes=1024 * 1024, max_redirects=5, connect_timeout=2, total_timeout=1.0, per_host=10)
    async with httpx2.AsyncClient(follow_redirects=False) as client:
        yield Fetcher(client, Guard(allow=[ipaddress.ip_network("127.0.0.0/8")]), limits)


async def test_an_ordinary_answer(fetcher: Fetcher, base: str) -> None:
    result = await fetcher.fetch(0, f"{base}/ok")
    assert (result.outcome, result.status_code, result.bytes, result.error) == (Outcome.OK, 200, 5, None)
    assert result.content_type is not None
    assert result.content_type.startswith("text/plain")
    assert result.elapsed_ms is not None


async def test_outcomes(fetcher: Fetcher, base: str) -> None:
    urls = [
        f"{base}/status/500",
        f"{base}/huge",
        f"{base}/endless",
        f"{base}/slow?s=3",
        f"{base}/loop",
        "ftp://example.com/",
        "http://10.0.0.1/",
        "http://127.0.0.1:1/",
        f"{base}/redirect?to=http://169.254.169.254/latest/meta-data/",
    ]
    results = await fetcher.fetch_all(urls)
    assert [r.outcome for r in results] == [
        Outcome.HTTP_ERROR,
        Outcome.TOO_LARGE,
        Outcome.TOO_LARGE,
        Outcome.TIMEOUT,
        Outcome.HTTP_ERROR,
        Outcome.INVALID_URL,
        Outcome.BLOCKED,
        Outcome.CONNECTION_ERROR,
        Outcome.BLOCKED,  # the redirect hop is checked again
    ]
    assert [r.position for r in results] == list(range(len(urls)))
    assert all(r.error for r in results)


async def test_redirects_are_followed_and_the_host_is_kept(fetcher: Fetcher, base: str) -> None:
    result = await fetcher.fetch(0, f"{base}/redirect?to=/ok")
    assert (result.outcome, result.final_url) == (Outcome.OK, f"{base}/ok")


async def test_concurrency_is_bounded_per_call(fetcher: Fetcher, base: str) -> None:
    started = time.perf_counter()
    results = await fetcher.fetch_all([f"{base}/slow?s=0.2"] * 6, concurrency=3)
    elapsed = time.perf_counter() - started
    assert all(r.outcome is Outcome.OK for r in results)
    assert 0.4 <= elapsed < 0.9  # two waves of three


async def test_the_connection_goes_to_the_checked_address(base: str) -> None:
    """A name only the guard's resolver knows: the fetch succeeds only if nothing resolves it again."""

    async def resolver(host: str, port: int) -> list[IPAddress]:
        assert host == "target.test"
        return [ipaddress.ip_address("127.0.0.1")]

    guard = Guard(allow=[ipaddress.ip_network("127.0.0.0/8")], resolver=resolver)
    port = httpx2.URL(base).port
    async with httpx2.AsyncClient() as client:
        result = await Fetcher(client, guard).fetch(0, f"http://target.test:{port}/ok")
    assert (result.outcome, result.final_url) == (Outcome.OK, f"http://target.test:{port}/ok")


async def test_a_host_that_does_not_resolve_is_a_connection_error_with_the_reason() -> None:
    async def resolver(host: str, port: int) -> list[IPAddress]:
        raise OSError(f"[Errno -2] Name or service not known: {host}")

    async with httpx2.AsyncClient() as client:
        result = await Fetcher(client, Guard(resolver=resolver)).fetch(0, "http://gone.test/")
    assert result.outcome is Outcome.CONNECTION_ERROR
    assert (
        result.error == "gone.test could not be resolved ([Errno -2] Name or service not known: gone.test)."
    )


async def test_concurrency_is_bounded_per_host(base: str) -> None:
    guard = Guard(allow=[ipaddress.ip_network("127.0.0.0/8")])
    async with httpx2.AsyncClient() as client:
        fetcher = Fetcher(client, guard, Limits(per_host=2))
        started = time.perf_counter()
        results = await fetcher.fetch_all([f"{base}/slow?s=0.2"] * 4, concurrency=10)
    assert all(r.outcome is Outcome.OK for r in results)
    assert time.perf_counter() - started >= 0.4  # two at a time to 127.0.0.1, whatever the call allows


async def test_results_come_as_they_complete_and_closing_early_stops_the_rest(
    fetcher: Fetcher, base: str
) -> None:
    started = time.perf_counter()
    urls = [(0, f"{base}/slow?s=0.9"), (1, f"{base}/slow?s=0.9"), (2, f"{base}/ok")]
    async with aclosing(fetcher.fetch_each(urls)) as results:
        first = await anext(results)
    assert (first.position, first.outcome) == (2, Outcome.OK)
    assert time.perf_counter() - started < 0.5  # the slow ones were cancelled, not waited for
