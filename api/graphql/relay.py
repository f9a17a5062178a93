"""One run of a subscription for every socket of this process that asks the same thing.

A thousand tabs following one job each ran a stream of their own: a bus queue, a re-check, a pass
through Strawberry's per-result machinery, for every socket and every event. The shared execution
(``api.graphql.execution``) made the response once, but the rest stayed per socket, on the event's
path. A relay runs the subscription once for a key (the document, the operation name and the
variables, and the viewer: the account and an API key's scopes, what the resolvers decide by), and
hands each response, encoded once, to its followers' outboxes, which their sockets' tasks drain.

- The relay's context carries the viewer without a credential: its stream re-checks the account
  (active, admin) on every event, as a socket's own would. The followers' credentials (sign-in
  sessions, API keys, tokens that run out) are re-checked together before each event is handed on,
  in one short session; a refused one is signed out (the socket closes with 4403), the others go on.
- A follower whose outbox is ``limit`` responses behind is ended with ``TOO_SLOW``, as a slow bus
  subscriber is, instead of holding more.
- A socket that comes once the relay has sent its first response needs a first response of its own
  (a job's state as it stands now), so it runs its own stream until one of its responses is the
  very one the relay sent for the same event (the shared execution gives both the same data), or
  its first response equals the relay's only one, and follows the relay from there: nothing
  missed, nothing twice.
- A response with errors is the same for every follower (they share the viewer), and is sent to
  each, once rendered; a document that does not run (it does not validate, say) is not relayed:
  its followers run it on their own (``RESUME``), so its error is the usual one.
"""

import asyncio
import json
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import aclosing, contextmanager, suppress
from contextvars import Context
from enum import Enum
from typing import Any

from strawberry.types.execution import ExecutionResult, PreExecutionError

from api.bus import TOO_FAR_BEHIND, Overflowed
from api.db.outages import unavailable
from api.errors import INTERNAL_ERROR_CODE, INTERNAL_ERROR_MESSAGE, DomainError, Unauthenticated
from api.graphql.context import SocketContext
from api.services import auth, live
from api.services.callers import Caller

logger = logging.getLogger("switchboard.graphql")

Key = tuple[str, str | None, str, uuid.UUID, bool, frozenset[str] | None]
Source = Callable[[SocketContext], Awaitable[AsyncIterator[Any]]]
HISTORY = 16  # responses kept for sockets that are catching up with the relay
ALIGN_WITHIN = 0.25  # how long a socket catching up waits for the relay to send what it sent
_ENCODED = object()  # the key of the encoded responses in what an event's subscribers share
_INTERNAL = {"code": INTERNAL_ERROR_CODE}


def relay_key(
    query: str, operation_name: str | None, variables: dict[str, Any] | None, caller: Caller
) -> Key:
    variables_text = json.dumps(variables or {}, sort_keys=True)
    return (query, operation_name, variables_text, caller.user.id, caller.user.is_admin, caller.scopes)


def encoded(shared: dict[Any, Any] | None, result: ExecutionResult) -> str:
    """The ``next`` payload of ``result`` as JSON. A response without errors that the event's
    subscribers share is encoded once, by the first to send it: Strawberry gives each subscriber a
    result object of its own, but a shared execution's ``data`` is the one dictionary."""
    if shared is None or result.errors or result.extensions:
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [error.formatted for error in result.errors]
        if result.extensions:
            payload["extensions"] = result.extensions
        return json.dumps(payload, separators=(",", ":"))
    responses: dict[int, tuple[object, str]] = shared.setdefault(_ENCODED, {})
    found = responses.get(id(result.data))
    if found is not None and found[0] is result.data:
        return found[1]
    text = json.dumps({"data": result.data}, separators=(",", ":"))
    responses[id(result.data)] = (result.data, text)  # the data is held, so its id is not reused
    return text


def refusal(error: DomainError) -> str:
    """The ``next`` payload of a stream that ``error`` ends."""
    return _failure(error.message, error.extensions())


