"""The per-operation GraphQL context: what every resolver may reach through ``info.context``."""

from typing import TypeAlias

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.fastapi import BaseContext

from api.errors import Unauthenticated
from api.fetcher import Fetcher
from api.jobs import JobRunner
from api.services.auth import Attempt
from api.services.callers import Caller
from api.settings import Settings
from resolvers.loaders import Loaders


class Context(BaseContext):
    """Built by a FastAPI dependency for each operation: its own session, its own loaders."""

    def __init__(
        self,
        *,
        session: AsyncSession,
        caller: Caller | None,
        settings: Settings,
        attempt: Attempt,
        fetcher: Fetcher,
        jobs: JobRunner,
        refusal: Unauthenticated | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.settings = settings
        self.attempt = attempt
        self.fetcher = fetcher
        self.jobs = jobs
        self._caller = caller
        self._refusal = refusal
        self.loaders = Loaders(session, lambda: self.caller)

    @property
    def caller(self) -> Caller | None:
        """Who is calling. Credentials that did not check out are refused here, where an operation
        asks, so ``login`` and ``register`` work for a client holding a stale token (as the REST
        routes for them, which take no credentials, do)."""
        if self._refusal is not None:
            raise Unauthenticated(self._refusal.message)
        return self._caller


Info: TypeAlias = strawberry.Info[Context, None]


def signed_in(info: Info) -> Caller:
    """The caller, checked before the arguments are, in the order REST's ``CurrentCaller`` does it."""
    caller = info.context.caller
    if caller is None:
        raise Unauthenticated()
    return caller
