"""``/api/v1/auth``: the OAuth2 token endpoint (RFC 6749 password grant).

Its errors follow RFC 6749 §5.2 (``{"error": "invalid_grant", ...}``) rather than problem+json,
because that is what OAuth2 clients, Swagger's Authorize dialog among them, understand.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Form
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import SessionDep, SettingsDep
from api.errors import InvalidCredentials
from api.services import auth

router = APIRouter(prefix="/auth", tags=["auth"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class OAuthError(BaseModel):
    error: str
    error_description: str


def _oauth_error(error: str, description: str) -> JSONResponse:
    body = OAuthError(error=error, error_description=description).model_dump()
    return JSONResponse(body, status_code=400, headers=NO_STORE)


@router.post(
    "/token",
    response_model=TokenOut,
    responses={400: {"model": OAuthError, "description": "RFC 6749 §5.2 error"}},
)
async def token(
    session: SessionDep,
    settings: SettingsDep,
    grant_type: Annotated[str | None, Form()] = None,
    username: Annotated[str | None, Form(description="The account's email.")] = None,
    password: Annotated[str | None, Form(json_schema_extra={"format": "password"})] = None,
) -> JSONResponse:
    """Exchange an email and password for an access token (OAuth2 password grant)."""
    if grant_type not in (None, "password"):
        return _oauth_error("unsupported_grant_type", "Only the password grant is supported.")
    if not username or not password:
        return _oauth_error("invalid_request", "username and password are required.")
    try:
        signed_in = await auth.login(session, settings, username, password)
    except InvalidCredentials as exc:
        return _oauth_error("invalid_grant", exc.message)
    body = TokenOut(access_token=signed_in.access.token, expires_in=signed_in.access.expires_in)
    return JSONResponse(body.model_dump(), headers=NO_STORE)
