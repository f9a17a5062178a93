"""FastAPI dependencies, shared by the REST routes and the GraphQL context alike."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import ClientDisconnect, HTTPConnection, Request

from api.db.engine import Database
from api.errors import ClientGone, Unauthenticated
from api.fetcher import Fetcher
from api.jobs import JobRunner
from api.ratelimit import Limiter
from api.services import auth
from api.services.callers import SCOPES, Caller
from api.services.live import Feeds
from api.services.signins import SignIns
from api.settings import Settings

TOKEN_URL = "/api/v1/auth/token"
API_KEY_HEADER = "X-API-Key"


async def get_app_settings(connection: HTTPConnection) -> Settings:
    settings: Settings = connection.app.state.settings
    return settings


async def get_database(connection: HTTPConnection) -> Database:
    database: Database = connection.app.state.database
    return database


async def get_limiter(connection: HTTPConnection) -> Limiter:
    limiter: Limiter = connection.app.state.limiter
    return limiter


async def get_fetcher(connection: HTTPConnection) -> Fetcher:
    fetcher: Fetcher = connection.app.state.fetcher
    return fetcher


async def get_signins(connection: HTTPConnection) -> SignIns:
    signins: SignIns = connection.app.state.signins
    return signins


async def get_job_runner(connection: HTTPConnection) -> JobRunner:
    jobs: JobRunner = connection.app.state.jobs
    return jobs


async def get_client_address(connection: HTTPConnection) -> str:
    """The client's address (behind a proxy, uvicorn's --proxy-headers puts the real one here)."""
    return connection.client.host if connection.client else "unknown"


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
LimiterDep = Annotated[Limiter, Depends(get_limiter)]
ClientAddressDep = Annotated[str, Depends(get_client_address)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SignInsDep = Annotated[SignIns, Depends(get_signins)]
FetcherDep = Annotated[Fetcher, Depends(get_fetcher)]
JobsDep = Annotated[JobRunner, Depends(get_job_runner)]


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_session(connection: HTTPConnection, database: DatabaseDep) -> AsyncIterator[AsyncSession]:
    """One session and transaction per request: committed when the handler returns, rolled back
    when it raises. Scoped to the handler, so the commit happens before the response is sent.

    A request that only reads (a safe method, without an API key, whose use may be written down as
    ``last_used_at``) gets a read-only session: on SQLite it never waits for the write turn."""
    method = connection.scope.get("method")
    read_only = method in SAFE_METHODS and API_KEY_HEADER not in connection.headers
    async with database.session(read_only=read_only) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_feeds(connection: HTTPConnection) -> Feeds:
    feeds: Feeds = connection.app.state.feeds
    return feeds


FeedsDep = Annotated[Feeds, Depends(get_feeds)]


async def read_body_first(connection: HTTPConnection) -> None:
    """Read the whole body (at most the body cap) before any transaction begins. FastAPI does so for
    the bodies it parses itself; a handler that reads its own (uploads, GraphQL) takes this first,
    so a client sending slowly does not hold a transaction open (on SQLite, the write lock)."""
    if isinstance(connection, Request):
        try:
            await connection.body()
        except ClientDisconnect:
            raise ClientGone() from None


BodyReadFirst = Annotated[None, Depends(read_body_first)]


class _BearerToken(OAuth2PasswordBearer):
    """The token of an ``Authorization: Bearer`` header, on HTTP requests and WebSockets alike.

    Subclassing OAuth2PasswordBearer keeps the OpenAPI security scheme, so Swagger's Authorize button
    signs in through the token endpoint.
    """

    async def __call__(self, connection: HTTPConnection) -> str | None:
        scheme, _, token = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None


# What each scope lets a token or key do, as Swagger's Authorize dialog lists them.
SCOPE_DESCRIPTIONS = {
    "users:read": "Read accounts: one's own, or any for an admin",
    "users:write": "Change or delete accounts",
    "fetch": "Fetch URLs, now or as jobs",
    "admin": "Administer every account and job (administrators only)",
    "graphql:arbitrary": "Send GraphQL documents that are not trusted (administrators only)",
}
assert set(SCOPE_DESCRIPTIONS) == SCOPES, "every scope described, and only those"

bearer_token = _BearerToken(
    tokenUrl=TOKEN_URL,
    scheme_name="OAuth2Password",
    scopes=SCOPE_DESCRIPTIONS,
    description="A JWT access token from `POST /api/v1/auth/token` (the password grant; no client "
    "id or secret), sent as `Authorization: Bearer …`.",
    auto_error=False,
)


class _ApiKey(APIKeyHeader):
    """The ``X-API-Key`` header (on HTTP requests and WebSockets alike), declared for OpenAPI."""

    async def __call__(self, connection: HTTPConnection) -> str | None:
        return connection.headers.get(API_KEY_HEADER) or None


api_key_header = _ApiKey(
    name=API_KEY_HEADER,
    scheme_name="ApiKey",
    description="A key from `POST /api/v1/api-keys`, for scripts; it may do what its scopes allow.",
    auto_error=False,
)


BearerDep = Annotated[str | None, Depends(bearer_token)]


ApiKeyDep = Annotated[str | None, Depends(api_key_header)]


async def get_optional_caller(
    session: SessionDep, settings: SettingsDep, signins: SignInsDep, bearer: BearerDep, api_key: ApiKeyDep
) -> Caller | None:
    """Who is calling, or ``None`` without credentials; bad credentials are a 401."""
    return await auth.identify(session, settings=settings, signins=signins, bearer=bearer, api_key=api_key)


OptionalCaller = Annotated[Caller | None, Depends(get_optional_caller)]


async def get_current_caller(caller: OptionalCaller) -> Caller:
    if caller is None:
        raise Unauthenticated()
    return caller


CurrentCaller = Annotated[Caller, Depends(get_current_caller)]
