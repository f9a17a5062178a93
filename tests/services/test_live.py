"""Live streams over a real socket: a job's progress, a caller's own jobs, account changes for
administrators, and one execution per viewer for subscribers asking the same."""

import asyncio
import uuid
from contextlib import AsyncExitStack

import httpx2
import pytest

from api.db.engine import Database
from api.security import create_access_token
from tests.conftest import Serve
from tests.factories import bearer, graphql, make_user
from tests.sockets import PROTOCOLS, Socket, socket, subscribed
from tests.sql import statements

START_JOB = "mutation ($urls: [String!]!) { startFetchJob(urls: $urls) { id } }"

MY_JOB_EVENTS = """subscription { myFetchJobEvents {
  job { id status completed total } result { position url outcome } } }"""

JOB_EVENTS = """subscription ($id: ID!) { fetchJobEvents(id: $id) {
  job { id status completed total } result { position url outcome } } }"""


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_job_streams_its_state_each_result_and_its_end(
    serve: Serve, live_database: Database, targets: str, protocol: str
) -> None:
    user = await make_user(live_database)
    async with serve() as (url, app), httpx2.AsyncClient(base_url=url) as http:
        headers = bearer(app.state.settings, user)
        urls = [f"{targets}/slow?s=0.2", f"{targets}/ok", f"{targets}/status/404"]
        started = await http.post("/api/v1/fetch-jobs", json={"urls": urls}, headers=headers)
        job_id = started.json()["node_id"]
        async with socket(url, protocol) as ws:
            assert (await ws.init({"Authorization": headers["Authorization"]}))["type"] == "connection_ack"
            await ws.subscribe("1", JOB_EVENTS, {"id": job_id})
            first = (await ws.next("1"))["data"]["fetchJobEvents"]
            assert first["result"] is None
            assert first["job"]["id"] == job_id
            seen = first["job"]["completed"]
            events = []
            while True:
                event = (await ws.next("1"))["data"]["fetchJobEvents"]
                events.append(event)
                if event["job"]["status"] == "DONE" and event["result"] is None:
                    break
            assert (await ws.receive())["type"] == "complete"
    positions = sorted(e["result"]["position"] for e in events if e["result"])
    assert len(positions) == 3 - seen
    assert len(set(positions)) == len(positions)
    assert events[-1]["job"]["completed"] == 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_my_job_events_follow_the_callers_new_jobs_and_no_one_elses(
    serve: Serve, live_database: Database, targets: str, protocol: str
) -> None:
    user, other = await make_user(live_database), await make_user(live_database)
    async with serve() as (url, app), httpx2.AsyncClient(base_url=url) as http:
        mine, theirs = bearer(app.state.settings, user), bearer(app.state.settings, other)
        async with socket(url, protocol) as ws:
            assert (await ws.init(mine))["type"] == "connection_ack"
            await ws.subscribe("1", MY_JOB_EVENTS)
            await subscribed(app, 1)
            their_job = await http.post(
                "/api/v1/fetch-jobs", json={"urls": [f"{targets}/ok"]}, headers=theirs
            )
            await app.state.jobs.wait(uuid.UUID(their_job.json()["id"]))
            their_status = await http.get(f"/api/v1/fetch-jobs/{their_job.json()['id']}", headers=theirs)
            assert their_status.json()["status"] == "DONE"
            urls = [f"{targets}/slow?s=0.3", f"{targets}/slow?s=0.4", f"{targets}/slow?s=0.5"]
            started = await graphql(http, START_JOB, {"urls": urls}, headers=mine)
            # Its start, its claim, one per result, its end: every event of the caller's jobs, none skipped.
            events = [
                (await asyncio.wait_for(ws.next("1"), 5))["data"]["myFetchJobEvents"]
                for _ in range(len(urls) + 3)
            ]
    # The other user's job never showed (it ran while we listened, before ours started).
    assert {event["job"]["id"] for event in events} == {started["data"]["startFetchJob"]["id"]}
    opened, claimed, *fetched, ended = events
    # No state first: the stream opens on the job's start, read as it stands (maybe claimed already).
    assert (opened["result"], opened["job"]["completed"]) == (None, 0)
    assert opened["job"]["status"] in {"PENDING", "RUNNING"}
    assert claimed["result"] is None
    assert sorted(event["result"]["position"] for event in fetched) == [0, 1, 2]
    assert (ended["result"], ended["job"]["status"], ended["job"]["completed"]) == (None, "DONE", 3)


async def test_subscribers_asking_the_same_share_one_execution_per_event(
    serve: Serve, live_database: Database
) -> None:
    """Three sockets of one administrator and one of another, all with the same subscription: one
    event is executed once per viewer, not once per subscriber, and each gets the same answer."""
    first, second = await make_user(live_database, admin=True), await make_user(live_database, admin=True)
    query = """subscription { userEvents { kind user { email
      fetchJobs(first: 5) { edges { node { id } } } } } }"""
    async with serve() as (url, app), AsyncExitStack() as stack:
        sockets: list[Socket] = []
        for admin in (first, first, first, second):
            ws = await stack.enter_async_context(socket(url, PROTOCOLS[0]))
            await ws.init({"authToken": create_access_token(app.state.settings, admin.id).token})
            await ws.subscribe("1", query)
            sockets.append(ws)
        await subscribed(app, len(sockets))
        with statements(live_database.engine) as sent:
            await make_user(live_database, email="watched@example.com")
            answers = [(await ws.next("1"))["data"]["userEvents"] for ws in sockets]
    assert (
        answers
        == [{"kind": "CREATED", "user": {"email": "watched@example.com", "fetchJobs": {"edges": []}}}] * 4
    )
    assert len([s for s in sent if "FROM fetch_jobs" in s]) == 2
