"""A Switchboard client in Python: sign in, read, start a fetch job and follow it live.

    SWITCHBOARD_PASSWORD='correct horse battery' .venv/bin/python examples/client.py \\
        --email ada@example.com https://example.com/ https://example.org/

It signs in over GraphQL (registering the account first when it does not exist yet), runs a query
(``me``) and a mutation (``startFetchJob``) over HTTP with httpx2, then follows the job's
``fetchJobEvents`` subscription over a WebSocket speaking ``graphql-transport-ws``, printing the job's
state and each result as it comes, until the server completes the subscription when the job ends. The
password comes from ``SWITCHBOARD_PASSWORD`` or is asked on the
terminal, never from an argument (which would land in the shell history). It needs only httpx2 and
websockets, both installed with the service.
"""

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

LOGIN = """mutation ($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken user { email } } }"""
REGISTER = "mutation ($input: RegisterInput!) { register(input: $input) { accessToken user { email } } }"
ME = "{ me { id email displayName } }"
START_JOB = "mutation ($urls: [String!]!) { startFetchJob(urls: $urls) { id status total } }"
RESULT = "position url outcome statusCode error"
JOB_EVENTS = f"""subscription ($id: ID!) {{ fetchJobEvents(id: $id) {{
  job {{ status completed total }} result {{ {RESULT} }} }} }}"""
JOB_RESULTS = f"query ($id: ID!) {{ fetchJob(id: $id) {{ results {{ {RESULT} }} }} }}"


class GraphQLError(Exception):
    """The server refused an operation; ``code`` is the first error's ``extensions.code``."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.code: str = errors[0].get("extensions", {}).get("code", "ERROR")
        super().__init__(f"{self.code}: {errors[0].get('message', '')}")


async def execute(
    http: httpx2.AsyncClient, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
) -> dict[str, Any]:
    """The ``data`` of one GraphQL operation over HTTP; raises ``GraphQLError`` when it has errors."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"query": query, "variables": variables or {}}
    response = await http.post("/graphql", json=body, headers=headers)
    answer: dict[str, Any] = response.json()
    if answer.get("errors"):
        raise GraphQLError(answer["errors"])
    response.raise_for_status()
    data: dict[str, Any] = answer["data"]
    return data


async def sign_in(http: httpx2.AsyncClient, email: str, password: str) -> str:
    """An access token (15 minutes) for the account, registered first if signing in is refused.

    Raises the sign-in's ``GraphQLError`` (``UNAUTHENTICATED``) when the account exists and the password
    is wrong. A long-lived client would also keep the ``refreshToken`` and trade it for a new pair.
    """
    try:
        signed_in = await execute(http, LOGIN, {"email": email, "password": password})
        return str(signed_in["login"]["accessToken"])
    except GraphQLError as error:
        if error.code != "UNAUTHENTICATED":
            raise
        refused = error
    try:
        registered = await execute(http, REGISTER, {"input": {"email": email, "password": password}})
    except GraphQLError as error:
        if error.code == "CONFLICT":  # the account exists: the password was wrong
            raise refused from None
        raise
    return str(registered["register"]["accessToken"])


async def follow_job(ws_url: str, token: str, job_id: str) -> AsyncIterator[dict[str, Any]]:
    """Each ``fetchJobEvents`` event of the job, until the server completes the subscription: the job
    as it stands first, then one per result. Raises ``GraphQLError`` for a refused subscription and
    websockets' ``ConnectionClosedError`` when the server closes the socket (4403: sign in again)."""
    async with connect(ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]) as socket:
        await socket.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        if (ack := json.loads(await socket.recv()))["type"] != "connection_ack":
            raise RuntimeError(f"expected connection_ack, got {ack}")
        subscribe = {"query": JOB_EVENTS, "variables": {"id": job_id}}
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
        async for raw in socket:
            message = json.loads(raw)
            match message["type"]:
                case "ping":  # the server's keep-alive: answer, or it drops the socket
                    await socket.send(json.dumps({"type": "pong"}))
                case "next":
                    if errors := message["payload"].get("errors"):
                        raise GraphQLError(errors)
                    yield message["payload"]["data"]["fetchJobEvents"]
                case "error":
                    raise GraphQLError(message["payload"])
                case "complete":
                    return


def describe(job: dict[str, Any], result: dict[str, Any] | None = None) -> str:
    """One line: the job's state, and a result of it, if any."""
    line = f"{job['status']} {job['completed']}/{job['total']}"
    if result is not None:
        status = result["statusCode"] if result["statusCode"] is not None else "-"
        line += f"  #{result['position']} {result['outcome']} {status} {result['url']}"
        if result["error"]:
            line += f" ({result['error']})"
    return line


async def run(base_url: str, email: str, password: str, urls: list[str]) -> None:
    """Sign in, print the caller, start a job of ``urls`` and print each of its results as it comes.

    The subscription's first event is the job as it stands, and only results that come in after it are
    events: those already in by then (a fast job may even be over) are read once with ``fetchJob``.
    A result can be in both, so each position is printed once.
    """
    ws_url = base_url.replace("http", "ws", 1).rstrip("/") + "/graphql"
    async with httpx2.AsyncClient(base_url=base_url, timeout=30) as http:
        token = await sign_in(http, email, password)
        me = (await execute(http, ME, token=token))["me"]
        print(f"signed in as {me['email']} ({me['id']})")
        job = (await execute(http, START_JOB, {"urls": urls}, token=token))["startFetchJob"]
        print(f"started job {job['id']} ({job['total']} URLs): {job['status']}")
        printed: set[int] = set()
        async for event in follow_job(ws_url, token, job["id"]):
            results = [event["result"]] if event["result"] else []
            if not printed and event["job"]["completed"] and not results:
                read = await execute(http, JOB_RESULTS, {"id": job["id"]}, token=token)
                results = read["fetchJob"]["results"]
            fresh = [result for result in results if result["position"] not in printed]
            for result in fresh:
                printed.add(result["position"])
                print(describe(event["job"], result), flush=True)
            if not fresh:
                print(describe(event["job"]), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("urls", nargs="+", metavar="URL", help="a URL to fetch")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server (default: %(default)s)")
    parser.add_argument("--email", required=True, help="the account (registered if new)")
    args = parser.parse_args()
    password = os.environ.get("SWITCHBOARD_PASSWORD") or getpass.getpass("Password: ")
    try:
        asyncio.run(run(args.url, args.email, password, args.urls))
    except GraphQLError as error:
        sys.exit(f"client: {error}")


if __name__ == "__main__":
    main()
