"""GraphQL types of fetching: results, jobs, and their enums.

``FetchJob`` and ``User`` refer to each other (``owner``, ``fetchJobs``): the modules import each
other as modules, and each name is looked up when a field resolves, not at import.
"""

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Self

import strawberry

from api.db import models
from api.db.models import JobStatus as JobStatus  # re-exported: ``User.fetchJobs`` names it lazily
from api.fetcher import Outcome, Result
from api.ids import to_global_id
from api.services.live import JobUpdate
from resolvers import fetch as fetch_resolvers
from resolvers.context import Info
from schema.base import Connection, Node, described_field

if TYPE_CHECKING:
    from schema.users import User

# The domain's enums, exposed under the contract's names (Strawberry marks the classes themselves).
strawberry.enum(Outcome, name="FetchOutcome", description="What fetching one URL gave.")
strawberry.enum(JobStatus, name="FetchJobStatus")


@strawberry.type
class FetchResult:
    position: int = strawberry.field(description="The URL's place in the list, from 0.")
    url: str
    outcome: Outcome
    status_code: int | None
    final_url: str | None = strawberry.field(description="Where the redirects, if any, led.")
    content_type: str | None
    bytes: int | None = strawberry.field(description="The size of the body as received.")
    elapsed_ms: float | None
    error: str | None = strawberry.field(description="What went wrong, in a sentence.")
    fetched_at: datetime | None

    @classmethod
    def from_result(cls, row: Result | models.FetchResult) -> Self:
        return cls(
            position=row.position,
            url=row.url,
            outcome=row.outcome,
            status_code=row.status_code,
            final_url=row.final_url,
            content_type=row.content_type,
            bytes=row.bytes,
            elapsed_ms=row.elapsed_ms,
            error=row.error,
            fetched_at=row.fetched_at,
        )


@strawberry.type
class FetchJob(Node):
    key: strawberry.Private[uuid.UUID]
    owner_key: strawberry.Private[uuid.UUID]
    status: JobStatus
    total: int
    completed: int = strawberry.field(description="How many results are in.")
    error: str | None = strawberry.field(description="Why the job failed, when it did.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @strawberry.field
    async def owner(self, info: Info) -> Annotated["User", strawberry.lazy("schema.users")]:
        return await fetch_resolvers.job_owner(self, info)

    @described_field("The results so far, in URL order.")
    async def results(self, info: Info, outcome: Outcome | None = None) -> list[FetchResult]:
        return await fetch_resolvers.job_results(self, info, outcome)

    @classmethod
    def from_model(cls, row: models.FetchJob) -> Self:
        return cls(
            id=strawberry.ID(to_global_id("FetchJob", row.id)),
            key=row.id,
            owner_key=row.owner_id,
            status=row.status,
            total=row.total,
            completed=row.completed,
            error=row.error,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
        )


FetchJobConnection = Connection[FetchJob]


@strawberry.type
class FetchJobEvent:
    job: FetchJob
    result: FetchResult | None = strawberry.field(
        description="The result that just came in; absent from the first event and from status changes."
    )

    @classmethod
    def from_update(cls, update: JobUpdate) -> Self:
        result = None if update.result is None else FetchResult.from_result(update.result)
        return cls(job=FetchJob.from_model(update.job), result=result)
