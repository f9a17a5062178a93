"""One-shot fetching, and the URL lists every way of fetching takes (a list, or an uploaded file)."""

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from api.db.engine import outside_transaction
from api.db.models import User
from api.errors import InvalidInput
from api.fetcher import Fetcher, Result
from api.ratelimit import Limit, Limiter, throttle
from api.services.callers import Caller, require
from api.settings import Settings


def url_list(settings: Settings, urls: Sequence[str], *, field: str = "urls") -> list[str]:
    """The URLs to fetch, in order, duplicates kept. Only their number is checked here: a URL that
    is no good becomes an ``INVALID_URL`` result rather than failing the whole call."""
    if not 1 <= len(urls) <= settings.fetch_max_urls:
        raise InvalidInput({field: [f"Give between 1 and {settings.fetch_max_urls} URLs."]})
    # No database stores a NUL in text; as U+FFFD it is still no valid URL, and its result can be kept.
    return [url.replace("\x00", "\ufffd") for url in urls]


def urls_in_file(settings: Settings, data: bytes) -> list[str]:
    """The URLs of an uploaded text file: one a line, blank lines and ``#`` comments skipped.

    ``data`` holds at most ``upload_max_bytes + 1`` bytes (the transport reads no further), so one
    byte too many tells the file is too large without reading all of it.
    """

    def refuse(message: str) -> InvalidInput:
        return InvalidInput({"file": [message]})

    if len(data) > settings.upload_max_bytes:
        raise refuse(f"The file is larger than {settings.upload_max_bytes} bytes.")
    if not data.strip():
        raise refuse("The file is empty.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise refuse("The file is not UTF-8 text (one URL a line).") from None
    if "\x00" in text:
        raise refuse("The file is not text (one URL a line).")
    lines = (line.strip() for line in text.splitlines())
    urls = [line for line in lines if line and not line.startswith("#")]
    if not urls:
        raise refuse("The file holds no URL, only blank lines and comments.")
    return url_list(settings, urls, field="file")


async def count_fetch(settings: Settings, limiter: Limiter, user: User) -> None:
    """One-shot fetches and started jobs share a budget per account."""
    limit = Limit(settings.rate_limit_fetch_per_user, settings.rate_limit_fetch_window)
    await throttle(limiter, (f"fetch:user:{user.id}", limit))


async def fetch_now(
    session: AsyncSession,
    *,
    settings: Settings,
    limiter: Limiter,
    fetcher: Fetcher,
    actor: Caller | None,
    urls: Sequence[str],
) -> list[Result]:
    """Fetch every URL now and answer each result, in order; nothing is stored.

    The caller's transaction ends before the fetching starts, and no other begins on its session until
    the results are in (``outside_transaction``).
    """
    user = require(actor, "fetch").user
    checked = url_list(settings, urls)
    await count_fetch(settings, limiter, user)
    async with outside_transaction(session):
        return await fetcher.fetch_all(checked, concurrency=settings.fetch_concurrency)
