"""What the subscriptions send: one event per change, built from the live service's updates."""

from typing import Self

import strawberry

from api.services.events import UserEventKind
from api.services.live import JobUpdate, UserUpdate
from schema.base import from_row
from schema.fetch import FetchResult
from schema.nodes import FetchJob, User

strawberry.enum(UserEventKind)


@strawberry.type
class UserEvent:
    kind: UserEventKind
    user: User = strawberry.field(description="The account as it is now; as it was, when deleted.")

    @classmethod
    def from_update(cls, update: UserUpdate) -> Self:
        return cls(kind=update.kind, user=User.from_model(update.user))


@strawberry.type
class FetchJobEvent:
    job: FetchJob
    result: FetchResult | None = strawberry.field(
        description="The result that just came in; absent from the first event and from status changes."
    )

    @classmethod
    def from_update(cls, update: JobUpdate) -> Self:
        result = None if update.result is None else from_row(FetchResult, update.result)
        return cls(job=FetchJob.from_model(update.job), result=result)
