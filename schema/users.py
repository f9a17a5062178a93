"""GraphQL inputs of the users domain. Each converts into the service's command model (the REST body),
so a validation rule exists once."""

from dataclasses import asdict
from typing import Any

import strawberry

from api.services.commands import UserAdminUpdate, UserCreate, UserSelfUpdate, build


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
