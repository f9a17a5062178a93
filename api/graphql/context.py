"""The contexts of GraphQL operations as this transport builds them: one per operation over HTTP,
from the same FastAPI dependencies the REST routes use, and one per WebSocket, whose identity is
shared by its operations while each of them (and each event of a subscription) gets a session and
loaders of its own."""

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection, Request

from api.db.engine import Database
from api.deps import (
    API_KEY_HEADER,
    ApiKeyDep,
    BearerDep,
    BodyReadFirst,
    ClientAddressDep,
    DatabaseDep,
    FeedsDep,
    FetcherDep,
    JobsDep,
    LimiterDep,
    SettingsDep,
    SignInsDep,
)
from api.errors import DomainError, Unauthenticated
from api.graphql.documents import named_digest
from api.graphql.parsing import only_reads
from api.services import auth
from api.services.callers import Caller
from api.services.live import Shared
from api.services.signins import SignIns
from api.settings import Settings
from resolvers.context import Context
from resolvers.loaders import Loaders


async def get_operation_session(
    _body: BodyReadFirst, connection: HTTPConnection, database: DatabaseDep, settings: SettingsDep
) -> AsyncIterator[AsyncSession | None]:
    """The session of an operation over HTTP (as ``SessionDep``); none for a WebSocket, whose
    operations and events open their own (``SocketContext.scope``).

    A query without an API key (whose use is written down) gets a session that only reads: on
    SQLite it never waits for the write lock, as WAL lets it read beside a writer. That is any GET
    (GraphQL over HTTP refuses a mutation sent with GET) and a JSON POST whose operation is a query."""
    if connection.scope["type"] == "websocket":
        yield None
        return
    read_only = API_KEY_HEADER not in connection.headers and await _is_query(connection, settings)
    async with database.session(read_only=read_only) as session:
        yield session


async def _is_query(connection: HTTPConnection, settings: Settings) -> bool:
    if connection.scope.get("method") == "GET":
        return True
    if not isinstance(connection, Request) or connection.headers.get("content-type", "").split(";")[0] != (
        "application/json"
    ):
        return False  # a multipart upload is a mutation; anything else Strawberry refuses
    try:
        body = json.loads(await connection.body())
    except (ValueError, RecursionError):  # not JSON, or nested past the parser: Strawberry refuses it
        return False
    if not isinstance(body, dict):
        return False
    query = body.get("query")
    if query is None:  # named by its hash: the document this process holds under it, if any
        try:
            digest = named_digest(body.get("documentId"), body.get("extensions"))
        except DomainError:
            return False
        query = None if digest is None else connection.app.state.documents.peek(digest)
    return only_reads(query, body.get("operationName"), settings.graphql_max_tokens)


OperationSession = Annotated[AsyncSession | None, Depends(get_operation_session, scope="function")]


async def get_context(
    _body: BodyReadFirst,
    session: OperationSession,
    database: DatabaseDep,
    settings: SettingsDep,
    signins: SignInsDep,
    bearer: BearerDep,
    api_key: ApiKeyDep,
    limiter: LimiterDep,
    client: ClientAddressDep,
    fetcher: FetcherDep,
    jobs: JobsDep,
    feeds: FeedsDep,
) -> Context:
    """The context of one operation over HTTP, or of a socket, from the same dependencies and
    service the REST routes use."""
    common: dict[str, Any] = {
        "settings": settings,
        "limiter": limiter,
        "client": client,
        "fetcher": fetcher,
        "jobs": jobs,
        "feeds": feeds,
    }
    if session is None:
        handshake = {"bearer": bearer, "api_key": api_key}
        return SocketContext(database=database, signins=signins, handshake=handshake, **common)
    caller, refusal = None, None
    try:
        caller = await auth.identify(
            session, settings=settings, signins=signins, bearer=bearer, api_key=api_key
        )
    except Unauthenticated as exc:
        refusal = exc
    return Context(session=session, caller=caller, refusal=refusal, **common)


def socket_credentials(
    params: dict[str, Any], handshake: dict[str, str | None]
) -> tuple[str | None, str | None]:
    """The bearer token and API key of a socket: from the ``connection_init`` payload
    (``Authorization: Bearer …``, ``authToken``, ``X-API-Key`` or ``apiKey``), else from the
    upgrade request's headers. A value that is not a string, or another scheme than Bearer, is
    ``Unauthenticated``."""
    given = {key.lower(): value for key, value in params.items()}
    bearer, api_key = given.get("authorization"), given.get("x-api-key", given.get("apikey"))
    token = given.get("authtoken")
    for value in (bearer, api_key, token):
        if value is not None and not isinstance(value, str):
            raise Unauthenticated("Credentials must be strings.")
    if bearer is not None:
        scheme, _, bearer = bearer.partition(" ")
        if scheme.lower() != "bearer" or not bearer.strip():
            raise Unauthenticated("Authorization must be a Bearer token.")
    elif token is not None:
        bearer = token.removeprefix("Bearer ")
    if bearer is None and api_key is None:
        return handshake.get("bearer"), handshake.get("api_key")
    return (bearer.strip() if bearer else None), api_key


