"""API keys: credentials for scripts and legacy clients, each limited to its scopes."""

import secrets
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.models import ApiKey
from api.db.types import utcnow
from api.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from api.security import secret_digest
from api.services import users
from api.services.callers import ADMIN_SCOPES, Caller, require_password_session
from api.services.commands import ApiKeyCreate

PREFIX = "sbk_"
MAX_KEYS_PER_USER = 50
# ``last_used_at`` is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class NewApiKey:
    key: ApiKey
    secret: str  # shown to its owner once, never stored


async def create_api_key(session: AsyncSession, *, actor: Caller | None, data: ApiKeyCreate) -> NewApiKey:
    """A new key of the caller's (signed in with a password). The ``admin`` and ``graphql:arbitrary``
    scopes need an admin."""
    user = require_password_session(actor).user
    if ADMIN_SCOPES.intersection(data.scopes) and not user.is_admin:
        raise InvalidInput(
            {"scopes": [f"The {' and '.join(sorted(ADMIN_SCOPES))} scopes are for administrators."]}
        )
    count = await session.scalar(select(func.count()).where(ApiKey.user_id == user.id))
    if (count or 0) >= MAX_KEYS_PER_USER:
        raise Conflict(f"An account may hold at most {MAX_KEYS_PER_USER} API keys; revoke one first.")
    secret = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        user_id=user.id,
        name=data.name,
        prefix=secret[: len(PREFIX) + 4],
        key_hash=secret_digest(secret),
        scopes=sorted(set(data.scopes)),
    )
    session.add(key)
    await session.flush()
    return NewApiKey(key=key, secret=secret)


async def list_api_keys(session: AsyncSession, *, actor: Caller | None) -> Sequence[ApiKey]:
    """The caller's keys, oldest first."""
    user = require_password_session(actor).user
    return (await session.scalars(select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.id))).all()


async def get_api_key(session: AsyncSession, *, actor: Caller | None, key_id: uuid.UUID) -> ApiKey:
    """One of the caller's keys; anybody else's is ``NotFound``, exactly like a key that is not."""
    user = require_password_session(actor).user
    key = await session.get(ApiKey, key_id)
    if key is None or key.user_id != user.id:
        raise NotFound("No such API key.")
    return key


async def revoke_api_key(session: AsyncSession, *, actor: Caller | None, key_id: uuid.UUID) -> None:
    await session.delete(await get_api_key(session, actor=actor, key_id=key_id))
    await session.flush()


async def caller_for_api_key(session: AsyncSession, *, secret: str) -> Caller:
    """Whom a key speaks for, with its scopes; an unknown or revoked key, or one whose account is
    gone or deactivated, is ``Unauthenticated``."""
    key = await session.scalar(select(ApiKey).where(ApiKey.key_hash == secret_digest(secret)))
    user = await users.get_active(session, user_id=key.user_id) if key is not None else None
    if key is None or user is None:
        raise Unauthenticated("Invalid API key.")
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        key.last_used_at = now
        await session.flush()
    return Caller(user=user, scopes=frozenset(key.scopes), api_key_id=key.id)


async def existing(session: AsyncSession, *, key_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """The keys among ``key_ids`` still there (revoking one deletes it), in one query."""
    return set(await session.scalars(select(ApiKey.id).where(ApiKey.id.in_(key_ids))))
