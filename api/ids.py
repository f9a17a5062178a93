"""Global object ids: ``base64url("<Type>:<uuid>")``, the ``id`` of every GraphQL ``Node`` and the
``node_id`` of every REST resource, so a client can carry an id from one transport to the other."""

import base64
import binascii
import uuid
from enum import StrEnum

from api.errors import InvalidInput


class NodeType(StrEnum):
    """The type name inside a global id: the GraphQL type's name, written once for both transports."""

    USER = "User"
    FETCH_JOB = "FetchJob"
    API_KEY = "ApiKey"

    @property
    def noun(self) -> str:
        return {NodeType.USER: "a user", NodeType.FETCH_JOB: "a fetch job", NodeType.API_KEY: "an API key"}[
            self
        ]


def to_global_id(node_type: NodeType, key: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{node_type}:{key}".encode()).decode()


def from_global_id(global_id: str) -> tuple[NodeType, uuid.UUID] | None:
    """The type and key of a global id, or ``None`` when it is not one of ours (nor a string: a
    null variable reaches here where its default would have fitted)."""
    if not isinstance(global_id, str):
        return None
    try:
        type_name, _, key = base64.urlsafe_b64decode(global_id).decode().partition(":")
        return NodeType(type_name), uuid.UUID(key)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def node_key(global_id: str, node_type: NodeType, *, field: str = "id") -> uuid.UUID:
    """The UUID behind a global id of ``node_type``; any other id is bad input (as REST refuses a
    path id that is not a UUID), reported against ``field``."""
    decoded = from_global_id(global_id)
    if decoded is None or decoded[0] is not node_type:
        raise InvalidInput({field: [f"Not the id of {node_type.noun}."]})
    return decoded[1]
