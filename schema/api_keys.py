"""GraphQL types of API keys."""

from datetime import datetime
from typing import Self

import strawberry

from api.db import models
from api.ids import NodeType, to_global_id
from api.services.api_keys import NewApiKey
from schema.base import Node


@strawberry.type
class ApiKey(Node):
    name: str
    prefix: str = strawberry.field(description="The first characters of the secret, to tell keys apart.")
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def from_model(cls, row: models.ApiKey) -> Self:
        return cls(
            id=strawberry.ID(to_global_id(NodeType.API_KEY, row.id)),
            name=row.name,
            prefix=row.prefix,
            scopes=list(row.scopes),
            created_at=row.created_at,
            last_used_at=row.last_used_at,
        )


@strawberry.type
class ApiKeyPayload:
    api_key: ApiKey
    secret: str = strawberry.field(description="Shown this once: only its hash is kept.")

    @classmethod
    def from_new(cls, new: NewApiKey) -> Self:
        return cls(api_key=ApiKey.from_model(new.key), secret=new.secret)
