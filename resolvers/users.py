"""Resolvers of the users domain: each calls one service function and converts its result."""

from collections.abc import AsyncGenerator

import strawberry

from api.ids import NodeType, node_key
from api.services import live, users
from api.services.commands import build
from api.services.pagination import DEFAULT_PAGE_SIZE, PageRequest
from resolvers.context import Info, signed_in, streamed
from schema.base import connection_of
from schema.events import UserEvent
from schema.nodes import User, UserConnection
from schema.users import UpdateMeInput, UpdateUserInput


async def me(info: Info) -> User | None:
    caller = info.context.caller
    return User.from_model(users.me(actor=caller)) if caller is not None else None


async def user(info: Info, id: strawberry.ID) -> User | None:
    caller = signed_in(info)
    return User.from_model(
        await users.get_user(info.context.session, actor=caller, user_id=node_key(id, NodeType.USER))
    )


async def users_page(
    info: Info,
    first: int | None = DEFAULT_PAGE_SIZE,
    after: str | None = None,
    search: str | None = None,
) -> UserConnection:
    caller = signed_in(info)
    page = build(PageRequest, {"first": first, "after": after})
    result = await users.list_users(info.context.session, actor=caller, page=page, search=search)
    return connection_of(result, User.from_model)


async def update_me(info: Info, input: UpdateMeInput) -> User:
    caller = signed_in(info)
    return User.from_model(await users.update_me(info.context.session, actor=caller, data=input.to_command()))


async def update_user(info: Info, id: strawberry.ID, input: UpdateUserInput) -> User:
    caller = signed_in(info)
    row = await users.update_user(
        info.context.session, actor=caller, user_id=node_key(id, NodeType.USER), data=input.to_command()
    )
    return User.from_model(row)


async def delete_user(info: Info, id: strawberry.ID) -> bool:
    caller = signed_in(info)
    await users.delete_user(info.context.session, actor=caller, user_id=node_key(id, NodeType.USER))
    return True


async def user_events(info: Info) -> AsyncGenerator[UserEvent, None]:
    updates = await live.user_events(info.context.feeds, caller=signed_in(info))
    return streamed(info, updates, UserEvent.from_update)