class _Scope:
    """The session and loaders of one operation or event. An event's are made on first use: a
    subscriber whose response another subscriber's execution already gave (``api.graphql.execution``)
    never touches them, and a thousand of them should not build a thousand sessions per event."""

    __slots__ = ("_loaders", "_make", "_session", "caller", "shared")

    def __init__(
        self, make: Callable[[], AsyncSession], caller: Callable[[], Caller | None], shared: Shared
    ) -> None:
        self._make, self.caller, self.shared = make, caller, shared
        self._session: AsyncSession | None = None
        self._loaders: Loaders | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._make()
        return self._session

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(self.session, self.caller)
        return self._loaders

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


# The session and loaders of the operation (or subscription event) running in the current task.
_scope: ContextVar[_Scope | None] = ContextVar("socket_scope", default=None)


class SocketContext(Context):
    """The context of a WebSocket. Strawberry builds one per socket and shares it among the socket's
    operations; the identity lives here (``on_ws_connect`` sets it), but each operation, and each
    event of a subscription, gets a session and loaders of its own (``scope``), found through a
    context variable of the task that runs it."""

    def __init__(
        self,
        *,
        database: Database,
        signins: SignIns,
        handshake: dict[str, str | None],
        **kwargs: Any,
    ) -> None:
        super().__init__(session=None, caller=None, **kwargs)
        self.database = database
        self.signins = signins
        self.handshake = handshake  # credentials sent with the upgrade request, if any
        self.connection_params: dict[str, Any] | None = None
        self.close_socket: Callable[[int, str], Awaitable[None]] | None = None

    def sign_in(self, caller: Caller | None) -> None:
        self._caller = caller

    async def sign_in_with(self, bearer: str | None, api_key: str | None) -> None:
        """Sign in with a bearer token or an API key, if given (``Unauthenticated`` for ones that do
        not hold); without either, the stream may still run what needs no one."""
        if bearer is None and api_key is None:
            return
        # An API key's use may be written down (``last_used_at``); a token only reads.
        async with self.database.session(read_only=api_key is None) as session:
            caller = await auth.identify(
                session, settings=self.settings, signins=self.signins, bearer=bearer, api_key=api_key
            )
        self.sign_in(caller)

    def detached(self, caller: Caller) -> "SocketContext":
        """A context of the same app with no socket, signed in as ``caller`` (a subscription's
        relay, ``api.graphql.relay``, runs in one)."""
        context = SocketContext(
            database=self.database,
            signins=self.signins,
            handshake={},
            settings=self.settings,
            limiter=self.limiter,
            client=self.client,
            fetcher=self.fetcher,
            jobs=self.jobs,
            feeds=self.feeds,
        )
        context.sign_in(caller)
        return context

    @property
    def session(self) -> AsyncSession:
        return self._current().session

    @property
    def loaders(self) -> Loaders:
        return self._current().loaders

    def _current(self) -> _Scope:
        scope = _scope.get()
        if scope is None:
            raise AttributeError("no session outside an operation's scope")
        return scope

    @asynccontextmanager
    async def scope(self, shared: Shared = None, *, read_only: bool = False) -> AsyncIterator[None]:
        """A session (committed at the end, rolled back on an error) and loaders for what runs inside.
        The session connects only if something reads, so a subscription's own scope costs nothing."""
        if read_only:  # nothing to commit: a session only if the event's resolvers read
            scope = _Scope(self.database.reads, lambda: self.caller, shared)
            previous = _scope.get()
            _scope.set(scope)
            try:
                yield
            finally:
                _scope.set(previous)  # not reset(): an event's generator may be closed elsewhere
                await scope.close()
            return
        async with self.database.session() as session:
            previous = _scope.get()
            _scope.set(_Scope(lambda: session, lambda: self.caller, shared))
            try:
                yield
            finally:
                _scope.set(previous)

    def event_scope(self, shared: Shared = None) -> AbstractAsyncContextManager[None]:
        return self.scope(shared, read_only=True)  # resolving an event reads

    def shared(self) -> Shared:
        scope = _scope.get()
        return None if scope is None else scope.shared

    async def signed_out(self, reason: str) -> None:
        if self.close_socket is not None:
            await self.close_socket(4403, reason)