def _failure(message: str, extensions: dict[str, Any]) -> str:
    return json.dumps({"data": None, "errors": [{"message": message, "extensions": extensions}]})


class Outcome(Enum):
    COMPLETE = "complete"  # the stream has ended: complete the operation
    RESUME = "resume"  # nothing was sent: run the operation on your own, from the start
    SIGNED_OUT = "signed out"  # the credential stopped holding: close the socket (4403)
    FAILED = "failed"  # send the error payload, then complete


class Follower:
    """One socket's operation following a relay: the responses its socket has yet to send."""

    __slots__ = ("_wake", "caller", "limit", "outbox", "outcome", "reason")

    def __init__(self, caller: Caller, limit: int, backlog: Iterable[str] = ()) -> None:
        self.caller = caller
        self.limit = limit
        self.outbox: deque[str] = deque(backlog)
        self.outcome: Outcome | None = None
        self.reason = ""  # the close reason (SIGNED_OUT) or the error payload (FAILED)
        self._wake = asyncio.Event()
        if self.outbox:
            self._wake.set()

    def offer(self, text: str) -> None:
        if self.outcome is not None:
            return
        if len(self.outbox) >= self.limit:
            self.end(Outcome.FAILED, refusal(Overflowed(TOO_FAR_BEHIND)))
            return
        self.outbox.append(text)
        self._wake.set()

    def end(self, outcome: Outcome, reason: str = "") -> None:
        """The last word: what is still in the outbox is sent first only when the stream completed."""
        if self.outcome is not None:
            return
        self.outcome, self.reason = outcome, reason
        if outcome is not Outcome.COMPLETE:
            self.outbox.clear()
        self._wake.set()

    async def responses(self) -> AsyncIterator[str]:
        """The responses to send, as they come, until the follower is ended."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.outbox:
                yield self.outbox.popleft()
            if self.outcome is not None:
                return


class Relays(dict[Key, "Relay"]):
    """The relays running for one app's sockets, by key, and the tasks of every relay that has not
    finished yet (one that was stopped may still be closing its stream)."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: set[asyncio.Task[None]] = set()

    def started(self, task: "asyncio.Task[None]") -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        """Stop every relay and wait for each to close its stream (its bus subscription and
        session), before the app lets go of the bus and the database."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class Relay:
    """The one run of a subscription for ``key``, and the followers it hands responses to. It is in
    ``relays`` while it runs, and stops once no follower (nor a socket catching up) is left."""

    def __init__(self, relays: Relays, key: Key, context: SocketContext, source: Source, limit: int) -> None:
        self.relays, self.key, self.context, self.limit = relays, key, context, limit
        self.followers: dict[Follower, None] = {}
        self.history: deque[tuple[object, str]] = deque(maxlen=HISTORY)
        self.catching_up = 0
        self.sent = 0  # responses the relay has sent
        self.ended = False
        self._signed_out: str | None = None
        self._progressed = asyncio.Event()  # set (and replaced) on each response the relay sends
        context.close_socket = self._sign_out
        relays[key] = self
        # A context of its own: the creating socket's (its operation's scope) is not kept alive by it.
        self._task = asyncio.create_task(self._run(source), name="subscription-relay", context=Context())
        relays.started(self._task)

    def take(self, caller: Caller) -> Follower | None:
        """A follower from the first response on, while the relay has sent none."""
        return None if self.ended or self.sent else self._join(caller, ())

    async def align(self, data: object, caller: Caller, *, first: bool) -> Follower | None:
        """A follower from the response after ``data``, once ``data`` is one the relay sent. The
        relay may be a step behind the stream that got ``data`` (the one that executed the event
        first sends first): it is given ``ALIGN_WITHIN`` seconds to catch up.

        A ``first`` response equal to the relay's own first one, while the relay has sent no other,
        shows that nothing has changed since the relay started (a job not yet under way, say):
        from there the relay's next responses are the ones this stream would have sent."""
        if self.ended:
            return None
        if first and self.sent == 1 and self.history[0][0] == data:
            return self._join(caller, ())  # nothing has happened since the relay's first response
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ALIGN_WITHIN
        while not self.ended:
            sent = list(self.history)
            for index, (response, _) in enumerate(sent):
                if response is data:
                    return self._join(caller, (text for _, text in sent[index + 1 :]))
            progressed, left = self._progressed, deadline - loop.time()
            if left <= 0:
                return None
            with suppress(TimeoutError):
                await asyncio.wait_for(progressed.wait(), left)
        return None

    @contextmanager
    def catching_up_with(self) -> Iterator[None]:
        """Keeps the relay running while a socket runs its own stream to catch up with it."""
        self.catching_up += 1
        try:
            yield
        finally:
            self.catching_up -= 1
            self._stop_if_idle()

    def leave(self, follower: Follower) -> None:
        self.followers.pop(follower, None)
        self._stop_if_idle()

    def _join(self, caller: Caller, backlog: Iterable[str]) -> Follower:
        follower = Follower(caller, self.limit, backlog)
        self.followers[follower] = None
        return follower

    def _stop_if_idle(self) -> None:
        if not self.followers and not self.catching_up and not self.ended:
            self._end()
            self._task.cancel()

    def _end(self) -> None:
        self.ended = True
        self._progressed.set()  # no one waits for it to send more
        if self.relays.get(self.key) is self:
            del self.relays[self.key]

    async def _sign_out(self, code: int, reason: str) -> None:
        """The viewer itself was refused (the account deactivated or deleted): every follower is."""
        self._signed_out = reason

    async def _run(self, source: Source) -> None:
        outcome, reason = Outcome.COMPLETE, ""
        try:
            async with self.context.scope():
                stream = await source(self.context)
                async with aclosing(stream):  # type: ignore[type-var]
                    async for result in stream:
                        if self._signed_out is not None:
                            outcome, reason = Outcome.SIGNED_OUT, self._signed_out
                            break
                        if isinstance(result, PreExecutionError) or not isinstance(result, ExecutionResult):
                            if not self.sent:  # nothing sent: each runs it as Strawberry does
                                outcome = Outcome.RESUME
                            elif isinstance(result, ExecutionResult):  # the stream failed on the way
                                outcome, reason = Outcome.FAILED, encoded(None, result)
                            else:  # incremental delivery, which a subscription does not make
                                outcome, reason = Outcome.FAILED, _failure(INTERNAL_ERROR_MESSAGE, _INTERNAL)
                            break
                        await self._relay(result)
        except Exception:
            logger.exception("a subscription relay failed")
            outcome = Outcome.FAILED if self.sent else Outcome.RESUME
            reason = _failure(INTERNAL_ERROR_MESSAGE, _INTERNAL)
        finally:
            self._end()
            for follower in list(self.followers):
                follower.end(outcome, reason)

    async def _relay(self, result: ExecutionResult) -> None:
        """Hand ``result`` to the followers whose credentials still hold."""
        shared = self.context.shared()
        text = encoded(shared, result)
        self.history.append((result.data, text))
        self.sent += 1
        self._progressed.set()
        self._progressed = asyncio.Event()
        followers = list(self.followers)
        try:
            async with self.context.database.session(read_only=True) as session:
                checked = await auth.recheck_many(
                    session, callers=[follower.caller for follower in followers]
                )
        except Exception as exc:
            down = unavailable(exc)
            if down is None:
                raise
            for follower in followers:
                follower.end(Outcome.FAILED, refusal(down))
            return
        viewer, offered = None, 0
        for follower, now in zip(followers, checked, strict=True):
            if isinstance(now, Unauthenticated):
                follower.end(Outcome.SIGNED_OUT, now.message)
                continue
            follower.caller = viewer = now
            follower.offer(text)
            offered += 1
        if viewer is not None:  # the account as it is now, for the resolvers (a role change, say)
            self.context.sign_in(Caller(user=viewer.user, scopes=viewer.scopes))
        live.delivered_again(shared, offered - 1)  # the relay's stream counted one
