"""A real HTTP server on 127.0.0.1 for the fetcher to fetch: ordinary, slow, redirecting, huge,
never-ending and failing answers. Served by uvicorn in the test's event loop."""

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from tests.waiting import until_true


async def ok(request: Request) -> Response:
    return PlainTextResponse("hello", headers={"X-Seen-Host": request.headers.get("host", "")})


async def slow(request: Request) -> Response:
    # The target's deliberate slowness, which the tests of timeouts, cancelling and shutdown need.
    await asyncio.sleep(float(request.query_params.get("s", "0.1")))
    return PlainTextResponse("slow")


async def status(request: Request) -> Response:
    return PlainTextResponse("failed", status_code=int(request.path_params["code"]))


async def redirect(request: Request) -> Response:
    return RedirectResponse(request.query_params["to"], status_code=302)


async def loop(request: Request) -> Response:
    return RedirectResponse("/loop", status_code=302)


async def huge(request: Request) -> Response:
    return Response(b"x" * (2 * 1024 * 1024), media_type="application/octet-stream")


async def endless(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        while True:
            yield b"y" * 65536
            await asyncio.sleep(0)  # a turn of the loop between chunks, not a wait

    return StreamingResponse(chunks(), media_type="text/plain")


app = Starlette(
    routes=[
        Route("/ok", ok),
        Route("/slow", slow),
        Route("/status/{code:int}", status),
        Route("/redirect", redirect),
        Route("/loop", loop),
        Route("/huge", huge),
        Route("/endless", endless),
    ]
)


@asynccontextmanager
async def serving(served: ASGIApp = app, *, lifespan: Literal["on", "off"] = "off") -> AsyncIterator[str]:
    """The base URL of a uvicorn server on a free port of 127.0.0.1 in this loop (by default the
    target server), running until the block ends."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(served, log_level="warning", lifespan=lifespan))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await until_true(lambda: server.started, what="the server to start")  # uvicorn offers a flag, no event
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
