"""Fetch jobs as a GraphQL client drives them, for the job and runner tests."""

import uuid
from typing import Any

import httpx2
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from api.ids import NodeType, node_key
from api.jobs import JobRunner
from tests.factories import graphql

JOB_FIELDS = "id status total completed error startedAt finishedAt results { position url outcome error }"
START = f"mutation($urls: [String!]!) {{ startFetchJob(urls: $urls) {{ {JOB_FIELDS} }} }}"
READ = f"query($id: ID!) {{ fetchJob(id: $id) {{ {JOB_FIELDS} }} }}"
CANCEL = f"mutation($id: ID!) {{ cancelFetchJob(id: $id) {{ {JOB_FIELDS} }} }}"


class Parked:
    """A job control that runs nothing: the job stays PENDING, as one accepted while no runner has
    claimed it yet."""

    def run_after_commit(self, session: AsyncSession, job_id: uuid.UUID) -> None:
        pass


def runner(app: FastAPI) -> JobRunner:
    jobs: JobRunner = app.state.jobs
    return jobs


def key(global_id: str) -> uuid.UUID:
    return node_key(global_id, NodeType.FETCH_JOB)


async def start(client: httpx2.AsyncClient, urls: list[str], headers: dict[str, str]) -> dict[str, Any]:
    body = await graphql(client, START, {"urls": urls}, headers=headers)
    assert "errors" not in body, body
    job: dict[str, Any] = body["data"]["startFetchJob"]
    return job


async def read(client: httpx2.AsyncClient, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    body = await graphql(client, READ, {"id": job_id}, headers=headers)
    assert "errors" not in body, body
    job: dict[str, Any] = body["data"]["fetchJob"]
    return job
