"""A real HTTP server on 127.0.0.1 for the fetcher to fetch: ordinary, slow, redirecting, huge,
never-ending and failing answers. Served by uvicorn in the test's event loop."""

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType
from typing import Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from api.serving import WEBSOCKET_OPTIONS


async def ok(request: Request) -> Response:
    return PlainTextResponse("hello", headers={"X-Seen-Host": request.headers.get("host", "")})


async def slow(request: Request) -> Response:
    # The target's deliberate slowness, which the tests of timeouts, cancelling and shutdown need.
    await asyncio.sleep(float(request.query_params.get("s", "0.1")))
    return PlainTextResponse("slow")


class Gate:
    """A page of the target server that does not answer until the test opens it: a fetch of ``url`` is
    in flight for exactly as long as the test needs (a slow page only hopes it still is), and once open
    it answers at once, to later fetches too. It opens by itself after ``within`` seconds, so code that
    wrongly waits for it makes the test fail, not hang. ``arrived`` counts the requests that came."""

    def __init__(self, base_url: str, *, within: float) -> None:
        self.name = uuid.uuid4().hex
        self.url = f"{base_url}/gate/{self.name}"
        self.arrived = 0
        self.opened = asyncio.Event()
        self._bound = asyncio.get_running_loop().call_later(within, self.opened.set)

    def open(self) -> None:
        self.opened.set()
        self._bound.cancel()


_gates: dict[str, Gate] = {}


@asynccontextmanager
async def gate(base_url: str, *, within: float = 10.0) -> AsyncIterator[Gate]:
    """A ``Gate`` on the target server at ``base_url``, opened when the block ends if the test did not
    open it (no request is left waiting on it; a later one is answered at once)."""
    made = Gate(base_url, within=within)
    _gates[made.name] = made
    try:
        yield made
    finally:
        made.open()


async def gated(request: Request) -> Response:
    opening = _gates[request.path_params["name"]]
    opening.arrived += 1
    await opening.opened.wait()
    return PlainTextResponse("opened")


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
        Route("/gate/{name}", gated),
        Route("/status/{code:int}", status),
        Route("/redirect", redirect),
        Route("/loop", loop),
        Route("/huge", huge),
        Route("/endless", endless),
    ]
)


class _Server(uvicorn.Server):
    """uvicorn's server, with its start and its stop signalled rather than polled: uvicorn sets a flag
    once it has started and looks at ``should_exit`` every 0.1 s, a wait each test with a live server
    paid twice. Startup, serving and shutdown are uvicorn's own."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.loop = asyncio.get_running_loop()
        self.up = asyncio.Event()
        self.stopping = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.up.set()

    async def main_loop(self) -> None:
        await self.on_tick(0)  # what uvicorn's first tick does: the default headers (Date, Server)
        await self.stopping.wait()

    def stop(self) -> None:
        self.should_exit = True
        self.stopping.set()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """A signal (Ctrl-C) while a test serves stops the server, as it stops uvicorn's."""
        super().handle_exit(sig, frame)
        self.loop.call_soon_threadsafe(self.stopping.set)


@asynccontextmanager
async def serving(served: ASGIApp = app, *, lifespan: Literal["on", "off"] = "off") -> AsyncIterator[str]:
    """The base URL of a uvicorn server on a free port of 127.0.0.1 in this loop (by default the
    target server), running until the block ends."""
    # A TCP socket by name, as uvicorn's own binding makes: asyncio sets TCP_NODELAY only on those, and
    # without it each answer on a kept-alive connection waits 40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(served, log_level="warning", lifespan=lifespan, **WEBSOCKET_OPTIONS)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    started = asyncio.create_task(server.up.wait())
    await asyncio.wait({task, started}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    if not server.up.is_set():
        started.cancel()
        sock.close()
        if task.done():
            await task  # what stopped it
        task.cancel()
        raise AssertionError("the server did not start within 5 s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        await task
        sock.close()
