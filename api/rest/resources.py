"""What every REST resource shares: its UUID and its GraphQL global id, read from its row."""

import uuid
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, computed_field

from api.ids import NodeType, to_global_id


class Resource(BaseModel):
    """A resource read from a row's attributes (``model_validate(row)``), so its fields are named once,
    on the model; ``node_id`` is the id a GraphQL client knows it by."""

    model_config = ConfigDict(from_attributes=True)
    node_type: ClassVar[NodeType]

    id: uuid.UUID

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented way to type it
    @property
    def node_id(self) -> str:
        return to_global_id(self.node_type, self.id)
