"""GraphQL types of sign-in."""

from typing import Self

import strawberry

from api.services.sessions import Session
from schema.nodes import User


@strawberry.type
class AuthPayload:
    access_token: str
    refresh_token: str = strawberry.field(
        description="Exchange it with `refreshToken` for a new pair; each works once."
    )
    token_type: str
    expires_in: int = strawberry.field(description="Seconds until the access token expires.")
    scope: str = strawberry.field(
        description="What the token may do, space-separated (RFC 6749 §3.3), as REST's token answer says."
    )
    user: User

    @classmethod
    def from_session(cls, session: Session) -> Self:
        return cls(
            access_token=session.access.token,
            refresh_token=session.refresh_token,
            token_type="Bearer",
            expires_in=session.access.expires_in,
            scope=session.scope,
            user=User.from_model(session.user),
        )
