"""The two GraphQL WebSocket protocols as we run them, on top of Strawberry's handlers.

What is added to Strawberry's:
- a message of the wrong shape (not an object, a ``payload`` that is a string or ``null`` where an
  object is needed) closes the socket with 4400 instead of failing the handler (1006);
- each operation runs in a scope of its own (``SocketContext.scope``): a session per operation, and
  per event for a subscription, never one per socket;
- a signed-in caller's subscription follows the one relay of what it asks (``api.graphql.relay``),
  so an event costs one run and one send per socket, not one stream per socket;
- the server pings (``graphql-transport-ws``) and drops a peer whose pong does not come in time;
- the caller is checked again on every tick, and the socket closed with 4403 when the access token
  runs out or the sign-in is revoked;
- the legacy ``graphql-ws`` protocol gets a ``connection_init`` timeout (4408) and closes with 4403
  when the credentials are refused.

A shutdown closes the open sockets with 1001 below the app, in uvicorn's protocol (``api.serving``).
"""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import aclosing, suppress
from typing import Any

from graphql import OperationType
from starlette.websockets import WebSocketDisconnect
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.unset import UnsetType

from api import memory, metrics
from api.db.types import utcnow
from api.errors import DomainError, Unauthenticated
from api.graphql.context import SocketContext
from api.graphql.parsing import operation_type
from api.graphql.relay import Follower, Outcome, Relay, Source, encoded, relay_key
from api.services import auth
from api.services.callers import Caller
from resolvers.context import Context

PING_TIMEOUT = 1011  # as the websockets library closes on a keepalive timeout
BAD_MESSAGE = 4400
FORBIDDEN = 4403
INIT_TIMEOUT = 4408

_OPERATION_FIELDS = {"query": str, "variables": dict, "operationName": str, "extensions": dict}


def _operation_problem(message: dict[str, Any]) -> str | None:
    """What is wrong with a ``subscribe``/``start`` message, if anything."""
    if not isinstance(message.get("id"), str) or not message["id"]:
        return "The message needs a string id."
    payload = message.get("payload")
    if not isinstance(payload, dict):
        return "The payload of an operation must be an object."
    named = payload.get("documentId") is not None or payload.get("extensions") is not None
    if not isinstance(payload.get("query"), str) and not (named and payload.get("query") is None):
        return "The payload needs a query string (or a documentId)."
    for name, kind in _OPERATION_FIELDS.items():
        if payload.get(name) is not None and not isinstance(payload[name], kind):
            return f"The payload's {name} must be of type {kind.__name__}."
    return None


