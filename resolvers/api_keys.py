"""Resolvers of API keys."""

import strawberry

from api.ids import NodeType, node_key
from api.services import api_keys
from api.services.commands import ApiKeyCreate, build
from resolvers.context import Info, signed_in
from schema.api_keys import ApiKey, ApiKeyPayload


async def api_keys_list(info: Info) -> list[ApiKey]:
    caller = signed_in(info)
    return [ApiKey.from_model(k) for k in await api_keys.list_api_keys(info.context.session, actor=caller)]


async def create_api_key(info: Info, name: str, scopes: list[str]) -> ApiKeyPayload:
    caller = signed_in(info)
    data = build(ApiKeyCreate, {"name": name, "scopes": scopes})
    return ApiKeyPayload.from_new(
        await api_keys.create_api_key(info.context.session, actor=caller, data=data)
    )


async def revoke_api_key(info: Info, id: strawberry.ID) -> bool:
    caller = signed_in(info)
    await api_keys.revoke_api_key(info.context.session, actor=caller, key_id=node_key(id, NodeType.API_KEY))
    return True
