"""``node(id:)``: any object by its global id, through the per-operation loaders."""

import strawberry

from api.errors import NotFound
from api.ids import NodeType, from_global_id
from api.services import api_keys
from resolvers.context import Info
from schema.api_keys import ApiKey
from schema.base import Node
from schema.nodes import FetchJob, User


async def node(info: Info, id: strawberry.ID) -> Node | None:
    """The object, or null when the id names nothing the caller may see (Relay's convention)."""
    decoded = from_global_id(id)
    if decoded is None:
        return None
    type_name, key = decoded
    if type_name is NodeType.USER:
        row = await info.context.loaders.users.load(key)
        return User.from_model(row) if row is not None else None
    if type_name is NodeType.FETCH_JOB:
        job = await info.context.loaders.jobs.load(key)
        return FetchJob.from_model(job) if job is not None else None
    if type_name is NodeType.API_KEY:
        try:
            return ApiKey.from_model(
                await api_keys.get_api_key(info.context.session, actor=info.context.caller, key_id=key)
            )
        except NotFound:
            return None
    return None
