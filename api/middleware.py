"""Pure ASGI middleware (no per-request task or body copy, unlike ``BaseHTTPMiddleware``)."""

import asyncio
import re
import time
import uuid
from time import perf_counter

from fastapi.routing import iter_route_contexts
from prometheus_client import Counter, Histogram
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.db.outages import unavailable
from api.logs import log_access, request_id_var
from api.metrics import HTTP_DURATION, HTTP_REQUESTS
from api.problems import internal_error, log_unexpected, problem, refusal

REQUEST_ID_HEADER = b"x-request-id"
_ACCEPTABLE_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")


class RequestIdMiddleware:
    """Gives each request an id: the client's ``X-Request-ID`` when it is sane, else a new one.

    The id goes back in the response header, into every log line of the request (through a context
    variable) and into ``scope`` for the error handlers that run outside this middleware.

    It also writes each HTTP request's access line, and is where a bug that escapes the app is
    logged (once, with the id) and answered with a masked 500. Nothing is re-raised to the server
    when the answer could be given: Starlette and uvicorn would each log the traceback again, and
    uvicorn would drop a connection that is fine to keep. A failure after the response began, or on
    a socket, is re-raised so that the server breaks the connection off. Database trouble is no bug:
    it is answered 503 and told to the database's ``Outage``, which logs it once per outage.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER, b"")
        request_id = given.decode() if _ACCEPTABLE_ID.fullmatch(given) else uuid.uuid4().hex
        scope["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    (REQUEST_ID_HEADER, request_id.encode()),
                ]
            await send(message)

        try:
            # A socket's messages go straight through: only an HTTP answer carries the id, and a
            # wrapper would cost a call on every message to every socket.
            await self.app(scope, receive, send_with_id if scope["type"] == "http" else send)
        except Exception as exc:
            if scope["type"] == "http" and status is None and (down := unavailable(exc)) is not None:
                database = getattr(scope["app"].state, "database", None)
                if database is not None:
                    database.outage.refuse(down)
                await refusal(Request(scope), down)(scope, receive, send_with_id)
                return
            log_unexpected(scope, exc)
            if scope["type"] != "http" or status is not None:
                raise
            await internal_error(Request(scope))(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http":
                log_access(scope, status, started)
            request_id_var.reset(token)


class MethodsMiddleware:
    """``HEAD`` and ``OPTIONS`` for every route, answered in one place.

    ``HEAD`` runs the ``GET`` route and drops the body (headers, ``Content-Length`` included, stay);
    ``OPTIONS`` answers 204 with an ``Allow`` header listing the methods the path's routes accept.
    CORS preflights never get here: the CORS middleware, outside this one, answers them.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        methods = _allowed_methods(scope)
        if not methods:
            await self.app(scope, receive, send)
        elif scope["method"] == "OPTIONS":
            implied = {"HEAD", "OPTIONS"} if "GET" in methods else {"OPTIONS"}
            allow = ", ".join(sorted(methods | implied))
            await Response(status_code=204, headers={"Allow": allow})(scope, receive, send)
        elif "GET" in methods:
            await self.app({**scope, "method": "GET"}, receive, _without_body(send))
        else:
            await self.app(scope, receive, send)


_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def _allowed_methods(scope: Scope) -> set[str]:
    """The methods some route of the app would take on this path, found by asking the routes."""
    routes = scope["app"].router.routes
    return {
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    }


