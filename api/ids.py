"""Global object ids: ``base64url("<Type>:<uuid>")``, the ``id`` of every GraphQL ``Node`` and the
``node_id`` of every REST resource, so a client can carry an id from one transport to the other."""

import base64
import binascii
import uuid


def to_global_id(type_name: str, key: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{key}".encode()).decode()


def from_global_id(global_id: str) -> tuple[str, uuid.UUID] | None:
    """The type name and key of a global id, or ``None`` when it is not one of ours."""
    try:
        type_name, _, key = base64.urlsafe_b64decode(global_id).decode().partition(":")
        return type_name, uuid.UUID(key)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
