"""GraphQL types of fetching: what one URL gave, and the enums of outcomes and job states."""

from datetime import datetime

import strawberry

from api.db.models import JobStatus, Outcome

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
