"""Fetch jobs and their results through GraphQL and through REST (``tests/parity.py``): start (from
URLs or an uploaded file), read, list (by status, a page at a time), cancel, results (by outcome).

A job a scenario starts runs on the app's real runner against the local target server, and is waited
for before the scenario's savepoint is rolled back (the runner writes on the test's connection too).
"""

import asyncio
import uuid
from dataclasses import dataclass

import pytest
from fastapi import FastAPI

from api.db.engine import Database
from api.db.models import FetchJob, User
from api.ids import from_global_id
from api.jobs import JobRunner
from api.security import create_access_token
from api.services import api_keys, fetch_jobs
from api.services.callers import Caller
from api.services.commands import ApiKeyCreate
from api.services.fetch_jobs import JobControl
from tests.factories import make_user
from tests.jobs import Parked
from tests.parity import Case, Served, case, check_parity, ok, rolled_back
from tests.parity.transports import GraphQLTransport, Outcome, RestTransport, Transport, steps


@dataclass
class World:
    tokens: dict[str, str]  # access tokens of "admin", "alice" and "bob"; "reader": an API key without fetch
    jobs: dict[str, FetchJob]  # alice's "done" and "pending" jobs, and bob's "bob" (pending)
    targets: str
    runner: JobRunner


NEW_JOB = ("id", "created_at")
RUN_JOB = (*NEW_JOB, "started_at", "finished_at", "elapsed_ms", "fetched_at")
CANCELLED = ("finished_at", "fetched_at")


async def settled(w: World, started: Outcome) -> Outcome:
    """``started``, once the runner has run the job it started to its end."""
    if started.code is None:
        decoded = from_global_id(started.data["id"])
        assert decoded is not None
        # One turn of the loop, not a wait: the commit hands the job to the runner with call_soon.
        await asyncio.sleep(0)
        await w.runner.wait(decoded[1])
    return started


async def start_and_read(t: Transport, w: World) -> Outcome:
    token = w.tokens["alice"]
    started = ok(await settled(w, await t.start_job(token, [f"{w.targets}/ok", "not a url"])))
    return steps(
        started, await t.get_job(token, started.data["id"]), await t.job_results(token, started.data["id"])
    )


async def start_from_file(t: Transport, w: World) -> Outcome:
    content = f"\ufeff# my list\n\n{w.targets}/ok\r\n  {w.targets}/status/500  \n# done\n".encode()
    token = w.tokens["alice"]
    started = ok(await settled(w, await t.start_job_from_file(token, content)))
    return steps(started, await t.job_results(token, started.data["id"]))


async def start(t: Transport, w: World, token: str | None, urls: list[str]) -> Outcome:
    return await settled(w, await t.start_job(token, urls))


async def pages(t: Transport, w: World) -> Outcome:
    first = ok(await t.list_jobs(w.tokens["alice"], 1))
    return steps(first, await t.list_jobs(w.tokens["alice"], 1, first.data["next_cursor"]))


async def cancel_and_read(t: Transport, w: World) -> Outcome:
    job_id = w.jobs["pending"].id
    cancelled = await t.cancel_job(w.tokens["alice"], job_id)
    return steps(
        cancelled,
        await t.job_results(w.tokens["alice"], job_id),
        await t.cancel_job(w.tokens["alice"], job_id),
    )


def many(w: World) -> list[str]:
    return [f"{w.targets}/ok"] * 101


