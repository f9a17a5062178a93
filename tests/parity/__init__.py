"""How a parity test runs a scenario: once per transport from the same starting state (the first run
is rolled back to a savepoint before the second), then the two outcomes compared for equality and
against what the contract expects.

A parity module builds its world once (``served``): the real app over one outer transaction, rolled
back when the module ends. Every scenario's runs are rolled back too, so each starts from that world.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx2
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.db.engine import Database
from api.settings import Settings
from tests.conftest import asgi_client, rolled_back_database, running_app, started_bus
from tests.parity.transports import GraphQLTransport, Outcome, RestTransport, Transport

WorldT = TypeVar("WorldT")


@dataclass(frozen=True)
class Case(Generic[WorldT]):
    """A scenario, the error code its last call must end with (``None``: it must succeed), and the
    fields it makes anew on each run (an id, a time, a secret), compared only for being there."""

    run: Callable[[Transport, WorldT], Awaitable[Outcome]]
    code: str | None = None
    fresh: frozenset[str] = frozenset()


def case(
    run: Callable[[Transport, WorldT], Awaitable[Outcome]],
    code: str | None = None,
    *,
    fresh: Iterable[str] = (),
) -> Case[WorldT]:
    return Case(run, code, frozenset(fresh))


def ok(outcome: Outcome) -> Outcome:
    """A step a scenario needs to succeed before it goes on."""
    assert outcome.code is None, outcome
    return outcome


def without_fresh(value: Any, fresh: frozenset[str]) -> Any:
    """``value`` with each fresh field (at any depth) replaced by whether it is set."""
    if isinstance(value, dict):
        return {k: (v is not None) if k in fresh else without_fresh(v, fresh) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(without_fresh(v, fresh) for v in value)
    return value


@dataclass(frozen=True)
class Served:
    database: Database
    app: FastAPI
    client: httpx2.AsyncClient


@asynccontextmanager
async def module_app(engine: AsyncEngine, settings: Settings) -> AsyncIterator[Served]:
    """The app, its bus and a client for a whole module, built as ``tests/conftest.py`` builds them
    for one test."""
    async with (
        started_bus(engine) as bus,
        rolled_back_database(engine, bus) as database,
        running_app(settings, database) as app,
        asgi_client(app) as client,
    ):
        yield Served(database, app, client)


@asynccontextmanager
async def rolled_back(database: Database) -> AsyncIterator[None]:
    connection = database.sessions.kw["bind"]
    assert isinstance(connection, AsyncConnection)
    savepoint = await connection.begin_nested()
    try:
        yield
    finally:
        await savepoint.rollback()


async def check_parity(scenario: Case[WorldT], world: WorldT, served: Served) -> None:
    outcomes = []
    for transport in (GraphQLTransport(served.client), RestTransport(served.client)):
        async with rolled_back(served.database):
            outcome = await scenario.run(transport, world)
        outcomes.append(Outcome(without_fresh(outcome.data, scenario.fresh), outcome.code))
    graphql, rest = outcomes
    # Plain messages: pytest rewrites the asserts of test modules only.
    assert graphql == rest, f"GraphQL answered {graphql}, REST {rest}"
    if scenario.code is None:
        assert graphql.code is None, f"both refused: {graphql.code}"
        assert graphql.data is not None
    else:
        assert graphql.code == scenario.code, f"both answered {graphql.code}, not {scenario.code}"
