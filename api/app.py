"""The application factory."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from starlette.middleware.trustedhost import TrustedHostMiddleware

from api import ide, rest
from api.bus import Bus, bus_for
from api.compression import CompressionMiddleware
from api.conditional import ConditionalGetMiddleware
from api.db.engine import Database, normalize_url
from api.fetcher import Fetcher, fetch_limits, outbound_client
from api.graphql import sse
from api.graphql.compiled import CompiledReads
from api.graphql.documents import Documents
from api.graphql.router import GraphQLApp
from api.graphql.schema import build_schema
from api.jobs import JobRunner
from api.logs import configure_logging
from api.middleware import (
    BodyLimitMiddleware,
    MethodsMiddleware,
    MetricsMiddleware,
    RequestIdMiddleware,
    SecurityHeadersMiddleware,
)
from api.msgpack_bodies import MessagePackMiddleware
from api.problems import install_error_handlers, problem_media
from api.ratelimit import limiter_for
from api.rest import system
from api.security import HASHING, prepare_dummy_hash
from api.services.live import Feeds
from api.services.signins import SignIns
from api.settings import Settings, get_settings
from api.ssrf import Guard

# Room for a multipart body's boundaries and part headers around an upload of the largest size allowed.
MULTIPART_FRAMING = 64 * 1024
# Objects allocated before the cyclic collector's youngest generation is collected (CPython: 700).
# An event reaching a thousand subscribers allocates far more than 700 objects, and each collection
# of the older generations walks every socket's state: at the default, collection took more than
# half of the delivery's CPU time (``bench.live``). Reference counting still frees almost everything
# at once; only cycles wait longer.
YOUNG_GENERATION_THRESHOLD = 50_000


def _bus_of(database: Database) -> Bus:
    """The bus of a database brought to the app: one of ``api.bus``'s, as the live feeds and the job
    runner listen to it as well as publish."""
    if not isinstance(database.bus, Bus):
        raise TypeError("A database brought to the app needs its bus: Database(..., bus=bus_for(url)).")
    return database.bus


def operation_id(route: APIRoute) -> str:
    """An operation's id in OpenAPI, as generated clients name their methods: the route function's
    name in camelCase (``listApiKeys``), short because the names are unique across the app."""
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the app. ``database`` lets a caller (the test suite) bring an engine it manages, with the
    bus its sessions publish to, and start and close both itself; otherwise the lifespan builds the
    bus and the database from ``settings.database_url`` and closes them on shutdown."""
    settings = settings or get_settings()
    configure_logging(settings.log_format, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])
        owned = database is None
        if database is None:
            bus = bus_for(normalize_url(settings.database_url))
            app.state.database = Database.from_url(
                settings.database_url,
                bus=bus,
                pool_size=settings.database_pool_size,
                max_overflow=settings.database_max_overflow,
                statement_timeout=settings.graphql_timeout,
            )
        else:
            bus, app.state.database = _bus_of(database), database
        app.state.limiter = limiter_for(app.state.database)
        app.state.feeds = Feeds(app.state.database, bus, settings.subscription_queue_size)
        if owned:
            await bus.start()
        app.state.signins = SignIns()
        await app.state.signins.follow(bus)
        app.state.database.listeners.append(app.state.signins.hear)
        HASHING.configure(settings.password_hash_concurrency, settings.password_hash_wait)
        await prepare_dummy_hash()
        async with outbound_client(settings) as client:
            app.state.fetcher = Fetcher(
                client, Guard(allow=settings.fetch_allow_networks), fetch_limits(settings)
            )
            app.state.jobs = JobRunner(
                app.state.database,
                app.state.fetcher,
                bus,
                concurrency=settings.fetch_concurrency,
                lease=settings.fetch_job_lease,
                max_attempts=settings.fetch_job_max_attempts,
            )
            await app.state.jobs.start()
            try:
                yield
            finally:
                await app.state.sse_reservations.close()
                await app.state.relays.close()
                await app.state.jobs.close()
                app.state.database.listeners.remove(app.state.signins.hear)
                await app.state.signins.close()
                if owned:
                    await bus.close()
                await app.state.limiter.close()
                if owned:
                    await app.state.database.dispose()

    app = FastAPI(
        title="Switchboard",
        version="0.1.0",
        summary="A GraphQL-first API service; this is its REST compatibility layer.",
        lifespan=lifespan,
        # Served by api.ide from our own copy of Swagger UI; ReDoc, which only loads from a CDN, is off.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        generate_unique_id_function=operation_id,
    )
    generated = app.openapi
    app.openapi = lambda: problem_media(generated())  # type: ignore[method-assign]
    app.state.settings = settings
    app.state.ide = ide.DeveloperTools.load()
    app.include_router(ide.router)
    app.include_router(system.router)
    if settings.metrics_enabled:
        app.include_router(system.metrics_router)
    app.include_router(rest.router)
    try:
        app.state.documents = Documents.of(settings)
    except ValueError as exc:
        raise SystemExit(f"switchboard: refusing to start: {exc}") from None
    graphql = GraphQLApp(build_schema(settings), settings, app.state.documents)
    app.state.relays = graphql.relays  # the subscriptions its sockets follow, as tests count them
    app.state.graphql_schema = graphql.schema
    app.state.sse_reservations = sse.Reservations()
    app.include_router(sse.router)
    app.include_router(graphql, prefix="/graphql")
    install_error_handlers(app)

    if graphql.compiled_schema is not None:  # innermost: every other layer still applies
        app.add_middleware(CompiledReads, schema=graphql.compiled_schema, path="/graphql")
    # The representation, inside out: tagged and revalidated, then MessagePack, then compressed;
    # each outer one rewrites the tags of the one inside (api.entity_tags). All see HEAD as GET.
    app.add_middleware(ConditionalGetMiddleware)
    app.add_middleware(MessagePackMiddleware, max_bytes=settings.request_max_bytes)
    app.add_middleware(CompressionMiddleware)
    app.add_middleware(MethodsMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.request_max_bytes,
        multipart_max_bytes=settings.upload_max_bytes + MULTIPART_FRAMING,
        max_header_bytes=settings.request_max_header_bytes,
        body_timeout=settings.request_body_timeout,
    )
    if settings.allowed_hosts != ["*"]:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[
                "Location",
                "Link",
                "X-Request-ID",
                "ETag",
                "Deprecation",
                "Sunset",
                "Retry-After",
            ],
        )
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)  # around the request id's own answers too
    if settings.metrics_enabled:
        app.add_middleware(MetricsMiddleware)  # outermost: it times the others too
    return app
