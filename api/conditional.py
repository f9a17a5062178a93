"""Conditional reads (RFC 9110 §13.1.2, §15.4.5): every whole 200 answer to a ``GET`` carries a
strong ``ETag`` and a ``Cache-Control``, and a client that names the tag it holds in
``If-None-Match`` gets a bodiless 304 instead of the document again.

A route that knows its resource's version (``api.rest.versions``) sets the tag itself; any other
answer is tagged with a digest of its body, so lists, GraphQL ``GET`` queries and every other read
revalidate without each route doing anything. The work of the read is still done (the digest
needs the body): what a 304 saves is the transfer, and the client's parsing. Streamed answers
(exports, event streams: the answers without a ``Content-Length``) are sent as they come, untagged:
their body is not known in advance. Conditional
writes (``If-Match``) are the routes' business: only the service can check a row's version in the
transaction that writes it.
"""

import base64
import hashlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.entity_tags import Headers, header, matches, parse, quoted

# What may be cached of a read unless the route says otherwise: by the client only (answers differ
# by caller), and each time only after asking whether it is still current.
DEFAULT_CACHE_CONTROL = b"private, no-cache"
# What a 304 leaves out of the 200's headers: they describe a body it does not have.
_BODY_HEADERS = frozenset({b"content-type", b"content-length", b"content-disposition"})


def digest_tag(body: bytes) -> bytes:
    """A strong tag for a body: 128 bits of BLAKE2b, base64url."""
    return quoted(base64.urlsafe_b64encode(hashlib.blake2b(body, digest_size=16).digest()).rstrip(b"="))


def _with_cache_control(headers: Headers) -> Headers:
    if header(headers, b"cache-control") is None:
        return [*headers, (b"cache-control", DEFAULT_CACHE_CONTROL)]
    return headers


class ConditionalGetMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        wanted = header(scope["headers"], b"if-none-match")
        held: Message | None = None

        async def send_conditional(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start" and message["status"] == 200:
                headers = _with_cache_control(list(message.get("headers", ())))
                if header(headers, b"content-length") is None:  # a stream: sent as it comes
                    await send({**message, "headers": headers})
                else:
                    held = {**message, "headers": headers}  # until its body, which comes whole
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            start, held = held, None
            headers = start["headers"]
            if message.get("more_body", False):  # a whole body sent in parts (a file): passed on untagged
                await send(start)
                await send(message)
                return
            tag = header(headers, b"etag")
            if tag is None:
                tag = digest_tag(message.get("body", b""))
                headers.append((b"etag", tag))
            own = parse(tag)
            if wanted is not None and own and matches(parse(wanted), own[0][1]):
                kept = [(name, value) for name, value in headers if name not in _BODY_HEADERS]
                await send({"type": "http.response.start", "status": 304, "headers": kept})
                await send({"type": "http.response.body", "body": b""})
                return
            await send({**start, "headers": headers})
            await send(message)

        await self.app(scope, receive, send_conditional)
