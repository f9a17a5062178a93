"""GraphQL types of the users domain."""

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Self

import strawberry

from api.db import models
from api.ids import to_global_id
from api.services.commands import UserAdminUpdate, UserCreate, UserSelfUpdate, build
from api.services.events import UserEventKind
from api.services.live import UserUpdate
from api.services.pagination import DEFAULT_PAGE_SIZE
from resolvers import fetch as fetch_resolvers
from resolvers.context import Info
from schema.base import Connection, Node, described_field

if TYPE_CHECKING:
    from schema.fetch import FetchJob, JobStatus


@strawberry.type
class User(Node):
    key: strawberry.Private[uuid.UUID]
    email: str
    display_name: str | None
    is_active: bool
    is_admin: bool
    created_at: datetime

    @described_field("The user's fetch jobs, oldest first (the user, or an admin).")
    async def fetch_jobs(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        status: Annotated["JobStatus", strawberry.lazy("schema.fetch")] | None = None,
    ) -> Connection[Annotated["FetchJob", strawberry.lazy("schema.fetch")]]:
        return await fetch_resolvers.user_fetch_jobs(self, info, first, after, status)

    @classmethod
    def from_model(cls, row: models.User) -> Self:
        return cls(
            id=strawberry.ID(to_global_id("User", row.id)),
            key=row.id,
            email=row.email,
            display_name=row.display_name,
            is_active=row.is_active,
            is_admin=row.is_admin,
            created_at=row.created_at,
        )


UserConnection = Connection[User]

strawberry.enum(UserEventKind)


@strawberry.type
class UserEvent:
    kind: UserEventKind
    user: User = strawberry.field(description="The account as it is now; as it was, when deleted.")

    @classmethod
    def from_update(cls, update: UserUpdate) -> Self:
        return cls(kind=update.kind, user=User.from_model(update.user))


def _sent(data: object) -> dict[str, Any]:
    """The fields of an input the client sent (``UNSET`` ones dropped), by their Python names."""
    return {k: v for k, v in asdict(data).items() if v is not strawberry.UNSET}  # type: ignore[call-overload]


@strawberry.input
class RegisterInput:
    email: str
    password: str
    display_name: str | None = strawberry.UNSET

    def to_command(self) -> UserCreate:
        return build(UserCreate, _sent(self))


@strawberry.input
class UpdateMeInput:
    email: str | None = strawberry.UNSET
    display_name: str | None = strawberry.UNSET

    def to_command(self) -> UserSelfUpdate:
        return build(UserSelfUpdate, _sent(self))


@strawberry.input
class UpdateUserInput:
    display_name: str | None = strawberry.UNSET
    is_active: bool | None = strawberry.UNSET
    is_admin: bool | None = strawberry.UNSET

    def to_command(self) -> UserAdminUpdate:
        return build(UserAdminUpdate, _sent(self))
