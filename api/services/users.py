"""Accounts: registration, lookup, listing, updates and deletion, with who may do what."""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import ColumnElement, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from api.db.engine import outside_transaction
from api.db.models import User
from api.db.types import moment_of, utcnow
from api.errors import (
    Conflict,
    Forbidden,
    InvalidCredentials,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Unauthenticated,
)
from api.security import hash_password, verify_password
from api.services import events, sessions
from api.services.callers import (
    Caller,
    Visibility,
    VisibilityTerms,
    acts_as_admin,
    require,
    require_admin,
)
from api.services.commands import UserAdminUpdate, UserCreate, UserReplace, UserSelfUpdate
from api.services.events import UserEventKind
from api.services.pagination import Page, PageRequest, decode_cursor, page_of

EMAIL_TAKEN = "An account with this email already exists."
MAX_SEARCH_LENGTH = 320


async def get_by_email(session: AsyncSession, *, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email.lower()))


async def get_active(session: AsyncSession, *, user_id: uuid.UUID) -> User | None:
    """The user a credential speaks for, if the account still exists and is active."""
    user = await session.get(User, user_id)
    return user if user is not None and user.is_active else None


async def password_hash_of(session: AsyncSession, *, user_id: uuid.UUID) -> str | None:
    """The account's stored hash as the database has it now (not as a loaded row remembers it)."""
    return await session.scalar(select(User.password_hash).where(User.id == user_id))


async def active_among(session: AsyncSession, *, user_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, User]:
    """The active accounts among ``user_ids``, in one query (a live event's thousand subscribers)."""
    found = await session.scalars(select(User).where(User.id.in_(user_ids), User.is_active))
    return {user.id: user for user in found}


async def create_user(session: AsyncSession, *, data: UserCreate, is_admin: bool = False) -> User:
    """Register an account. Raises ``Conflict`` when the email is taken.

    The password is hashed first, while the session holds no connection (and on SQLite no write
    turn): a hash is the slow part, and a transaction open around it would keep every other writer
    waiting. A taken email is then found by the unique index, in one short write transaction.
    """
    async with outside_transaction(session):
        password_hash = await hash_password(data.password)
    user = User(
        email=data.email,
        display_name=data.display_name,
        password_hash=password_hash,
        is_admin=is_admin,
    )
    session.add(user)
    await _flush_unique(session)
    await events.user_changed(session, kind=UserEventKind.CREATED, user=user)
    return user


async def authenticate(session: AsyncSession, *, email: str, password: str) -> User:
    """The account these credentials open. Unknown email, wrong password and a deactivated account
    give the same error after the same work (one hash verification). The account is read, that
    transaction ends, and the password is verified with no connection held."""
    user = await get_by_email(session, email=email)
    async with outside_transaction(session):
        valid = await verify_password(password, user.password_hash if user else None)
    if user is None or not valid or not user.is_active:
        raise InvalidCredentials()
    return user


def me(*, actor: Caller | None) -> User:
    """The calling account."""
    return require(actor, "users:read").user


def user_visibility(actor: Caller | None) -> Visibility:
    """Which accounts ``actor`` sees: every one (an administrator) or their own, with ``users:read``."""
    caller = require(actor, "users:read")
    return Visibility(viewer_id=caller.user.id, sees_all=acts_as_admin(caller))


def listing_visibility(actor: Caller | None) -> Visibility:
    """Listing accounts (``list_users``) is for administrators only."""
    caller = require_admin(actor, "users:read")
    return Visibility(viewer_id=caller.user.id, sees_all=True)


def visible_user(user: Any, terms: VisibilityTerms) -> ColumnElement[bool]:
    """The one rule of who sees an account, as SQL over ``user`` (the model, an alias or a
    subquery's columns): an administrator sees every account, anybody else their own."""
    sees_all, viewer_id = terms
    return or_(sees_all, user.id == viewer_id)


def search_pattern(search: str | None) -> str | None:
    """The ``LIKE`` pattern (escaped with ``/``) of a listing's search term; ``None`` for no search."""
    if search is not None and len(search) > MAX_SEARCH_LENGTH:
        raise InvalidInput({"search": [f"At most {MAX_SEARCH_LENGTH} characters."]})
    if not search:
        return None
    escaped = search.lower().replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def matches_search(user: Any, pattern: ColumnElement[str]) -> ColumnElement[bool]:
    """Whether ``user``'s email or display name holds the search term of ``pattern``
    (``search_pattern``), case-insensitively."""
    return or_(user.email.like(pattern, escape="/"), func.lower(user.display_name).like(pattern, escape="/"))


async def get_users(
    session: AsyncSession, *, actor: Caller | None, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, User]:
    """The users among ``user_ids`` that ``actor`` may see (``visible_user``), in one query. Others
    are left out whether they exist or not, so nothing is revealed."""
    terms = user_visibility(actor).constants()
    rows = await session.scalars(select(User).where(User.id.in_(set(user_ids)), visible_user(User, terms)))
    return {row.id: row for row in rows}


