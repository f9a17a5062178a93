"""Resolvers of API keys."""

import uuid

import strawberry

from api.errors import InvalidInput
from api.ids import from_global_id
from api.services import api_keys
from api.services.commands import ApiKeyCreate, build
from resolvers.context import Info, signed_in
from schema.api_keys import ApiKey, ApiKeyPayload


def api_key_id(global_id: strawberry.ID) -> uuid.UUID:
    decoded = from_global_id(global_id)
    if decoded is None or decoded[0] != "ApiKey":
        raise InvalidInput({"id": ["Not the id of an API key."]})
    return decoded[1]


async def api_keys_list(info: Info) -> list[ApiKey]:
    return [
        ApiKey.from_model(k) for k in await api_keys.list_api_keys(info.context.session, info.context.caller)
    ]


async def create_api_key(info: Info, name: str, scopes: list[str]) -> ApiKeyPayload:
    caller = signed_in(info)
    data = build(ApiKeyCreate, {"name": name, "scopes": scopes})
    return ApiKeyPayload.from_new(await api_keys.create_api_key(info.context.session, caller, data))


async def revoke_api_key(info: Info, id: strawberry.ID) -> bool:
    caller = signed_in(info)
    await api_keys.revoke_api_key(info.context.session, caller, api_key_id(id))
    return True
