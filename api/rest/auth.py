"""``/api/v1/auth``: the OAuth2 token endpoint (RFC 6749: password and refresh_token grants), and
refresh and logout as plain JSON routes.

The token endpoint's errors follow RFC 6749 §5.2 (``{"error": "invalid_grant", ...}``) rather than
problem+json, because that is what OAuth2 clients, Swagger's Authorize dialog among them, understand.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Form, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ClientAddressDep, LimiterDep, SessionDep, SettingsDep
from api.errors import ScopeNotGranted, Unauthenticated
from api.problems import refusals
from api.rest.routing import Route
from api.services import auth
from api.services.callers import SCOPES
from api.services.sessions import Session

router = APIRouter(prefix="/auth", tags=["auth"], route_class=Route)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl",
                    "refresh_token": "r1_3mQ8cW0t5nB2yK7pL4sD9fH6jG1aZxVe",
                    "token_type": "bearer",
                    "expires_in": 900,
                    "scope": "fetch users:read users:write",
                }
            ]
        }
    )

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    scope: str = Field(description="What the token may do (RFC 6749 §3.3), space-separated.")

    @classmethod
    def of(cls, signed_in: Session) -> "TokenOut":
        return cls(
            access_token=signed_in.access.token,
            refresh_token=signed_in.refresh_token,
            expires_in=signed_in.access.expires_in,
            scope=signed_in.scope,
        )


class OAuthError(BaseModel):
    error: str
    error_description: str


class RefreshIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"refresh_token": "r1_3mQ8cW0t5nB2yK7pL4sD9fH6jG1aZxVe"}]}
    )

    refresh_token: str


def _oauth_error(error: str, description: str) -> JSONResponse:
    body = OAuthError(error=error, error_description=description).model_dump()
    return JSONResponse(body, status_code=400, headers=NO_STORE)


def _token_response(signed_in: Session) -> JSONResponse:
    return JSONResponse(TokenOut.of(signed_in).model_dump(), headers=NO_STORE)


@router.post(
    "/token",
    response_model=TokenOut,
    responses={400: {"model": OAuthError, "description": "RFC 6749 §5.2 error"}},
)
async def token(
    session: SessionDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    client: ClientAddressDep,
    grant_type: Annotated[str | None, Form()] = None,
    username: Annotated[str | None, Form(description="The account's email.")] = None,
    password: Annotated[str | None, Form(json_schema_extra={"format": "password"})] = None,
    refresh_token: Annotated[str | None, Form(description="For grant_type=refresh_token.")] = None,
    scope: Annotated[
        str | None, Form(description="Space-separated; a sign-in gets all its account may do.")
    ] = None,
) -> JSONResponse:
    """Exchange an email and password (or a refresh token) for a token pair (OAuth2)."""
    requested = set((scope or "").split())
    if requested - SCOPES:
        return _oauth_error("invalid_scope", f"Unknown scope: {' '.join(sorted(requested - SCOPES))}.")
    if grant_type == "refresh_token":
        if not refresh_token:
            return _oauth_error("invalid_request", "refresh_token is required.")
        try:
            return _token_response(
                await auth.refresh(session, settings=settings, refresh_token=refresh_token)
            )
        except Unauthenticated as exc:  # answered normally, so a reuse's revocation is committed
            return _oauth_error("invalid_grant", exc.message)
    if grant_type not in (None, "password"):
        return _oauth_error("unsupported_grant_type", "Use the password or refresh_token grant.")
    if not username or not password:
        return _oauth_error("invalid_request", "username and password are required.")
    try:
        attempt = auth.Attempt(limiter, client)
        signed_in = await auth.login(
            session, settings=settings, attempt=attempt, email=username, password=password, scopes=requested
        )
    except Unauthenticated as exc:
        return _oauth_error("invalid_grant", exc.message)
    except ScopeNotGranted as exc:
        return _oauth_error("invalid_scope", exc.message)
    return _token_response(signed_in)


@router.post("/refresh", response_model=TokenOut, responses=refusals(401))
async def refresh(body: RefreshIn, session: SessionDep, settings: SettingsDep) -> JSONResponse:
    """A new token pair for a refresh token, which is spent; reusing a spent one ends its session."""
    return _token_response(await auth.refresh(session, settings=settings, refresh_token=body.refresh_token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: RefreshIn, session: SessionDep) -> None:
    """End the session of a refresh token (also when the token is unknown)."""
    await auth.logout(session, refresh_token=body.refresh_token)
