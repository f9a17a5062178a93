"""Headless Chromium for tests, driven over the Chrome DevTools Protocol's WebSocket.

Every request the page makes is recorded (``requests``, its WebSockets too), and so is what the
console says (``console``: errors, Content-Security-Policy refusals), so a test can show that a page
needed nothing beyond 127.0.0.1 and broke no rule of its policy.
"""

import asyncio
import contextlib
import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.waiting import until

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    # Names other than 127.0.0.1 resolve to nothing: a request off the host fails at once instead of
    # waiting on a closed network (the test still sees it was made).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


class Page:
    """One tab, attached with a flat session on the browser's socket."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.session = ""
        self.requests: list[str] = []
        self.sent_frames: list[str] = []
        self.console: list[str] = []
        self._ids = iter(range(1, 1_000_000))
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}

    async def command(self, method: str, **params: Any) -> dict[str, Any]:
        id = next(self._ids)
        message: dict[str, Any] = {"id": id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        self._waiting[id] = asyncio.get_running_loop().create_future()
        await self.connection.send(json.dumps(message))
        return await asyncio.wait_for(self._waiting[id], 10)

    async def read(self) -> None:
        async for raw in self.connection:
            message = json.loads(raw)
            if "id" in message:
                future = self._waiting.pop(message["id"])
                if "error" in message:
                    future.set_exception(AssertionError(f"CDP: {message['error']}"))
                else:
                    future.set_result(message.get("result", {}))
            else:
                self._event(message["method"], message.get("params", {}))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Network.webSocketCreated":
            self.requests.append(params["url"])
        elif method == "Network.webSocketFrameSent":
            self.sent_frames.append(params["response"]["payloadData"])
        elif method == "Log.entryAdded":
            self.console.append(f"{params['entry']['level']}: {params['entry']['text']}")
        elif method == "Runtime.exceptionThrown":
            self.console.append(f"exception: {params['exceptionDetails']}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning"):
            texts = [str(arg.get("value", arg.get("description", ""))) for arg in params["args"]]
            self.console.append(f"{params['type']}: {' '.join(texts)}")

    async def open(self, url: str) -> None:
        await self.command("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        result = await self.command("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, *, seconds: float = 10) -> Any:
        """The value of ``expression`` once it is truthy (the page is asked again every 20 ms)."""

        async def truthy() -> Any:
            return await self.evaluate(expression)

        return await until(truthy, within=seconds, what=expression)


@asynccontextmanager
async def browser_page() -> AsyncIterator[Page]:
    """A tab of a fresh headless Chromium (its own profile), closed afterwards."""
    executable = chromium()
    assert executable is not None
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            executable,
            *FLAGS,
            f"--user-data-dir={profile}",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert process.stderr is not None
            async with asyncio.timeout(10):
                while not (line := (await process.stderr.readline()).decode()).startswith("DevTools"):
                    if not line:
                        raise AssertionError("Chromium exited before it listened")
            drain = asyncio.create_task(_drain(process.stderr))
            async with connect(line.split()[-1], max_size=None, open_timeout=5) as connection:
                page = Page(connection)
                reader = asyncio.create_task(page.read())
                target = await page.command("Target.createTarget", url="about:blank")
                attached = await page.command(
                    "Target.attachToTarget", targetId=target["targetId"], flatten=True
                )
                page.session = attached["sessionId"]
                for domain in ("Page", "Network", "Runtime", "Log"):
                    await page.command(f"{domain}.enable")
                try:
                    yield page
                finally:
                    reader.cancel()
            drain.cancel()
        finally:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


async def _drain(stream: asyncio.StreamReader) -> None:
    """Chromium's chatter on stderr, read so it never blocks on a full pipe."""
    while await stream.readline():
        pass
