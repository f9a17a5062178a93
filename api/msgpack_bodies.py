"""MessagePack for clients that ask for it: ``Accept: application/msgpack`` (or the older
``application/x-msgpack``) gets every JSON document, problem documents and GraphQL answers
included, as MessagePack; a request body sent as MessagePack is read as the JSON it stands for.

The routes keep speaking JSON: this layer converts at the edge, so every route, its validation and
its OpenAPI stay one. It uses the ``msgpack`` library itself rather than msgpack-asgi, whose
middleware matches ``Accept`` as a substring (no weights, so ``application/msgpack;q=0`` would
still convert) and knows nothing of the entity tags the layers around it rewrite
(``api.entity_tags``). Streamed answers (NDJSON, CSV, event streams) pass untouched.
"""

import json
from typing import Any

import msgpack
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.entity_tags import Headers, header, replaced, unsuffixed, vary, with_suffix
from api.negotiation import preferred_media
from api.problems import http_error, problem

JSON = "application/json"
MSGPACK = "application/msgpack"
X_MSGPACK = "application/x-msgpack"
_MSGPACK_TYPES = frozenset({MSGPACK.encode(), X_MSGPACK.encode()})
SUFFIX = b"-msgpack"


class InvalidBody(ValueError):
    """A MessagePack body that is not one, or holds what JSON cannot say (binary, extension types)."""


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


def to_json(body: bytes) -> bytes:
    """A MessagePack document as the JSON document it stands for."""
    try:
        document: Any = msgpack.unpackb(body, raw=False)
        return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    # ExtraData and StackError (nesting past msgpack's own limit) are ValueErrors; nesting past
    # Python's recursion limit stops json.dumps.
    except (ValueError, TypeError, RecursionError, msgpack.UnpackException) as exc:
        raise InvalidBody(str(exc)) from None


def to_msgpack(body: bytes) -> bytes:
    packed: bytes = msgpack.packb(json.loads(body), use_bin_type=True)
    return packed


class MessagePackMiddleware:
    """``max_bytes``: the most JSON a request body may become, as a JSON body may be (the body
    limit counts the MessagePack bytes, and their JSON can be several times longer)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        accept = header(scope["headers"], b"accept")
        answer = None
        if accept is not None and b"msgpack" in accept:
            answer = preferred_media(accept.decode("latin-1"), (JSON, MSGPACK, X_MSGPACK))
        if answer in (MSGPACK, X_MSGPACK):
            scope, _ = unsuffixed(scope, SUFFIX, keep_plain=False)
            send = _converting(send, answer.encode())
        else:
            send = _varying(send)
        content_type = header(scope["headers"], b"content-type")
        if content_type is not None and content_type.split(b";", 1)[0].strip().lower() in _MSGPACK_TYPES:
            try:
                scope, replayed = await _read_as_json(scope, receive)
            except HTTPException as exc:  # the body limit's 413 or 408, met while reading here
                await (await http_error(Request(scope), exc))(scope, _gone, send)
                return
            if replayed is None:
                detail = "The request body is not a MessagePack document that JSON can stand for."
                await problem(Request(scope), 400, "BAD_REQUEST", detail)(scope, _gone, send)
                return
            if int(header(scope["headers"], b"content-length") or 0) > self.max_bytes:
                detail = f"The request body, as JSON, is larger than {self.max_bytes} bytes."
                await problem(Request(scope), 413, "PAYLOAD_TOO_LARGE", detail)(scope, _gone, send)
                return
            receive = replayed
        await self.app(scope, receive, send)


async def _gone() -> Message:
    return {"type": "http.disconnect"}


async def _read_as_json(scope: Scope, receive: Receive) -> tuple[Scope, Receive | None]:
    """The request with its MessagePack body read and given on as JSON; ``None`` for ``receive``
    when the body is no MessagePack document, or one JSON has no form for."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client left: let the app see it go
            return scope, _replaying([message], receive)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    try:
        body = to_json(b"".join(chunks))
    except InvalidBody:
        return scope, None
    headers: Headers = [
        (name, value) for name, value in scope["headers"] if name not in (b"content-type", b"content-length")
    ]
    headers += [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode())]
    first: Message = {"type": "http.request", "body": body, "more_body": False}
    return {**scope, "headers": headers}, _replaying([first], receive)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that first gives ``messages`` again."""

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return replay


def _varying(send: Send) -> Send:
    """``send`` that says a JSON answer's form depends on ``Accept``."""

    async def send_varying(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers: Headers = list(message.get("headers", ()))
            if _is_json(header(headers, b"content-type")):
                message = {**message, "headers": vary(headers, b"Accept")}
        await send(message)

    return send_varying


def _converting(send: Send, media_type: bytes) -> Send:
    """``send`` that turns a whole JSON answer into MessagePack (and its tag with it); a 304 gets
    the tag its 200 would have had."""
    held: Message | None = None

    async def send_converted(message: Message) -> None:
        nonlocal held
        if message["type"] == "http.response.start":
            headers: Headers = vary(list(message.get("headers", ())), b"Accept")
            if message["status"] == 304:
                tag = header(headers, b"etag")
                if tag is not None:
                    headers = replaced(headers, b"etag", with_suffix(tag, SUFFIX))
                await send({**message, "headers": headers})
            elif (
                _is_json(header(headers, b"content-type")) and header(headers, b"content-length") is not None
            ):
                held = {**message, "headers": headers}  # a whole document: converted once its body is in
            else:
                await send({**message, "headers": headers})
            return
        if held is None or message["type"] != "http.response.body":
            await send(message)
            return
        start, held = held, None
        headers = start["headers"]
        if message.get("more_body", False):  # a document sent in parts: not ours to convert
            await send(start)
            await send(message)
            return
        body = to_msgpack(message.get("body", b""))
        headers = replaced(headers, b"content-type", media_type)
        headers = replaced(headers, b"content-length", str(len(body)).encode())
        tag = header(headers, b"etag")
        if tag is not None:
            headers = replaced(headers, b"etag", with_suffix(tag, SUFFIX))
        await send({**start, "headers": headers})
        await send({**message, "body": body})

    return send_converted
