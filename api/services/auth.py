"""Sign-in: credentials in, an access token and a rotating refresh token out; password changes."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession

from api.db.engine import outside_transaction
from api.db.models import User
from api.db.types import utcnow
from api.errors import InvalidInput, RefreshTokenReused, ScopeNotGranted, Unauthenticated
from api.ratelimit import Limit, Limiter, throttle
from api.security import InvalidToken, decode_access_token, hash_password, verify_password
from api.services import api_keys, sessions, users
from api.services.callers import ADMIN_SCOPES, Caller, granted_scopes, require_password_session
from api.services.commands import PasswordChange, UserCreate
from api.services.sessions import Session
from api.services.signins import SignIns
from api.settings import Settings

INVALID_REFRESH = "Invalid or expired refresh token."
INVALID_ACCESS = "Invalid or expired access token."
SESSION_ENDED = "The sign-in session has ended."


@dataclass(frozen=True, slots=True)
class Attempt:
    """Where a sign-in or sign-up comes from, and the limiter that counts them."""

    limiter: Limiter
    client: str


async def login(
    session: AsyncSession,
    *,
    settings: Settings,
    attempt: Attempt,
    email: str,
    password: str,
    scopes: Collection[str] = (),
) -> Session:
    """Raises ``InvalidCredentials`` alike for an unknown email, a wrong password or a closed account,
    and ``RateLimited`` past the attempts allowed per account and per client address (every attempt
    counts, each login of a GraphQL document on its own)."""
    window = settings.rate_limit_login_window
    await throttle(
        attempt.limiter,
        (f"login:account:{email.strip().lower()}", Limit(settings.rate_limit_login_per_account, window)),
        (f"login:address:{attempt.client}", Limit(settings.rate_limit_login_per_address, window)),
    )
    user = await users.authenticate(session, email=email, password=password)
    if set(scopes) - granted_scopes(user):
        raise ScopeNotGranted(f"The {' and '.join(sorted(ADMIN_SCOPES))} scopes are for administrators.")
    return await sessions.start(session, settings=settings, user=user)


async def sign_up(session: AsyncSession, *, settings: Settings, attempt: Attempt, data: UserCreate) -> User:
    """Create an account; ``RateLimited`` past the sign-ups allowed per client address."""
    limit = Limit(settings.rate_limit_register_per_address, settings.rate_limit_register_window)
    await throttle(attempt.limiter, (f"register:address:{attempt.client}", limit))
    return await users.create_user(session, data=data)


async def register(
    session: AsyncSession, *, settings: Settings, attempt: Attempt, data: UserCreate
) -> Session:
    """Create an account (``sign_up``) and sign it in."""
    return await sessions.start(
        session, settings=settings, user=await sign_up(session, settings=settings, attempt=attempt, data=data)
    )


async def refresh(session: AsyncSession, *, settings: Settings, refresh_token: str) -> Session:
    """Exchange a refresh token for a new pair; the old one is spent. A spent token presented again
    revokes its whole family (``RefreshTokenReused``, whose revocation is committed)."""
    token = await sessions.find(session, refresh_token=refresh_token, for_update=True)
    if token is None or token.expires_at <= utcnow():
        raise Unauthenticated(INVALID_REFRESH)
    if token.revoked_at is not None:
        if token.replaced_by is not None:
            await sessions.revoke_family(session, family_id=token.family_id)
            raise RefreshTokenReused(INVALID_REFRESH)
        raise Unauthenticated(INVALID_REFRESH)
    user = await users.get_active(session, user_id=token.user_id)
    if user is None:
        raise Unauthenticated(INVALID_REFRESH)
    return await sessions.start(session, settings=settings, user=user, replacing=token)


async def logout(session: AsyncSession, *, refresh_token: str) -> None:
    """End the session the token belongs to. An unknown token is not an error: the outcome the
    caller wants (that token no longer works) holds either way."""
    token = await sessions.find(session, refresh_token=refresh_token)
    if token is not None:
        await sessions.revoke_family(session, family_id=token.family_id)


async def change_password(session: AsyncSession, *, actor: Caller | None, data: PasswordChange) -> None:
    """Set a new password after checking the current one; every other session of the account ends
    (the caller's own goes on).

    The verification and the new hash run with no transaction open (``outside_transaction``); the
    write that follows sets the new hash only if the one verified is still the account's, so a
    password changed meanwhile by another request is not overwritten with a stale check."""
    caller = require_password_session(actor)
    user = await users.own_row(session, caller)
    verified = user.password_hash
    async with outside_transaction(session):
        valid = await verify_password(data.current_password, verified)
        new_hash = await hash_password(data.new_password) if valid else None
    if new_hash is None or await users.password_hash_of(session, user_id=user.id) != verified:
        raise InvalidInput({"current_password": ["This is not the current password."]})
    user.password_hash = new_hash
    await sessions.revoke_all(session, user_id=user.id, keep=caller.session_id)
    await session.flush()


async def identify(
    session: AsyncSession,
    *,
    settings: Settings,
    signins: SignIns,
    bearer: str | None,
    api_key: str | None,
) -> Caller | None:
    """The caller behind a request's credentials (an access token, else an API key); ``None``
    without any. Credentials that do not check out are ``Unauthenticated``."""
    if bearer is not None:
        return await caller_for_token(session, settings=settings, signins=signins, token=bearer)
    if api_key is not None:
        return await api_keys.caller_for_api_key(session, secret=api_key)
    return None


async def caller_for_token(
    session: AsyncSession, *, settings: Settings, signins: SignIns, token: str
) -> Caller:
    """Whom an access token speaks for. A token that does not check out, whose account is gone or
    deactivated, or whose sign-in session has ended (logout, password change) is ``Unauthenticated``:
    bad credentials are refused, never taken as none. What the account and the session are now comes
    from the process's sign-in cache (``signins``), which reads the database only when it does not
    know; the account is a row shared with other requests, never to be changed."""
    try:
        claims = decode_access_token(settings, token)
    except InvalidToken:
        raise Unauthenticated(INVALID_ACCESS) from None
    user = await signins.account(session, claims.user_id)
    if user is None:
        raise Unauthenticated(INVALID_ACCESS)
    if claims.session_id is not None and not await signins.session_live(session, user.id, claims.session_id):
        raise Unauthenticated(SESSION_ENDED)
    return Caller(user=user, session_id=claims.session_id, expires_at=claims.expires_at)


def known_caller(*, settings: Settings, signins: SignIns, token: str) -> Caller | None:
    """``caller_for_token`` with no database at hand: the caller when the sign-in cache knows the
    account to be active and its session to go on, else ``None`` (the cache does not know, or the
    token is refused: ``caller_for_token`` finds out, and says why)."""
    try:
        claims = decode_access_token(settings, token)
    except InvalidToken:
        return None
    user = signins.known_account(claims.user_id)
    if not isinstance(user, User):
        return None
    if claims.session_id is not None and signins.known_session(claims.session_id) is not True:
        return None
    return Caller(user=user, session_id=claims.session_id, expires_at=claims.expires_at)


async def recheck(session: AsyncSession, *, caller: Caller) -> Caller:
    """``caller`` as of now, for a stream that outlives the request that signed it in (a socket).

    ``Unauthenticated`` once the access token has run out, the account is gone or deactivated, the
    sign-in session has ended (logout, password change) or the API key was revoked; otherwise the
    caller with the account's current row (an administrator demoted meanwhile is one no more).
    """
    checked = (await recheck_many(session, callers=[caller]))[0]
    if isinstance(checked, Unauthenticated):
        raise checked
    return checked


async def recheck_many(session: AsyncSession, *, callers: Sequence[Caller]) -> list[Caller | Unauthenticated]:
    """``recheck`` for many callers at once, in three queries whatever their number (an event reaching
    a thousand subscribers): each caller as of now, or the refusal it would raise."""
    now = utcnow()
    accounts = await users.active_among(session, user_ids={c.user.id for c in callers})
    families = {c.session_id for c in callers if c.session_id is not None}
    live = await sessions.live_among(session, family_ids=families) if families else set()
    keys = {c.api_key_id for c in callers if c.api_key_id is not None}
    kept = await api_keys.existing(session, key_ids=keys) if keys else set()

    def one(caller: Caller) -> Caller | Unauthenticated:
        user = accounts.get(caller.user.id)
        if (caller.expires_at is not None and caller.expires_at <= now) or user is None:
            return Unauthenticated(INVALID_ACCESS)
        if caller.session_id is not None and caller.session_id not in live:
            return Unauthenticated(SESSION_ENDED)
        if caller.api_key_id is not None and caller.api_key_id not in kept:
            return Unauthenticated("Invalid API key.")
        return replace(caller, user=user)

    return [one(caller) for caller in callers]