async def get_user(session: AsyncSession, *, actor: Caller | None, user_id: uuid.UUID) -> User:
    """A user as ``actor`` may see it (``get_users``' rule); any other is ``NotFound``."""
    user = (await get_users(session, actor=actor, user_ids=[user_id])).get(user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


async def list_users(
    session: AsyncSession, *, actor: Caller | None, page: PageRequest, search: str | None = None
) -> Page[User]:
    """All accounts in creation order (admin only), optionally those whose email or name contains
    ``search`` (case-insensitive)."""
    listing_visibility(actor)
    pattern = search_pattern(search)
    query = select(User).order_by(User.id).limit(page.first + 1)
    if page.after is not None:
        query = query.where(User.id > decode_cursor(page.after))
    if pattern is not None:
        query = query.where(matches_search(User, literal(pattern)))
    return page_of((await session.scalars(query)).all(), page.first)


async def own_row(session: AsyncSession, caller: Caller) -> User:
    """The caller's account row in ``session``, to change: ``caller.user`` is what the sign-in
    cache shares among requests (``api.services.signins``), never written through."""
    user = await session.get(User, caller.user.id)
    if user is None:
        raise Unauthenticated()
    return user


async def as_it_stands(session: AsyncSession, caller: Caller) -> Caller | None:
    """The caller with its account as ``session`` reads it now (an earlier operation of the same
    request may have changed it); ``None`` once the account is gone or closed."""
    user = await session.get(User, caller.user.id)
    return None if user is None or not user.is_active else replace(caller, user=user)


async def update_me(
    session: AsyncSession,
    *,
    actor: Caller | None,
    data: UserSelfUpdate,
    versions: Collection[str] | None = None,
) -> User:
    """Change one's own email or display name. Raises ``Conflict`` when the new email is taken, and
    ``PreconditionFailed`` when ``versions`` is given and the row is at none of them (``_claim``)."""
    user = await own_row(session, require(actor, "users:write"))
    await _claim(session, user, versions)
    return await _apply(session, user, data.changes())


async def update_user(
    session: AsyncSession,
    *,
    actor: Caller | None,
    user_id: uuid.UUID,
    data: UserAdminUpdate | UserReplace,
    versions: Collection[str] | None = None,
) -> User:
    """An admin's change to any account: a partial update, or a full replacement with ``UserReplace``;
    only if the row is at one of ``versions``, when given."""
    require_admin(actor, "users:write")
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    await _claim(session, user, versions)
    changes = data.changes() if isinstance(data, UserAdminUpdate) else data.model_dump()
    if changes.get("is_admin") is False or changes.get("is_active") is False:
        await _keep_an_admin(session, user)
    if changes.get("is_active") is False:
        await sessions.revoke_all(session, user_id=user.id)
    return await _apply(session, user, changes)


async def delete_user(
    session: AsyncSession,
    *,
    actor: Caller | None,
    user_id: uuid.UUID,
    versions: Collection[str] | None = None,
) -> None:
    """Delete an account: one's own, or anyone's for an admin; only if the row is at one of
    ``versions``, when given."""
    caller = require(actor, "users:write")
    viewer = caller.user
    if user_id != viewer.id:
        try:
            require_admin(caller)
        except Forbidden:
            raise Forbidden("You may only delete your own account.") from None
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    await _claim(session, user, versions)
    await _keep_an_admin(session, user)
    await session.delete(user)
    await session.flush()
    await events.user_changed(session, kind=UserEventKind.DELETED, user=user)


async def promote(session: AsyncSession, *, email: str) -> User:
    """Make the account of ``email`` an administrator, and active (the operator's command, from the
    CLI: there is no caller). ``NotFound`` when there is no such account."""
    user = await get_by_email(session, email=email)
    if user is None:
        raise NotFound("No account has this email.")
    return await _apply(session, user, {"is_admin": True, "is_active": True})


async def _claim(session: AsyncSession, user: User, versions: Collection[str] | None) -> None:
    """For a conditional write: take the row only if it is still at one of ``versions`` (what the
    client read), else ``PreconditionFailed``. One conditional ``UPDATE`` both checks and claims it:
    it holds the row (PostgreSQL's row lock, SQLite's write lock) until the transaction ends, so a
    concurrent write with the same versions waits, then finds the row moved on and is refused."""
    if versions is None:
        return
    moments = [moment for moment in map(moment_of, versions) if moment is not None]
    now = utcnow()
    claimed = await session.execute(
        update(User)
        .where(User.id == user.id, User.updated_at.in_(moments))
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if not moments or claimed.rowcount == 0:  # type: ignore[attr-defined]
        raise PreconditionFailed("The account changed since you read it: read it again, then retry.")
    set_committed_value(user, "updated_at", now)


async def _keep_an_admin(session: AsyncSession, user: User) -> None:
    """Refuse a change that would leave no active administrator (only the CLI could recover)."""
    if not (user.is_admin and user.is_active):
        return
    others = select(func.count()).where(User.is_admin, User.is_active, User.id != user.id)
    if not await session.scalar(others):
        raise Conflict("This is the last active administrator; make another one first.")


async def _apply(session: AsyncSession, user: User, changes: dict[str, Any]) -> User:
    for name, value in changes.items():
        setattr(user, name, value)
    await _flush_unique(session)
    await events.user_changed(session, kind=UserEventKind.UPDATED, user=user)
    return user


async def _flush_unique(session: AsyncSession) -> None:
    """Flush, turning a unique-index violation (an email taken, perhaps by a concurrent request)
    into ``Conflict``."""
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(EMAIL_TAKEN) from None