def message_problem(message: object, operation_types: tuple[str, ...]) -> str | None:
    """Why ``message`` cannot be handled (its shape, not its meaning), or ``None``."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return "A message must be an object with a string type."
    kind = message["type"]
    if kind in operation_types:
        return _operation_problem(message)
    if kind in ("stop", "complete") and not isinstance(message.get("id"), str):
        return "The message needs a string id."
    payload = message.get("payload")
    if payload is not None and not isinstance(payload, dict):
        return "The payload must be an object."
    return None


_NEXT = '{{"id":{},"type":"next","payload":{}}}'


class _Policy:
    """What both protocol handlers add: closing once, the watch over the caller, the registry."""

    context: Context
    websocket: Any
    _closed: bool = False
    _watchers: list[asyncio.Task[None]]

    @property
    def socket(self) -> SocketContext:
        assert isinstance(self.context, SocketContext)
        return self.context

    def _start(self) -> None:
        self._watchers = []
        self.socket.close_socket = self.close
        self._open = metrics.WEBSOCKETS_OPEN.labels(self.protocol)
        self._open.inc()

    async def _stop(self) -> None:
        self._open.dec()
        memory.trimmer.released()
        for task in self._watchers:
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)

    async def close(self, code: int, reason: str) -> None:
        """Close the socket, once (a second close would fail in Starlette)."""
        if self._closed:
            return
        self._closed = True
        with suppress(Exception):  # the peer may be gone already
            await self.websocket.close(code=code, reason=reason)

    async def _named(self, message: dict[str, Any], refused: str) -> dict[str, Any] | None:
        """A subscribe (or start) message with the text of the document it names or may run, as
        over HTTP (trusted documents, APQ: ``Documents.resolve``); ``None`` once a refusal has been
        sent for its id, as a message of type ``refused``."""
        payload = message.get("payload") or {}
        extensions = payload.get("extensions") or {}
        if payload.get("documentId") is not None:  # carried as the router carries it
            extensions = {**extensions, "documentId": payload["documentId"]}
        try:
            async with self.socket.scope():
                query = await self.view.documents.resolve(  # type: ignore[attr-defined]
                    payload.get("query"), extensions, self.context
                )
        except DomainError as refusal:
            error = {"message": refusal.message, "extensions": refusal.extensions()}
            body = [error] if refused == "error" and self.protocol == GRAPHQL_TRANSPORT_WS_PROTOCOL else error
            await self.send_message({"type": refused, "id": message.get("id"), "payload": body})  # type: ignore[attr-defined]
            return None
        if query is None:  # no document, named or sent: as Strawberry refuses one without a query
            await self.close(BAD_MESSAGE, "The payload needs a query string (or a documentId).")
            return None
        return {**message, "payload": {**payload, "query": query}}

    def _watch(self) -> None:
        """Once the socket is acknowledged: keep checking the caller, and keep pinging if the
        protocol has pings."""
        if not self._watchers:
            self._watchers = [asyncio.create_task(self._keep_signed_in(), name="socket-caller-check")]
            if self.pings:
                self._watchers.append(asyncio.create_task(self._keep_pinging(), name="socket-ping"))

    async def _keep_signed_in(self) -> None:
        interval = self.context.settings.ws_ping_interval
        while not self._closed and await self._wait_signed_in(interval):
            pass

    async def _keep_pinging(self) -> None:
        interval = self.context.settings.ws_ping_interval
        while not self._closed:
            await asyncio.sleep(interval)
            if not await self._ping():
                await self.close(PING_TIMEOUT, "The peer did not answer a ping.")
                return

    async def _wait_signed_in(self, delay: float) -> bool:
        """Sleep ``delay`` seconds, or until the caller's token runs out; then check the caller again.
        ``False`` (the socket closed with 4403) once the credentials no longer hold."""
        caller = self.context.caller
        expires_at = caller.expires_at if caller else None
        if expires_at is not None:
            delay = min(delay, max(0.0, (expires_at - utcnow()).total_seconds()))
        await asyncio.sleep(delay)
        if caller is None:
            return True
        try:
            async with self.socket.database.session(read_only=True) as session:
                self.socket.sign_in(await auth.recheck(session, caller=caller))
        except Unauthenticated as exc:
            await self.close(FORBIDDEN, exc.message)
            return False
        return True

    # The legacy protocol has no pings: its server sends keep-alive messages, and uvicorn's WebSocket
    # pings find a dead peer.
    pings = False
    protocol = GRAPHQL_WS_PROTOCOL  # the subprotocol, as the open sockets are counted by

    async def _ping(self) -> bool:
        """Ping the peer; whether it answered in time."""
        raise NotImplementedError


class TransportWSHandler(_Policy, BaseGraphQLTransportWSHandler[Context, None]):
    """``graphql-transport-ws``, the protocol of the ``graphql-ws`` library."""

    pings = True
    protocol = GRAPHQL_TRANSPORT_WS_PROTOCOL

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pong = asyncio.Event()

    async def handle(self) -> None:
        self._start()
        try:
            await super().handle()
        finally:
            await self._stop()

    async def handle_message(self, message: Any) -> None:
        problem = message_problem(message, ("subscribe",))
        if problem is not None:
            await self.close(BAD_MESSAGE, problem)
            return
        if message["type"] == "connection_init" and message.get("payload") is None:
            message = {**message, "payload": {}}  # the protocol allows a null payload
        if message["type"] == "pong":
            self._pong.set()
        if message["type"] == "subscribe" and self.connection_acknowledged:
            named = await self._named(message, "error")
            if named is None:
                return
            message = named
        await super().handle_message(message)
        if self.connection_acknowledged:
            self._watch()

    async def handle_task_exception(self, error: Exception) -> None:
        """A peer that went away while an answer was being sent is no bug: nothing to log."""
        if not isinstance(error, WebSocketDisconnected):
            await super().handle_task_exception(error)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        """A subscription of a signed-in caller follows the relay for what it asks
        (``api.graphql.relay``); anything else runs as Strawberry runs it."""
        async with self.socket.scope():
            caller = self.context.caller
            kind = operation_type(
                operation.query, operation.operation_name, self.context.settings.graphql_max_tokens
            )
            if caller is None or kind is not OperationType.SUBSCRIPTION:
                await super().run_operation(operation)
                return
            try:
                outcome, reason = await self._relayed(operation, caller)
            except _OperationStreamClosed:
                return
            except Exception as error:  # as Strawberry's run_operation
                await self.handle_task_exception(error)
                with suppress(Exception):
                    await operation.send_operation_message({"id": operation.id, "type": "complete"})
                self.operations.pop(operation.id, None)
                raise
            if outcome is Outcome.RESUME:
                await super().run_operation(operation)
            elif outcome is Outcome.SIGNED_OUT:
                await self.close(FORBIDDEN, reason)
            else:
                if outcome is Outcome.FAILED:
                    await self._send_next(operation, reason)
                await operation.send_operation_message({"id": operation.id, "type": "complete"})

    async def _relayed(self, operation: Operation[Context, None], caller: Caller) -> tuple[Outcome, str]:
        """Follow the relay of ``operation`` (starting it if there is none), or catch up with it first
        on a stream of our own; what ended it."""
        relays = self.view.relays  # type: ignore[attr-defined]
        key = relay_key(operation.query, operation.operation_name, operation.variables, caller)
        relay = relays.get(key)
        if relay is None:
            viewer = Caller(user=caller.user, scopes=caller.scopes)
            relay = Relay(
                relays,
                key,
                self.socket.detached(viewer),
                self._source(operation),
                self.context.feeds.queue_size,
            )
        follower = relay.take(caller)
        if follower is None:
            with relay.catching_up_with():
                follower = await self._until_aligned(operation, relay, caller)
            if follower is None:
                return Outcome.COMPLETE, ""
        try:
            async for text in follower.responses():
                await self._send_next(operation, text)
        finally:
            relay.leave(follower)
        assert follower.outcome is not None
        return follower.outcome, follower.reason

    def _source(self, operation: Operation[Context, None]) -> Source:
        async def subscribe(context: SocketContext) -> AsyncIterator[Any]:
            return await self.schema.subscribe(
                operation.query,
                variable_values=operation.variables,
                context_value=context,
                operation_name=operation.operation_name,
            )

        return subscribe

    async def _until_aligned(
        self, operation: Operation[Context, None], relay: Relay, caller: Caller
    ) -> Follower | None:
        """Our own stream of ``operation``, until a response of it is one the relay sent too: the
        relay's follower from there, or ``None`` once our stream has ended. A follower that is not
        handed back (the operation cancelled while our stream closes) leaves the relay at once."""
        follower: Follower | None = None
        try:
            stream = await self._source(operation)(self.socket)
            async with aclosing(stream):  # type: ignore[type-var]
                first = True
                async for result in stream:
                    if first and isinstance(result, PreExecutionError):
                        await self._handle_pre_execution_error(operation, result)
                        return None
                    if not isinstance(result, ExecutionResult):
                        await self._reject_incremental_delivery(operation)
                        return None
                    await self._send_next(operation, encoded(self.context.shared(), result))
                    if not result.errors:
                        follower = await relay.align(result.data, caller, first=first)
                    first = False
                    if follower is not None:
                        break
            if follower is not None and follower.outbox:
                await self._recheck_backlog(follower)
        except BaseException:
            if follower is not None:
                relay.leave(follower)
            raise
        return follower

    async def _recheck_backlog(self, follower: Follower) -> None:
        """The responses a late socket takes over from the relay's history came for events after
        its own stream last checked it: its credential is checked once more before they go out."""
        try:
            async with self.socket.database.session(read_only=True) as session:
                follower.caller = await auth.recheck(session, caller=follower.caller)
        except Unauthenticated as exc:
            follower.end(Outcome.SIGNED_OUT, exc.message)

    async def _send_next(self, operation: Operation[Context, None], payload: str) -> None:
        """A ``next`` message with an encoded payload, written as it is."""
        if operation.completed:
            return
        try:
            await self.websocket.ws.send_text(_NEXT.format(json.dumps(operation.id), payload))
        except WebSocketDisconnect as exc:  # as Strawberry's own send
            raise WebSocketDisconnected from exc

    async def _ping(self) -> bool:
        """The ping's send is inside the timeout too: to a peer that stopped reading it may wait for
        the socket to drain, which never comes."""
        self._pong.clear()

        async def answered() -> None:
            with suppress(Exception):
                await self.send_message({"type": "ping"})
            await self._pong.wait()

        try:
            await asyncio.wait_for(answered(), self.context.settings.ws_ping_timeout)
        except TimeoutError:
            return False
        return True


class LegacyWSHandler(_Policy, BaseGraphQLWSHandler[Context, None]):
    """``graphql-ws``, the protocol of Apollo's old ``subscriptions-transport-ws`` (keep-alive
    messages, ``ka``, instead of pings)."""

    async def handle(self) -> None:
        self._start()
        timeout = asyncio.create_task(self._init_timeout())
        try:
            await super().handle()
        finally:
            timeout.cancel()
            await self._stop()

    async def _init_timeout(self) -> None:
        await asyncio.sleep(self.context.settings.ws_connection_init_timeout)
        if not self.connection_acknowledged:
            await self.close(INIT_TIMEOUT, "Connection initialisation timeout")

    async def handle_message(self, message: Any) -> None:
        problem = message_problem(message, ("start",))
        if problem is not None:
            await self.close(BAD_MESSAGE, problem)
            return
        if message["type"] == "start" and self.connection_acknowledged:
            named = await self._named(message, "error")
            if named is None:
                return
            message = named
        await super().handle_message(message)

    async def handle_connection_init(self, message: Any) -> None:
        """As Strawberry's, but refused credentials close with 4403 (as on the newer protocol)."""
        if self.connection_acknowledged:
            return
        self.socket.connection_params = message.get("payload") or {}
        try:
            ack = await self.view.on_ws_connect(self.context)
        except ConnectionRejectionError as exc:
            with suppress(Exception):
                await self.send_message({"type": "connection_error", "payload": exc.payload})
            await self.close(FORBIDDEN, "Forbidden")
            return
        acknowledgement: dict[str, Any] = {"type": "connection_ack"}
        if not isinstance(ack, UnsetType) and ack is not None:
            acknowledgement["payload"] = ack
        await self.send_message(acknowledgement)  # type: ignore[arg-type]
        self.connection_acknowledged = True
        if self.keep_alive:
            self.keep_alive_task = asyncio.create_task(self.handle_keep_alive())
        self._watch()

    async def handle_async_results(self, *args: Any, **kwargs: Any) -> None:
        async with self.socket.scope():
            await super().handle_async_results(*args, **kwargs)
