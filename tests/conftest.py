"""Fixtures: a migrated database per backend, a rolled-back transaction per test, the real app.

Every test that takes ``database`` (directly or through ``client``) runs once on SQLite and once on
PostgreSQL when ``SWITCHBOARD_TEST_POSTGRES_URL`` is set.
"""

import os
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpcore2
import httpx2
import pytest
from fastapi import FastAPI
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api import migrations, security
from api.app import create_app
from api.bus import Bus, bus_for
from api.db.base import Base
from api.db.engine import Database, create_engine, session_factory
from api.settings import Settings
from tests.compiled_world import World, build_world
from tests.targets import serving

POSTGRES_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]
TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256"


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes() -> Iterator[None]:
    """Argon2id with small memory and time costs: the same algorithm and code path, at 1 ms a hash
    instead of 150 ms (``test_security`` checks the production parameters separately)."""
    with pytest.MonkeyPatch.context() as patch:
        hasher = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
        patch.setattr(security, "_hasher", hasher)
        security._dummy_hash.cache_clear()
        yield
    security._dummy_hash.cache_clear()


@pytest.fixture(scope="session", autouse=True)
def one_tls_context() -> Iterator[None]:
    """The default TLS context of httpx2's clients built once, not per client: building it reads the
    system's CA bundle (20 ms), and each app a test starts opens an outbound client. The same context,
    the same certificates; no test reaches a TLS server (the target server is plain HTTP)."""
    real = httpcore2.default_ssl_context
    built: dict[tuple[bool, str | None, str | None], ssl.SSLContext] = {}

    def shared(*, _trust_env: bool = True) -> ssl.SSLContext:
        key = (_trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        if key not in built:
            built[key] = real(_trust_env=_trust_env)
        return built[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpcore2, "default_ssl_context", shared)
        yield


def database_url(backend: str, directory: Path) -> str:
    if backend == "postgresql":
        assert POSTGRES_URL is not None
        return POSTGRES_URL
    return f"sqlite+aiosqlite:///{directory / 'switchboard-test.db'}"


@pytest.fixture(scope="session", params=BACKENDS)
async def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    """A database migrated to head by alembic, the only thing that creates the schema."""
    engine = create_engine(database_url(request.param, tmp_path_factory.mktemp(request.param)))
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            if foreign := await connection.run_sync(migrations.foreign_tables):
                pytest.exit(
                    f"SWITCHBOARD_TEST_POSTGRES_URL holds tables that are not ours: {sorted(foreign)}"
                )
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
        await connection.run_sync(migrations.upgrade)
    yield engine
    await engine.dispose()


@asynccontextmanager
async def started_bus(engine: AsyncEngine) -> AsyncIterator[Bus]:
    """The bus the test's databases publish to, the kind the app picks for the engine. What a test
    brings to the app, the test starts and closes."""
    bus = bus_for(engine.url)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


@asynccontextmanager
async def rolled_back_database(engine: AsyncEngine, bus: Bus) -> AsyncIterator[Database]:
    """A view of the database where everything runs in one outer transaction, rolled back at the
    end; the code under test commits to savepoints inside it."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        sessions = session_factory(connection, join_transaction_mode="create_savepoint")
        yield Database(engine, sessions, bus=bus)
        await transaction.rollback()


@asynccontextmanager
async def running_app(settings: Settings, database: Database | None) -> AsyncIterator[FastAPI]:
    """The app over ``database``, or over one its lifespan opens from ``settings`` (``None``)."""
    app = create_app(settings, database=database)
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def asgi_client(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    """A client of ``app`` in this process; a failure in the app is its answer (a 500), not raised."""
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def bus(engine: AsyncEngine) -> AsyncIterator[Bus]:
    async with started_bus(engine) as bus:
        yield bus


@pytest.fixture
async def database(engine: AsyncEngine, bus: Bus) -> AsyncIterator[Database]:
    """The test's view of the database, rolled back at the end (``rolled_back_database``)."""
    async with rolled_back_database(engine, bus) as database:
        yield database


def settings_for_tests(**overrides: Any) -> Settings:
    """Settings for a test: its own secret, and rate limits no ordinary test reaches (the rate-limit
    tests set their own)."""
    values: dict[str, Any] = {
        "secret_key": TEST_SECRET,
        "database_url": "sqlite+aiosqlite:///:memory:",
        "rate_limit_login_per_account": 10_000,
        "rate_limit_login_per_address": 10_000,
        "rate_limit_register_per_address": 10_000,
        "rate_limit_fetch_per_user": 10_000,
        "graphql_cost_budget": 2**31 - 1,
        # No sweep for interrupted jobs while a test runs (the job tests choose their own lease).
        "fetch_job_lease": 3600,
    }
    return Settings(_env_file=None, **(values | overrides))


@pytest.fixture
def settings() -> Settings:
    return settings_for_tests()


@pytest.fixture
async def app(settings: Settings, database: Database) -> AsyncIterator[FastAPI]:
    async with running_app(settings, database) as app:
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    async with asgi_client(app) as client:
        yield client


@pytest.fixture(scope="session")
async def targets() -> AsyncIterator[str]:
    """The base URL of a real HTTP server on 127.0.0.1 for the fetcher (``tests/targets.py``)."""
    async with serving() as url:
        yield url


def fetch_settings(**overrides: Any) -> Settings:
    """Settings that let the fetcher reach the local target server (and nothing else private)."""
    return settings_for_tests(**({"fetch_allow_networks": ["127.0.0.0/8"]} | overrides))


@pytest.fixture
async def live_database(engine: AsyncEngine, bus: Bus) -> AsyncIterator[Database]:
    """A database whose transactions really commit, for tests where a background job writes beside
    the requests (one rolled-back connection cannot be shared by both). Emptied afterwards."""
    database = Database.of(engine, bus=bus)
    yield database
    await database.release()
    async with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(table.delete())


@pytest.fixture
def live_settings() -> Settings:
    return fetch_settings()


@pytest.fixture
async def live_app(live_settings: Settings, live_database: Database) -> AsyncIterator[FastAPI]:
    async with running_app(live_settings, live_database) as app:
        yield app


@pytest.fixture
async def live_client(live_app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    async with asgi_client(live_app) as client:
        yield client


Served = tuple[str, FastAPI]
Serve = Callable[..., AbstractAsyncContextManager[Served]]


@pytest.fixture
def serve(live_database: Database) -> Serve:
    """Serve the app over a live database, with settings of the test's choosing."""

    @asynccontextmanager
    async def serving_app(**overrides: Any) -> AsyncIterator[Served]:
        app = create_app(fetch_settings(**overrides), database=live_database)
        async with serving(app, lifespan="on") as url:
            yield url, app

    return serving_app


@pytest.fixture
async def plain_app(settings: Settings, database: Database) -> AsyncIterator[FastAPI]:
    """The same app and data with every read on the services' usual path (compiled reads off), for
    the differential tests of the compiled one."""
    async with running_app(settings_for_tests(compiled_reads=False), database) as app:
        yield app


@pytest.fixture
async def world(database: Database, settings: Settings) -> World:
    return await build_world(database, settings)
