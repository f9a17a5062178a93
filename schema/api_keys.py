"""GraphQL types of API keys."""

from datetime import datetime
from typing import Self

import strawberry

from api.ids import NodeType
from api.services.api_keys import NewApiKey
from schema.base import Node


@strawberry.type
class ApiKey(Node):
    node_type = NodeType.API_KEY
    name: str
    prefix: str = strawberry.field(description="The first characters of the secret, to tell keys apart.")
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None


@strawberry.type
class ApiKeyPayload:
    api_key: ApiKey
    secret: str = strawberry.field(description="Shown this once: only its hash is kept.")

    @classmethod
    def from_new(cls, new: NewApiKey) -> Self:
        return cls(api_key=ApiKey.from_model(new.key), secret=new.secret)
