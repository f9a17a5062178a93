"""gzip for answers worth it: a client that accepts it (``Accept-Encoding``) gets every answer
of at least ``min_bytes`` compressed, and every streamed one (exports) compressed as it goes, each
chunk flushed so rows still arrive as they are read. Event streams are never compressed (a
buffered event is a late one; proxies hold them), nor WebSocket frames (not HTTP answers here).

gzip only: it is the coding every client decodes and the standard library makes; brotli and
zstd would each need a compiled dependency for a few per cent on documents this small. The output
is deterministic (no timestamp in the header), so an answer's entity tag, suffixed ``-gzip``,
names the same bytes each time.
"""

import zlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.entity_tags import Headers, header, parse, replaced, unsuffixed, vary, with_suffix
from api.negotiation import preferred_coding

SUFFIX = b"-gzip"
LEVEL = 6  # zlib's default: most of level 9's ratio at a fraction of its time
_NEVER = (b"text/event-stream",)


def _compressor() -> "zlib._Compress":
    return zlib.compressobj(LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # the gzip wrapper, mtime 0


def gzipped(body: bytes) -> bytes:
    compressor = _compressor()
    return compressor.compress(body) + compressor.flush()


class CompressionMiddleware:
    def __init__(self, app: ASGIApp, min_bytes: int = 1024) -> None:
        self.app = app
        self.min_bytes = min_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        accepted = header(scope["headers"], b"accept-encoding")
        if accepted is None or preferred_coding(accepted.decode("latin-1"), ("gzip",)) is None:
            await self.app(scope, receive, _varying(send))
            return
        scope, carried = unsuffixed(scope, SUFFIX, keep_plain=True)
        await self.app(scope, receive, _compressing(send, self.min_bytes, carried))


def _compressible(headers: Headers) -> bool:
    content_type = header(headers, b"content-type") or b""
    return header(headers, b"content-encoding") is None and not content_type.startswith(_NEVER)


def _varying(send: Send) -> Send:
    """``send`` that says a compressible answer's form depends on ``Accept-Encoding``."""

    async def send_varying(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers: Headers = list(message.get("headers", ()))
            if _compressible(headers):
                message = {**message, "headers": vary(headers, b"Accept-Encoding")}
        await send(message)

    return send_varying


def _compressing(send: Send, min_bytes: int, carried: set[bytes]) -> Send:
    """``send`` that compresses the answer's body: a whole one (it has a ``Content-Length``) at
    once if it is big enough, a stream chunk by chunk from its start. A 304 gets the tag its 200
    had, which is the ``-gzip`` one when the client held that (``carried``)."""
    held: Message | None = None
    compressor: zlib._Compress | None = None

    def encoded(headers: Headers, length: int | None) -> Headers:
        headers = replaced(headers, b"content-encoding", b"gzip")
        headers = replaced(headers, b"content-length", None if length is None else str(length).encode())
        tag = header(headers, b"etag")
        return headers if tag is None else replaced(headers, b"etag", with_suffix(tag, SUFFIX))

    async def send_compressed(message: Message) -> None:
        nonlocal held, compressor
        if message["type"] == "http.response.start":
            headers: Headers = vary(list(message.get("headers", ())), b"Accept-Encoding")
            length = header(headers, b"content-length")
            if message["status"] == 304:
                tag = header(headers, b"etag")
                if tag is not None and any(opaque in carried for _, opaque in parse(tag)):
                    headers = replaced(headers, b"etag", with_suffix(tag, SUFFIX))
                await send({**message, "headers": headers})
            elif message["status"] < 200 or message["status"] == 204 or not _compressible(headers):
                await send(message)
            elif length is None:
                compressor = _compressor()
                await send({**message, "headers": encoded(headers, None)})
            elif int(length) < min_bytes:
                await send({**message, "headers": headers})
            else:
                held = {**message, "headers": headers}  # until the body, which follows at once
            return
        if message["type"] != "http.response.body":
            await send(message)
            return
        body: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        if held is not None:
            start, held = held, None
            if not more:
                body = gzipped(body)
                await send({**start, "headers": encoded(start["headers"], len(body))})
                await send({**message, "body": body})
                return
            compressor = _compressor()  # a whole body sent in parts (a file): compressed as a stream
            await send({**start, "headers": encoded(start["headers"], None)})
        if compressor is None:
            await send(message)
            return
        chunk = compressor.compress(body)
        chunk += compressor.flush(zlib.Z_SYNC_FLUSH if more else zlib.Z_FINISH)
        await send({**message, "body": chunk})

    return send_compressed
