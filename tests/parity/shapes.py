"""The common shape of each resource, whichever transport it came over: GraphQL's camelCase fields and
global ``id`` and REST's snake_case fields and ``node_id`` mapped to one set of names and values, so
that two equal shapes mean the same data. Timestamps are compared as the text each transport wrote:
both write one format."""

import uuid
from typing import Any

import jwt

from api.ids import NodeType, to_global_id


def _pick(raw: dict[str, Any], camel: str, snake: str) -> Any:
    return raw[camel] if camel in raw else raw[snake]


def node_id(raw: dict[str, Any]) -> str:
    """The global id: GraphQL's ``id``, REST's ``node_id`` (REST's ``id`` is the bare UUID)."""
    value: str = raw["node_id"] if "node_id" in raw else raw["id"]
    return value


def common_user(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": node_id(raw),
        "email": raw["email"],
        "display_name": _pick(raw, "displayName", "display_name"),
        "is_active": _pick(raw, "isActive", "is_active"),
        "is_admin": _pick(raw, "isAdmin", "is_admin"),
        "created_at": _pick(raw, "createdAt", "created_at"),
    }


def common_api_key(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": node_id(raw),
        "name": raw["name"],
        "prefix": raw["prefix"],
        "scopes": raw["scopes"],
        "created_at": _pick(raw, "createdAt", "created_at"),
        "last_used_at": _pick(raw, "lastUsedAt", "last_used_at"),
    }


def common_new_api_key(raw: dict[str, Any]) -> dict[str, Any]:
    """A key just made, with its secret (shown this once); the secret starts with the key's prefix."""
    key = common_api_key(_pick(raw, "apiKey", "api_key"))
    return {
        "api_key": key,
        "secret": raw["secret"],
        "secret_has_prefix": raw["secret"].startswith(key["prefix"]),
    }


def common_job(raw: dict[str, Any]) -> dict[str, Any]:
    """A fetch job; its owner as a global id (GraphQL's ``owner { id }``, REST's ``owner_id`` UUID)."""
    owner = raw["owner"]["id"] if "owner" in raw else to_global_id(NodeType.USER, uuid.UUID(raw["owner_id"]))
    return {
        "id": node_id(raw),
        "owner": owner,
        "status": raw["status"],
        "total": raw["total"],
        "completed": raw["completed"],
        "error": raw["error"],
        "created_at": _pick(raw, "createdAt", "created_at"),
        "started_at": _pick(raw, "startedAt", "started_at"),
        "finished_at": _pick(raw, "finishedAt", "finished_at"),
    }


def common_result(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "position": raw["position"],
        "url": raw["url"],
        "outcome": raw["outcome"],
        "status_code": _pick(raw, "statusCode", "status_code"),
        "final_url": _pick(raw, "finalUrl", "final_url"),
        "content_type": _pick(raw, "contentType", "content_type"),
        "bytes": raw["bytes"],
        "elapsed_ms": _pick(raw, "elapsedMs", "elapsed_ms"),
        "error": raw["error"],
        "fetched_at": _pick(raw, "fetchedAt", "fetched_at"),
    }


def common_page(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    """A page of a list: its items and the cursor of the next page (``None`` on the last)."""
    return {"items": items, "next_cursor": next_cursor}


def common_tokens(raw: dict[str, Any], me: Any) -> dict[str, Any]:
    """A new token pair, with ``me`` (whom its access token opens) for the token itself, and the
    ``scope`` its claims carry, which must be the one the answer states.

    ``token_type`` is compared case-insensitively, as RFC 6749 §5.1 has clients read it: GraphQL
    answers ``Bearer`` and REST ``bearer``."""
    access = _pick(raw, "accessToken", "access_token")
    claimed = jwt.decode(access, options={"verify_signature": False})["scope"]
    return {
        "scope": raw["scope"],
        "claimed_scope_is_stated": claimed == raw["scope"],
        "token_type": _pick(raw, "tokenType", "token_type").lower(),
        "expires_in": _pick(raw, "expiresIn", "expires_in"),
        "refresh_token": _pick(raw, "refreshToken", "refresh_token"),
        "me": me,
    }
