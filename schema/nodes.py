"""A user and their fetch jobs: the two node types that point at each other.

``User.fetchJobs`` builds ``FetchJob``s and ``FetchJob.owner`` builds a ``User``, so the two are
defined together and every other module imports them from here. Their nested fields read through
the operation's loaders (``info.context.loaders``): one statement per level of a query.
"""

import uuid
from datetime import datetime

import strawberry

from api.db.models import JobStatus, Outcome
from api.errors import NotFound
from api.ids import NodeType
from api.services.commands import build
from api.services.pagination import DEFAULT_PAGE_SIZE, PageRequest
from resolvers.context import Info
from schema import cost
from schema.base import Connection, Node, connection_of, described_field, from_row
from schema.fetch import FetchResult


@strawberry.type
class User(Node):
    node_type = NodeType.USER
    email: str
    display_name: str | None
    is_active: bool
    is_admin: bool
    created_at: datetime

    @described_field("The user's fetch jobs, newest first (the user, or an admin).", cost.CONNECTION)
    async def fetch_jobs(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        status: JobStatus | None = None,
    ) -> "FetchJobConnection":
        page = build(PageRequest, {"first": first, "after": after})
        found = await info.context.loaders.jobs_of_owners.load((self.key, page, status))
        return connection_of(found, FetchJob.from_model)


UserConnection = Connection[User]


@strawberry.type
class FetchJob(Node):
    node_type = NodeType.FETCH_JOB
    owner_id: strawberry.Private[uuid.UUID]
    status: JobStatus
    total: int
    completed: int = strawberry.field(description="How many results are in.")
    error: str | None = strawberry.field(description="Why the job failed, when it did.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @strawberry.field
    async def owner(self, info: Info) -> User:
        row = await info.context.loaders.users.load(self.owner_id)
        if row is None:
            raise NotFound("No such user.")
        return User.from_model(row)

    @described_field("The results so far, in URL order.", cost.RESULTS)
    async def results(self, info: Info, outcome: Outcome | None = None) -> list[FetchResult]:
        rows = await info.context.loaders.results.load((self.key, outcome))
        return [from_row(FetchResult, row) for row in rows]


FetchJobConnection = Connection[FetchJob]
