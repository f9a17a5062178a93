"""Test data, built through the services (never raw SQL), and the ways tests call the API."""

import itertools
from typing import Any

import httpx2

from api.db.engine import Database
from api.db.models import User
from api.security import create_access_token
from api.services import users
from api.services.commands import UserCreate
from api.settings import Settings

PASSWORD = "correct horse battery"
_numbers = itertools.count(1)


async def make_user(
    database: Database,
    *,
    email: str | None = None,
    display_name: str | None = None,
    admin: bool = False,
    password: str = PASSWORD,
) -> User:
    data = UserCreate(
        email=email or f"user{next(_numbers)}@example.com", password=password, display_name=display_name
    )
    async with database.session() as session:
        return await users.create_user(session, data=data, is_admin=admin)


def bearer(settings: Settings, user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_access_token(settings, user.id).token}"}


async def graphql(
    client: httpx2.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST a GraphQL document; answers the response body (GraphQL errors come back in it, with 200)."""
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]
