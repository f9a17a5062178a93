"""A GraphQL WebSocket client for tests, speaking either protocol to a live server."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.waiting import until

PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]
_SUBSCRIBE = {"graphql-transport-ws": "subscribe", "graphql-ws": "start"}
_NEXT = {"graphql-transport-ws": "next", "graphql-ws": "data"}


class Socket:
    def __init__(self, connection: ClientConnection, protocol: str) -> None:
        self.connection = connection
        self.protocol = protocol

    async def send(self, message: object) -> None:
        await self.connection.send(json.dumps(message))

    async def receive(self, *, skip_keepalive: bool = True) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(await self.connection.recv())
            if not (skip_keepalive and message.get("type") in ("ka", "ping", "pong")):
                return message
            if message["type"] == "ping":
                await self.send({"type": "pong"})

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.send({"type": "connection_init", "payload": payload or {}})
        return await self.receive()

    async def subscribe(self, id: str, query: str, variables: dict[str, Any] | None = None) -> None:
        payload = {"query": query, "variables": variables or {}}
        await self.send({"type": _SUBSCRIBE[self.protocol], "id": id, "payload": payload})

    async def next(self, id: str) -> dict[str, Any]:
        """The payload of the next result of operation ``id``; fails on anything else."""
        message = await self.receive()
        assert (message["type"], message["id"]) == (_NEXT[self.protocol], id), message
        payload: dict[str, Any] = message["payload"]
        return payload

    async def closed_with(self) -> int | None:
        """The close code the server sent, once it closes (messages before it are dropped)."""
        try:
            while True:
                await self.connection.recv()
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None


@asynccontextmanager
async def socket(base_url: str, protocol: str) -> AsyncIterator[Socket]:
    url = base_url.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=[protocol], open_timeout=5) as connection:  # type: ignore[list-item]
        yield Socket(connection, protocol)


def streams(app: FastAPI) -> int:
    """The bus subscriptions of the server's live streams: the sign-in cache's own one left out."""
    return int(app.state.feeds.bus.subscribers) - int(app.state.signins.listening)


def served(app: FastAPI) -> int:
    """The subscriptions the server is serving: its bus subscribers, where a relay's one counts for
    each of its followers (``api.graphql.relay``), and the sign-in cache's own one not at all."""
    relays = list(app.state.relays.values())
    followers = sum(len(relay.followers) for relay in relays)
    return streams(app) - len(relays) + followers


async def subscribed(app: FastAPI, count: int) -> None:
    """Until the server serves ``count`` subscriptions from the bus (a subscribe message is handled
    asynchronously: an event sent before would not reach it)."""

    async def reached() -> bool:
        return served(app) == count

    await until(reached, within=5, what=f"{count} subscriptions served from the bus")
