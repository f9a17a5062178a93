"""How uvicorn serves the app: what ``switchboard serve`` changes in uvicorn's behaviour.

On SIGTERM uvicorn stops accepting, lets in-flight requests finish within the grace period, and
closes every open WebSocket at once, before the app hears of the shutdown, with 1012 ("service
restart"). A server that is being stopped is going away: its sockets close with 1001, and clients
reconnect, to another worker or to this one once it is back, and re-read the state they follow.
"""

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

GOING_AWAY = 1001
GRACE_SECONDS = 20
ABORT_AFTER = 1.0  # seconds a closing socket's peer has to take what is left to send


class GoingAwayWebSockets(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol (the websockets library's), closing with 1001 on shutdown."""

    def shutdown(self) -> None:
        if self.handshake_complete and not self.close_sent:
            if self.conn.state is State.OPEN:
                self.queue.put_nowait({"type": "websocket.disconnect", "code": GOING_AWAY})
                self.conn.send_close(GOING_AWAY, "The server is shutting down.")
                self.transport.write(b"".join(self.conn.data_to_send()))
            # Sent now, or the client's close came first and was answered: a close of our own would
            # raise and stop uvicorn's whole shutdown (no jobs handed back). Either way only the
            # connection is left to close, which is all uvicorn does once a close was sent.
            self.close_sent = True
        super().shutdown()
        # A peer that stopped reading never takes the close frame, and a transport with data left to
        # send never finishes closing: uvicorn would wait out its whole grace period for it.
        self.loop.call_later(ABORT_AFTER, self._abort)

    def _abort(self) -> None:
        if not self.disconnected:  # connection_lost never came: drop it (sends waiting on it fail)
            self.transport.abort()


# How ``switchboard serve`` (and the test suite's live servers) run WebSockets. Our frames are small
# JSON: compressing each, with a compressor per socket, cost half the CPU of an event sent to a
# thousand sockets and saved little.
WEBSOCKET_OPTIONS: dict[str, Any] = {"ws": GoingAwayWebSockets, "ws_per_message_deflate": False}