SCENARIOS: dict[str, Case[World]] = {
    "start a job": case(lambda t, w: start(t, w, w.tokens["alice"], [f"{w.targets}/ok"] * 2), fresh=NEW_JOB),
    "start a job, then read it and its results once done": case(start_and_read, fresh=RUN_JOB),
    "start a job from a file": case(start_from_file, fresh=RUN_JOB),
    "start a job with no URL": case(lambda t, w: start(t, w, w.tokens["alice"], []), "BAD_USER_INPUT"),
    "start a job with too many URLs": case(
        lambda t, w: start(t, w, w.tokens["alice"], many(w)), "BAD_USER_INPUT"
    ),
    "start a job from an empty file": case(
        lambda t, w: t.start_job_from_file(w.tokens["alice"], b"\n  \n"), "BAD_USER_INPUT"
    ),
    "start a job from a file of comments only": case(
        lambda t, w: t.start_job_from_file(w.tokens["alice"], b"# nothing\n"), "BAD_USER_INPUT"
    ),
    "start a job from a file that is not text": case(
        lambda t, w: t.start_job_from_file(w.tokens["alice"], b"\xff\xfe\x00"), "BAD_USER_INPUT"
    ),
    "anonymous starts a job": case(lambda t, w: start(t, w, None, [f"{w.targets}/ok"]), "UNAUTHENTICATED"),
    "a key without the fetch scope starts a job": case(
        lambda t, w: start(t, w, w.tokens["reader"], [f"{w.targets}/ok"]), "FORBIDDEN"
    ),
    "anonymous starts a job from a file": case(
        lambda t, w: t.start_job_from_file(None, f"{w.targets}/ok\n".encode()), "UNAUTHENTICATED"
    ),
    "read a job": case(lambda t, w: t.get_job(w.tokens["alice"], w.jobs["done"].id)),
    "admin reads another user's job": case(lambda t, w: t.get_job(w.tokens["admin"], w.jobs["done"].id)),
    "read another user's job": case(lambda t, w: t.get_job(w.tokens["alice"], w.jobs["bob"].id), "NOT_FOUND"),
    "read an unknown job": case(lambda t, w: t.get_job(w.tokens["alice"], uuid.UUID(int=1)), "NOT_FOUND"),
    "read a malformed id": case(lambda t, w: t.get_job(w.tokens["alice"], "garbage"), "BAD_USER_INPUT"),
    "anonymous reads a job": case(lambda t, w: t.get_job(None, w.jobs["done"].id), "UNAUTHENTICATED"),
    "a key without the fetch scope reads a job": case(
        lambda t, w: t.get_job(w.tokens["reader"], w.jobs["done"].id), "FORBIDDEN"
    ),
    "list jobs": case(lambda t, w: t.list_jobs(w.tokens["alice"], 10)),
    "list done jobs": case(lambda t, w: t.list_jobs(w.tokens["alice"], 10, status="DONE")),
    "list pending jobs": case(lambda t, w: t.list_jobs(w.tokens["alice"], 10, status="PENDING")),
    "list cancelled jobs": case(lambda t, w: t.list_jobs(w.tokens["alice"], 10, status="CANCELLED")),
    "list jobs a page at a time": case(pages),
    "admin lists jobs (their own only)": case(lambda t, w: t.list_jobs(w.tokens["admin"], 10)),
    "list jobs with a bad page size": case(lambda t, w: t.list_jobs(w.tokens["alice"], 0), "BAD_USER_INPUT"),
    "list jobs with a too large page": case(
        lambda t, w: t.list_jobs(w.tokens["alice"], 101), "BAD_USER_INPUT"
    ),
    "list jobs after a bad cursor": case(
        lambda t, w: t.list_jobs(w.tokens["alice"], 10, "garbage"), "BAD_USER_INPUT"
    ),
    "list jobs of an unknown status": case(
        lambda t, w: t.list_jobs(w.tokens["alice"], 10, status="LOST"), "BAD_USER_INPUT"
    ),
    "anonymous lists jobs": case(lambda t, w: t.list_jobs(None, 10), "UNAUTHENTICATED"),
    "a key without the fetch scope lists jobs": case(
        lambda t, w: t.list_jobs(w.tokens["reader"], 10), "FORBIDDEN"
    ),
    "cancel a job, read its results, cancel it again": case(cancel_and_read, fresh=CANCELLED),
    "cancel a job that is done": case(
        lambda t, w: t.cancel_job(w.tokens["alice"], w.jobs["done"].id), "CONFLICT"
    ),
    "admin cancels another user's job": case(
        lambda t, w: t.cancel_job(w.tokens["admin"], w.jobs["bob"].id), fresh=CANCELLED
    ),
    "cancel another user's job": case(
        lambda t, w: t.cancel_job(w.tokens["alice"], w.jobs["bob"].id), "NOT_FOUND"
    ),
    "cancel an unknown job": case(
        lambda t, w: t.cancel_job(w.tokens["alice"], uuid.UUID(int=1)), "NOT_FOUND"
    ),
    "cancel a malformed id": case(lambda t, w: t.cancel_job(w.tokens["alice"], "garbage"), "BAD_USER_INPUT"),
    "anonymous cancels a job": case(lambda t, w: t.cancel_job(None, w.jobs["pending"].id), "UNAUTHENTICATED"),
    "a job's results": case(lambda t, w: t.job_results(w.tokens["alice"], w.jobs["done"].id)),
    "a job's results of one outcome": case(
        lambda t, w: t.job_results(w.tokens["alice"], w.jobs["done"].id, "HTTP_ERROR")
    ),
    "a job's results of an outcome it has none of": case(
        lambda t, w: t.job_results(w.tokens["alice"], w.jobs["done"].id, "TIMEOUT")
    ),
    "a job's results of an unknown outcome": case(
        lambda t, w: t.job_results(w.tokens["alice"], w.jobs["done"].id, "LOST"), "BAD_USER_INPUT"
    ),
    "another user's job's results": case(
        lambda t, w: t.job_results(w.tokens["alice"], w.jobs["bob"].id), "NOT_FOUND"
    ),
    "a malformed job id's results": case(
        lambda t, w: t.job_results(w.tokens["alice"], "garbage"), "BAD_USER_INPUT"
    ),
    "anonymous reads a job's results": case(
        lambda t, w: t.job_results(None, w.jobs["done"].id), "UNAUTHENTICATED"
    ),
    # The caller is checked before the input (issue 12, item 4).
    "anonymous starts a job with no URL": case(lambda t, w: start(t, w, None, []), "UNAUTHENTICATED"),
    "anonymous starts a job with too many URLs": case(
        lambda t, w: start(t, w, None, many(w)), "UNAUTHENTICATED"
    ),
    "anonymous starts a job from an empty file": case(
        lambda t, w: t.start_job_from_file(None, b""), "UNAUTHENTICATED"
    ),
    "anonymous reads a malformed id": case(lambda t, w: t.get_job(None, "garbage"), "UNAUTHENTICATED"),
    "anonymous lists jobs with a bad page size": case(lambda t, w: t.list_jobs(None, 0), "UNAUTHENTICATED"),
    "anonymous lists jobs after a bad cursor": case(
        lambda t, w: t.list_jobs(None, 10, "garbage"), "UNAUTHENTICATED"
    ),
    "anonymous cancels a malformed id": case(lambda t, w: t.cancel_job(None, "garbage"), "UNAUTHENTICATED"),
    "a key without the fetch scope starts a job with no URL": case(
        lambda t, w: start(t, w, w.tokens["reader"], []), "FORBIDDEN"
    ),
}


