"""Sign-in: turning credentials into tokens."""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from api.db.models import User
from api.errors import Unauthenticated
from api.security import AccessToken, InvalidToken, create_access_token, decode_access_token
from api.services import users
from api.services.commands import UserCreate
from api.settings import Settings


@dataclass(frozen=True, slots=True)
class Session:
    """What a successful sign-in hands back."""

    user: User
    access: AccessToken


async def login(session: AsyncSession, settings: Settings, email: str, password: str) -> Session:
    """Raises ``InvalidCredentials`` alike for an unknown email, a wrong password or a closed account."""
    user = await users.authenticate(session, email, password)
    return Session(user=user, access=create_access_token(settings, user.id))


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


async def register(session: AsyncSession, settings: Settings, data: UserCreate) -> Session:
    """Create an account and sign it in."""
    user = await users.create_user(session, data)
    return Session(user=user, access=create_access_token(settings, user.id))