def _without_body(send: Send) -> Send:
    async def send_headers_only(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_headers_only


class BodyLimitMiddleware:
    """The request's limits: headers over ``max_header_bytes`` in all are 431, a body over
    ``max_bytes`` (``multipart_max_bytes`` for uploads) is 413, a body that takes longer than
    ``body_timeout`` seconds to arrive is 408, each with a problem document.

    Headers and a declared ``Content-Length`` over the limit are answered before the app runs
    (uvicorn's httptools parser takes headers of any size). A body without a length (chunked) is
    counted as the app reads it; past the limit, reading raises an HTTP 413 that the error handlers
    render like any other refusal, before anything was written. The body's time counts from the
    request's start to its last byte, so a client trickling a byte at a time cannot hold a
    connection (or, through ``read_body_first``, a handler) for long; once the body is in, waiting
    on ``receive`` (a stream listening for the client to go) is not timed.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        multipart_max_bytes: int,
        max_header_bytes: int = 16 * 1024,
        body_timeout: float = 10.0,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.multipart_max_bytes = multipart_max_bytes
        self.max_header_bytes = max_header_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if sum(len(name) + len(value) for name, value in scope["headers"]) > self.max_header_bytes:
            detail = f"The request's headers are larger than {self.max_header_bytes} bytes."
            code = "REQUEST_HEADER_FIELDS_TOO_LARGE"
            await problem(Request(scope), 431, code, detail)(scope, receive, send)
            return
        headers = Headers(scope=scope)
        multipart = headers.get("content-type", "").startswith("multipart/form-data")
        limit = self.multipart_max_bytes if multipart else self.max_bytes
        detail = f"The request body is larger than {limit} bytes."
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await problem(Request(scope), 413, "PAYLOAD_TOO_LARGE", detail)(scope, receive, send)
            return
        received = 0
        complete = False
        deadline = asyncio.get_running_loop().time() + self.body_timeout

        async def counted() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                late = f"The request body did not arrive within {self.body_timeout:g} s."
                raise HTTPException(408, late, headers={"Connection": "close"}) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, detail)
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, counted, send)


class SecurityHeadersMiddleware:
    """The headers every HTTP answer carries: no MIME sniffing, no framing, no referrer, and a
    content security policy that allows nothing for answers that set none of their own (the IDE
    pages set theirs, ``api.ide``). Appended to the response start, so cheap on the read path."""

    HEADERS = (
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
    )
    CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                given = list(message.get("headers", ()))
                names = {name.lower() for name, _ in given}
                added = [header for header in (*self.HEADERS, self.CSP) if header[0] not in names]
                message["headers"] = given + added
            await send(message)

        await self.app(scope, receive, send_with_headers)


_METHOD_LABELS = frozenset({*_METHODS, "HEAD", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"


class MetricsMiddleware:
    """Counts and times each HTTP request by route template, method and status (``api.metrics``).

    Outermost, so it times the other middleware too and sees the answers they give themselves
    (413, ``OPTIONS``, CORS preflights). The template is that of the route the router chose, which
    it leaves in ``scope``; a request answered before routing, or routed on a copy of the scope
    (``HEAD``), has its path matched against the templates here, and a path no route knows is
    ``unmatched``. Methods outside the usual few are ``other``: no label takes a client's word as
    is. The labelled series are kept in a dict, so a request costs two lookups and two updates.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._templates: _Templates | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500  # unless a response starts: the server answers a failure with 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            elapsed = perf_counter() - started
            method = scope["method"] if scope["method"] in _METHOD_LABELS else "other"
            templates = self._templates or self._load(scope)
            template = templates.of(scope.get("route"), scope["path"])
            key = (template, method, status)
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = (
                    HTTP_REQUESTS.labels(template, method, str(status)),
                    HTTP_DURATION.labels(template, method),
                )
            series[0].inc()
            series[1].observe(elapsed)

    def _load(self, scope: Scope) -> "_Templates":
        """The app's templates, read once its routes are all in (the first request comes after)."""
        self._templates = _Templates(scope["app"].router.routes)
        return self._templates


class _Templates:
    """The full template of every route, prefixes of included routers and mounts included: the
    route the router leaves in ``scope`` knows only its own part of the path."""

    def __init__(self, routes: list[BaseRoute]) -> None:
        self._by_route: dict[int, str] = {}
        self._patterns: list[tuple[re.Pattern[str], str]] = []
        for context in iter_route_contexts(routes):
            if context.path is None or context.path_format is None:
                continue
            template, path = context.path_format, context.path
            if isinstance(context.original_route, Mount):
                template, path = f"{template.removesuffix('/{path}')}/{{path}}", f"{path}/{{path:path}}"
            self._by_route[id(context.original_route)] = template
            self._patterns.append((compile_path(path)[0], template))

    def of(self, route: BaseRoute | None, path: str) -> str:
        if route is not None:
            template = self._by_route.get(id(route))
            if template is not None:
                return template
        for pattern, template in self._patterns:
            if pattern.match(path):
                return template
        return UNMATCHED_ROUTE