async def make_job(
    database: Database, app: FastAPI, owner: User, urls: list[str], control: JobControl
) -> FetchJob:
    async with database.session() as session:
        return await fetch_jobs.start_job(
            session,
            settings=app.state.settings,
            limiter=app.state.limiter,
            control=control,
            actor=Caller(user=owner),
            urls=urls,
        )


@pytest.fixture(scope="module")
async def world(served: Served, targets: str) -> World:
    database, app = served.database, served.app
    users = {
        "admin": await make_user(database, admin=True, display_name="Admin"),
        "alice": await make_user(database, display_name="Alice"),
        "bob": await make_user(database, display_name="Bob"),
    }
    tokens = {name: create_access_token(app.state.settings, u.id).token for name, u in users.items()}
    async with database.session() as session:
        data = ApiKeyCreate(name="reader", scopes=["users:read"])
        tokens["reader"] = (
            await api_keys.create_api_key(session, actor=Caller(user=users["alice"]), data=data)
        ).secret
    runner: JobRunner = app.state.jobs
    urls = [f"{targets}/ok", f"{targets}/status/404", "gopher://example.com/", f"{targets}/redirect?to=/ok"]
    done = await make_job(database, app, users["alice"], urls, runner)
    await asyncio.sleep(0)  # one turn of the loop: the commit hands the job to the runner with call_soon
    await runner.wait(done.id)
    async with database.session() as session:
        done = await session.get_one(FetchJob, done.id)  # as the runner left it
    jobs = {
        "done": done,
        "pending": await make_job(database, app, users["alice"], [f"{targets}/ok"] * 3, Parked()),
        "bob": await make_job(database, app, users["bob"], [f"{targets}/ok"], Parked()),
    }
    return World(tokens, jobs, targets, runner)


async def test_the_world_is_as_the_scenarios_need(world: World) -> None:
    assert (world.jobs["done"].status.value, world.jobs["done"].completed) == ("DONE", 4)
    assert (world.jobs["pending"].status.value, world.jobs["bob"].status.value) == ("PENDING", "PENDING")


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_graphql_and_rest_agree(name: str, served: Served, world: World) -> None:
    await check_parity(SCENARIOS[name], world, served)


async def test_a_value_outside_the_schema_is_refused_before_the_caller_on_graphql_alone(
    served: Served, world: World
) -> None:
    """The one stated exception to "the caller before the input": GraphQL coerces variables to the
    schema's types before any field runs (the GraphQL specification's request errors), so an enum
    value that does not exist is bad input there whoever asks; REST checks the caller first."""
    for transport, code in (
        (GraphQLTransport(served.client), "BAD_USER_INPUT"),
        (RestTransport(served.client), "UNAUTHENTICATED"),
    ):
        async with rolled_back(served.database):
            assert (await transport.list_jobs(None, 10, status="LOST")).code == code
            assert (await transport.job_results(None, world.jobs["done"].id, "LOST")).code == code
