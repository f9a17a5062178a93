"""GraphQL types of fetching: what one URL gave, and the enums of outcomes and job states."""

from datetime import datetime
from typing import Self

import strawberry

from api.db import models
from api.db.models import JobStatus, Outcome
from api.fetcher import Result

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
