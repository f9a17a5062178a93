"""The GraphQL context: what every resolver may reach through ``info.context``."""

import copy
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager, aclosing, nullcontext
from typing import Protocol, TypeAlias, TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.fastapi import BaseContext

from api.errors import Unauthenticated
from api.fetcher import Fetcher
from api.jobs import JobRunner
from api.ratelimit import Limiter
from api.services import users
from api.services.callers import Caller
from api.services.live import Feeds, Shared
from api.settings import Settings
from resolvers.loaders import Loaders


class _Update(Protocol):
    @property
    def shared(self) -> Shared: ...


UpdateT = TypeVar("UpdateT", bound=_Update)
EventT = TypeVar("EventT")


class Context(BaseContext):
    """Built by a FastAPI dependency for each operation over HTTP (``api.graphql.context``): its own
    session, its own loaders."""

    def __init__(
        self,
        *,
        session: AsyncSession | None,
        caller: Caller | None,
        settings: Settings,
        limiter: Limiter,
        client: str,
        fetcher: Fetcher,
        jobs: JobRunner,
        feeds: Feeds,
        refusal: Unauthenticated | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.limiter = limiter
        self.client = client  # the client's address, as sign-in throttling counts it
        self.fetcher = fetcher
        self.jobs = jobs
        self.feeds = feeds
        self._caller = caller
        self._refusal = refusal
        if session is not None:
            self._session = session
            self._loaders = Loaders(session, lambda: self.caller)

    async def with_session(self, session: AsyncSession, *, reread: bool) -> "Context":
        """This context with a session, and loaders, of its own: for one operation of a batch;
        ``reread``: with the caller's account as it stands now (an operation before it may have
        written), and refused as signed out once it is gone."""
        twin = copy.copy(self)
        twin._session = session
        twin._loaders = Loaders(session, lambda: twin.caller)
        if reread and self._caller is not None:
            twin._caller = await users.as_it_stands(session, self._caller)
            if twin._caller is None:
                twin._refusal = Unauthenticated("The account is gone.")
        return twin

    @property
    def session(self) -> AsyncSession:
        return self._session

    @property
    def loaders(self) -> Loaders:
        return self._loaders

    @property
    def caller(self) -> Caller | None:
        """Who is calling. Credentials that did not check out are refused here, where an operation
        asks, so ``login`` and ``register`` work for a client holding a stale token (as the REST
        routes for them, which take no credentials, do)."""
        if self._refusal is not None:
            raise Unauthenticated(self._refusal.message)
        return self._caller

    def event_scope(self, shared: Shared = None) -> AbstractAsyncContextManager[None]:
        """Where one event of a subscription is resolved; over HTTP, the operation's session serves."""
        return nullcontext()

    def shared(self) -> Shared:
        """What the subscribers of the event being resolved share (``api.graphql.execution`` keeps their
        common response there); nothing over HTTP."""
        return None

    async def signed_out(self, reason: str) -> None:
        """The caller's credentials stopped holding in the middle of a stream (nothing to do over HTTP:
        the stream's error says so)."""


Info: TypeAlias = strawberry.Info[Context, None]


def signed_in(info: Info) -> Caller:
    """The caller, or ``Unauthenticated``: the first thing every operation for signed-in callers asks,
    before it reads its arguments, as REST's ``CurrentCaller`` dependency runs before the body is
    validated. So both transports refuse an anonymous caller with bad input the same way."""
    caller = info.context.caller
    if caller is None:
        raise Unauthenticated()
    return caller


async def streamed(
    info: Info, updates: AsyncGenerator[UpdateT, None], convert: Callable[[UpdateT], EventT]
) -> AsyncGenerator[EventT, None]:
    """A subscription's events: each resolved in a scope of its own (a short session, fresh loaders),
    the service's stream closed with it. Credentials that stop holding on the way close the socket
    (4403) as well as ending the stream."""
    async with aclosing(updates):
        try:
            async for update in updates:
                async with info.context.event_scope(update.shared):
                    yield _converted(update, convert)
        except Unauthenticated as exc:
            await info.context.signed_out(exc.message)
            raise


def _converted(update: UpdateT, convert: Callable[[UpdateT], EventT]) -> EventT:
    """``convert(update)``, once for all the subscribers an event reached (``update.shared``)."""
    shared = update.shared
    if shared is None:
        return convert(update)
    key = (_converted, convert)
    if key not in shared:
        shared[key] = convert(update)
    event: EventT = shared[key]
    return event
