"""The leaf-field shortcut gives exactly what graphql-core's own execution gives."""

import httpx2
import pytest

from api.db.engine import Database
from api.graphql import execution
from api.graphql.schema import build_schema
from api.settings import Settings
from tests.factories import bearer, make_user

QUERY = """{ users(first: 10) { edges { cursor node { __typename id email displayName isActive isAdmin createdAt } }
             nodes { id displayName } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""


def test_only_plain_leaf_fields_take_the_shortcut(settings: Settings) -> None:
    leaves = execution.plain_leaves(build_schema(settings)._schema)
    assert {
        ("User", "email"),
        ("User", "createdAt"),
        ("User", "displayName"),
        ("PageInfo", "endCursor"),
    } <= set(leaves)
    assert ("Query", "users") not in leaves  # has a resolver
    assert ("UserConnection", "edges") not in leaves  # not a leaf
    assert leaves["User", "displayName"][2] is True  # nullable
    assert leaves["User", "email"][2] is False


async def test_answers_match_the_normal_execution(
    client: httpx2.AsyncClient, database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await make_user(database, admin=True, display_name="Admin")
    await make_user(database)  # no display name: a null leaf
    headers = bearer(settings, admin)
    fast = (await client.post("/graphql", json={"query": QUERY}, headers=headers)).json()
    monkeypatch.setattr(execution, "plain_leaves", lambda schema: {})
    normal = (await client.post("/graphql", json={"query": QUERY}, headers=headers)).json()
    assert "errors" not in fast
    assert fast == normal
