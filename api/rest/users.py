"""``/api/v1/users``: accounts, over the users service."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import ConfigDict

from api.deps import ClientAddressDep, CurrentCaller, LimiterDep, SessionDep, SettingsDep
from api.ids import NodeType
from api.problems import refusals
from api.rest.pages import CompiledPagesDep, ItemPage, listing, page_response
from api.rest.resources import Resource
from api.rest.routing import Route
from api.rest.versions import IfMatch, tagged
from api.services import auth, reads, users
from api.services.commands import (
    PasswordChange,
    UserAdminUpdate,
    UserCreate,
    UserReplace,
    UserSelfUpdate,
)
from api.services.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageRequest

router = APIRouter(prefix="/users", tags=["users"], route_class=Route)


class UserOut(Resource):
    node_type = NodeType.USER
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0193a6e4-4b7e-7c3a-9f1e-3c5d2a1b0c9d",
                    "node_id": "VXNlcjowMTkzYTZlNC00YjdlLTdjM2EtOWYxZS0zYzVkMmExYjBjOWQ=",
                    "email": "ada@example.com",
                    "display_name": "Ada",
                    "is_active": True,
                    "is_admin": False,
                    "created_at": "2026-12-01T09:30:00Z",
                    "updated_at": "2026-12-02T17:05:12.250000Z",
                }
            ]
        }
    )

    email: str
    display_name: str | None
    is_active: bool
    is_admin: bool
    created_at: datetime
    updated_at: datetime


USERS = listing(reads.Relation.USERS, UserOut)


@router.post("", status_code=status.HTTP_201_CREATED, responses=refusals(409, 429))
async def register(
    body: UserCreate,
    session: SessionDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    client: ClientAddressDep,
    request: Request,
    response: Response,
) -> UserOut:
    """Register an account; sign in with ``POST /api/v1/auth/token``."""
    user = await auth.sign_up(session, settings=settings, attempt=auth.Attempt(limiter, client), data=body)
    response.headers["Location"] = str(request.url_for("read_user", user_id=user.id))
    return UserOut.model_validate(user)


@router.get("/me")
async def read_me(caller: CurrentCaller, response: Response) -> UserOut:
    """The signed-in user, with its version as the ``ETag``."""
    user = users.me(actor=caller)
    tagged(response, user)
    return UserOut.model_validate(user)


@router.patch("/me", responses=refusals(409))
async def update_me(
    body: UserSelfUpdate, caller: CurrentCaller, session: SessionDep, versions: IfMatch, response: Response
) -> UserOut:
    """Change one's own email or display name; fields left out stay as they are. With ``If-Match``,
    only if the account is unchanged since it was read (412 otherwise)."""
    user = await users.update_me(session, actor=caller, data=body, versions=versions)
    tagged(response, user)
    return UserOut.model_validate(user)


@router.put("/me/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(body: PasswordChange, caller: CurrentCaller, session: SessionDep) -> None:
    """Set a new password (the current one is required); every other session of the account ends."""
    await auth.change_password(session, actor=caller, data=body)


@router.get("", response_model=ItemPage[UserOut])
async def list_users(
    request: Request,
    caller: CurrentCaller,
    session: SessionDep,
    compiled: CompiledPagesDep,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    search: str | None = None,
) -> Response | ItemPage[UserOut]:
    """Every account, oldest first (admin); follow ``next_cursor`` or the ``Link`` header."""
    answered = await compiled.answer(USERS, caller, {"first": limit, "after": cursor, "search": search})
    if answered is not None:
        return answered
    page = await users.list_users(
        session, actor=caller, page=PageRequest(first=limit, after=cursor), search=search
    )
    return page_response(request, response, page, UserOut.model_validate)


@router.get("/{user_id}")
async def read_user(
    user_id: uuid.UUID, caller: CurrentCaller, session: SessionDep, response: Response
) -> UserOut:
    """Oneself, or anyone for an admin, with its version as the ``ETag``."""
    user = await users.get_user(session, actor=caller, user_id=user_id)
    tagged(response, user)
    return UserOut.model_validate(user)


@router.patch("/{user_id}", responses=refusals(409))
async def update_user(
    user_id: uuid.UUID,
    body: UserAdminUpdate,
    caller: CurrentCaller,
    session: SessionDep,
    versions: IfMatch,
    response: Response,
) -> UserOut:
    """Change some of an account's fields (admin); with ``If-Match``, only if it is unchanged."""
    user = await users.update_user(session, actor=caller, user_id=user_id, data=body, versions=versions)
    tagged(response, user)
    return UserOut.model_validate(user)


@router.put("/{user_id}", responses=refusals(409))
async def replace_user(
    user_id: uuid.UUID,
    body: UserReplace,
    caller: CurrentCaller,
    session: SessionDep,
    versions: IfMatch,
    response: Response,
) -> UserOut:
    """Set all of an account's admin-managed fields at once (admin); with ``If-Match``, only if it
    is unchanged."""
    user = await users.update_user(session, actor=caller, user_id=user_id, data=body, versions=versions)
    tagged(response, user)
    return UserOut.model_validate(user)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=refusals(409))
async def delete_user(
    user_id: uuid.UUID, caller: CurrentCaller, session: SessionDep, versions: IfMatch
) -> None:
    """Delete one's own account, or any (admin); with ``If-Match``, only if it is unchanged."""
    await users.delete_user(session, actor=caller, user_id=user_id, versions=versions)
