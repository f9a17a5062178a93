"""Pydantic command models: the REST bodies, and what GraphQL inputs convert into.

A validation rule is written once, here, and both transports enforce it by building these models.
"""

from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
)
from pydantic import ValidationError as PydanticValidationError

from api.errors import InvalidInput, field_messages

Email = Annotated[EmailStr, AfterValidator(str.lower)]
Password = Annotated[str, Field(min_length=8, max_length=128)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Scope = Literal["users:read", "users:write", "fetch", "admin", "graphql:arbitrary"]

T = TypeVar("T")


def _not_null(value: T | None) -> T:
    if value is None:
        raise ValueError("May be left out, but not null.")
    return value


# An optional field that may be left out but not sent as null (its column cannot be empty). Pydantic
# validates only values that were sent, so leaving it out skips the check.
NotNull = AfterValidator(_not_null)


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def changes(self) -> dict[str, Any]:
        """The fields the caller actually sent (absent ones are left alone; an explicit null is kept)."""
        return self.model_dump(include=self.model_fields_set)


class UserCreate(Command):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"email": "ada@example.com", "password": "correct horse battery", "display_name": "Ada"}
            ]
        }
    )

    email: Email
    password: Password
    display_name: DisplayName | None = None


class UserSelfUpdate(Command):
    model_config = ConfigDict(json_schema_extra={"examples": [{"display_name": "Ada Lovelace"}]})

    email: Annotated[Email | None, NotNull] = None
    display_name: DisplayName | None = None


class UserAdminUpdate(Command):
    model_config = ConfigDict(json_schema_extra={"examples": [{"is_active": False}]})

    display_name: DisplayName | None = None
    is_active: Annotated[bool | None, NotNull] = None
    is_admin: Annotated[bool | None, NotNull] = None


class UserReplace(Command):
    """A full replacement of what an admin may set (``PUT``): every field is required."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"display_name": "Ada", "is_active": True, "is_admin": False}]}
    )

    display_name: DisplayName | None
    is_active: bool
    is_admin: bool


C = TypeVar("C", bound=BaseModel)


def build(model: type[C], data: dict[str, Any]) -> C:
    """Validate ``data`` into ``model``; a failure becomes ``InvalidInput`` with per-field messages."""
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise InvalidInput(field_messages(exc.errors())) from None


class PasswordChange(Command):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"current_password": "correct horse battery", "new_password": "staple horse battery"}
            ]
        }
    )

    current_password: Annotated[str, Field(max_length=128)]
    new_password: Password


class ApiKeyCreate(Command):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "nightly export", "scopes": ["users:read", "fetch"]}]}
    )

    name: DisplayName
    scopes: Annotated[list[Scope], Field(min_length=1)]


class FetchJobCreate(Command):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"urls": ["https://example.com/", "https://example.org/"]}]}
    )

    urls: list[str]
