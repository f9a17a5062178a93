"""Sign-in sessions: credentials in, an access token and a rotating refresh token out."""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.models import RefreshToken, User
from api.db.types import utcnow, uuid7
from api.errors import RefreshTokenReused, Unauthenticated
from api.security import AccessToken, InvalidToken, create_access_token, decode_access_token
from api.services import users
from api.services.commands import UserCreate
from api.settings import Settings

INVALID_REFRESH = "Invalid or expired refresh token."


@dataclass(frozen=True, slots=True)
class Session:
    """What a successful sign-in or refresh hands back."""

    user: User
    access: AccessToken
    refresh_token: str


async def login(session: AsyncSession, settings: Settings, email: str, password: str) -> Session:
    """Raises ``InvalidCredentials`` alike for an unknown email, a wrong password or a closed account."""
    user = await users.authenticate(session, email, password)
    return await _start(session, settings, user)


async def register(session: AsyncSession, settings: Settings, data: UserCreate) -> Session:
    """Create an account and sign it in."""
    user = await users.create_user(session, data)
    return await _start(session, settings, user)


async def refresh(session: AsyncSession, settings: Settings, refresh_token: str) -> Session:
    """Exchange a refresh token for a new pair; the old one is spent. A spent token presented again
    revokes its whole family (``RefreshTokenReused``, whose revocation is committed)."""
    now = utcnow()
    token = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == _digest(refresh_token)).with_for_update()
    )
    if token is None or token.expires_at <= now:
        raise Unauthenticated(INVALID_REFRESH)
    if token.revoked_at is not None:
        if token.replaced_by is not None:
            await _revoke_family(session, token.family_id)
            raise RefreshTokenReused(INVALID_REFRESH)
        raise Unauthenticated(INVALID_REFRESH)
    user = await users.get_active(session, token.user_id)
    if user is None:
        raise Unauthenticated(INVALID_REFRESH)
    return await _start(session, settings, user, replacing=token)


async def logout(session: AsyncSession, refresh_token: str) -> None:
    """End the session the token belongs to. An unknown token is not an error: the outcome the
    caller wants (that token no longer works) holds either way."""
    family = await session.scalar(
        select(RefreshToken.family_id).where(RefreshToken.token_hash == _digest(refresh_token))
    )
    if family is not None:
        await _revoke_family(session, family)


async def user_for_token(session: AsyncSession, settings: Settings, token: str) -> User:
    """The account an access token speaks for. A token that does not check out, or whose account is
    gone or deactivated, is ``Unauthenticated``: bad credentials are refused, never taken as none."""
    try:
        user_id = decode_access_token(settings, token)
    except InvalidToken:
        raise Unauthenticated("Invalid or expired access token.") from None
    user = await users.get_active(session, user_id)
    if user is None:
        raise Unauthenticated("Invalid or expired access token.")
    return user


def _digest(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()


async def _start(
    session: AsyncSession, settings: Settings, user: User, *, replacing: RefreshToken | None = None
) -> Session:
    """A new token pair: a new session, or the next link of ``replacing``'s (which is then spent)."""
    raw = secrets.token_urlsafe(32)
    token = RefreshToken(
        token_hash=_digest(raw),
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
    return Session(user=user, access=create_access_token(settings, user.id), refresh_token=raw)


async def _revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
