"""``/api/v1/api-keys``: the caller's API keys, over the API keys service."""

import uuid
from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict
from pydantic.config import JsonDict

from api.deps import CurrentCaller, SessionDep
from api.ids import NodeType
from api.problems import refusals
from api.rest.pages import ItemPage
from api.rest.resources import Resource
from api.rest.routing import Route
from api.services import api_keys
from api.services.commands import ApiKeyCreate

router = APIRouter(prefix="/api-keys", tags=["api keys"], route_class=Route)


# A key as OpenAPI shows it, alone and inside the answer that creates it.
_KEY_EXAMPLE: JsonDict = {
    "id": "0193a6e5-1d20-7a44-8b0e-5f6a7b8c9d0e",
    "node_id": "QXBpS2V5OjAxOTNhNmU1LTFkMjAtN2E0NC04YjBlLTVmNmE3YjhjOWQwZQ==",
    "name": "nightly export",
    "prefix": "sbk_Xq3v",
    "scopes": ["users:read", "fetch"],
    "created_at": "2026-12-01T09:31:00Z",
    "last_used_at": None,
}


class ApiKeyOut(Resource):
    node_type = NodeType.API_KEY
    model_config = ConfigDict(json_schema_extra={"examples": [_KEY_EXAMPLE]})

    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None


class NewApiKeyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "api_key": _KEY_EXAMPLE,
                    "secret": "sbk_Xq3vN8yTtq0lJm2VvZ6o0k3QwOeR1c9xH4bF7aUuYsE",
                }
            ]
        }
    )

    api_key: ApiKeyOut
    secret: str


@router.post("", status_code=status.HTTP_201_CREATED, responses=refusals(409))
async def create_api_key(body: ApiKeyCreate, caller: CurrentCaller, session: SessionDep) -> NewApiKeyOut:
    """Create a key; its secret is in this answer only (send it as ``X-API-Key``)."""
    new = await api_keys.create_api_key(session, actor=caller, data=body)
    return NewApiKeyOut(api_key=ApiKeyOut.model_validate(new.key), secret=new.secret)


@router.get("")
async def list_api_keys(caller: CurrentCaller, session: SessionDep) -> ItemPage[ApiKeyOut]:
    """The caller's keys, oldest first (all of them: an account holds at most 50)."""
    keys = await api_keys.list_api_keys(session, actor=caller)
    return ItemPage(items=[ApiKeyOut.model_validate(k) for k in keys], next_cursor=None)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(key_id: uuid.UUID, caller: CurrentCaller, session: SessionDep) -> None:
    """Revoke one of the caller's keys: it stops working at once."""
    await api_keys.revoke_api_key(session, actor=caller, key_id=key_id)
