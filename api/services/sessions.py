"""Sign-in sessions as stored: chains ("families") of single-use refresh tokens.

Only a token's digest is kept (``security.secret_digest``). Used by the auth service (sign-in,
refresh, password change) and the users service (an account closed loses its sessions).
"""

import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.models import RefreshToken, User
from api.db.types import utcnow, uuid7
from api.security import AccessToken, create_access_token, secret_digest
from api.services import events
from api.services.callers import granted_scopes
from api.settings import Settings


@dataclass(frozen=True, slots=True)
class Session:
    """What a successful sign-in or refresh hands back."""

    user: User
    access: AccessToken
    refresh_token: str
    scope: str  # what the session may do (RFC 6749 §3.3), as its access token's ``scope`` claim says


async def find(session: AsyncSession, *, refresh_token: str, for_update: bool = False) -> RefreshToken | None:
    query = select(RefreshToken).where(RefreshToken.token_hash == secret_digest(refresh_token))
    return await session.scalar(query.with_for_update() if for_update else query)


async def start(
    session: AsyncSession, *, settings: Settings, user: User, replacing: RefreshToken | None = None
) -> Session:
    """A new token pair: a new session, or the next link of ``replacing``'s (which is then spent)."""
    raw = secrets.token_urlsafe(32)
    token = RefreshToken(
        token_hash=secret_digest(raw),
        user_id=user.id,
        family_id=replacing.family_id if replacing else uuid7(),
        expires_at=utcnow() + timedelta(seconds=settings.refresh_token_ttl),
    )
    session.add(token)
    await session.flush()
    if replacing is not None:
        replacing.revoked_at = utcnow()
        replacing.replaced_by = token.id
        await session.flush()
    scope = " ".join(sorted(granted_scopes(user)))
    access = create_access_token(settings, user.id, session_id=token.family_id, scope=scope)
    return Session(user=user, access=access, refresh_token=raw, scope=scope)


async def revoke_family(session: AsyncSession, *, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    await events.sign_ins_changed(session, family_ids=[family_id])


async def revoke_all(session: AsyncSession, *, user_id: uuid.UUID, keep: uuid.UUID | None = None) -> None:
    """End every session of a user, but ``keep`` (the family of the caller's own session)."""
    query = update(RefreshToken).where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
    if keep is not None:
        query = query.where(RefreshToken.family_id != keep)
    await session.execute(query.values(revoked_at=utcnow()))
    await events.sign_ins_changed(session, user_id=user_id)


async def live_among(session: AsyncSession, *, family_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """The sign-in sessions among ``family_ids`` that go on, in one query: those with a token neither
    spent nor revoked (logout, a password change or a detected reuse revoke them all)."""
    live = select(RefreshToken.family_id).where(
        RefreshToken.family_id.in_(family_ids),
        RefreshToken.revoked_at.is_(None),
        RefreshToken.expires_at > utcnow(),
    )
    return set(await session.scalars(live.distinct()))
