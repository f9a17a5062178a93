"""Each GraphQL operation gets its own session and its own DataLoaders."""

import asyncio

import httpx2
from sqlalchemy import text

from api.db.engine import Database
from api.ids import NodeType, to_global_id
from api.settings import Settings
from tests.factories import bearer, graphql, make_user
from tests.sql import statements


async def test_node_lookups_of_one_operation_share_one_batched_query(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    admin = await make_user(database, admin=True)
    others = [await make_user(database) for _ in range(3)]
    ids = [to_global_id(NodeType.USER, u.id) for u in others]
    one = "query($a: ID!) { a: node(id: $a) { id } }"
    three = "query($a: ID!, $b: ID!, $c: ID!) { a: node(id: $a) { id } b: node(id: $b) { id } c: node(id: $c) { id } }"
    with statements(database.engine) as single:
        await graphql(client, one, {"a": ids[0]}, headers=bearer(settings, admin))
    with statements(database.engine) as batched:
        body = await graphql(
            client, three, dict(zip("abc", ids, strict=True)), headers=bearer(settings, admin)
        )
    assert [body["data"][k]["id"] for k in "abc"] == ids
    assert len(single) == 2  # the caller's account, then one IN (...) for the node
    assert len(batched) == 1  # the account known now (api.services.signins): one IN (...) for three


async def test_loaders_do_not_outlive_their_operation(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    """A second operation reads afresh: it sees a change made in between."""
    admin = await make_user(database, admin=True)
    user = await make_user(database, display_name="Before")
    query = "query($id: ID!) { node(id: $id) { ... on User { displayName } } }"
    variables = {"id": to_global_id(NodeType.USER, user.id)}
    first = await graphql(client, query, variables, headers=bearer(settings, admin))
    await client.patch(
        f"/api/v1/users/{user.id}", json={"display_name": "After"}, headers=bearer(settings, admin)
    )
    second = await graphql(client, query, variables, headers=bearer(settings, admin))
    assert first["data"]["node"]["displayName"] == "Before"
    assert second["data"]["node"]["displayName"] == "After"


async def test_statements_per_request_do_not_grow_with_page_size(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    admin = await make_user(database, admin=True)
    for _ in range(20):
        await make_user(database)
    query = "query($n: Int) { users(first: $n) { edges { node { id email } } } }"
    await graphql(client, "{ me { id } }", headers=bearer(settings, admin))  # the caller known from now
    counts = []
    for size in (2, 20):
        with statements(database.engine) as sent:
            body = await graphql(client, query, {"n": size}, headers=bearer(settings, admin))
        assert len(body["data"]["users"]["edges"]) == size
        counts.append(len(sent))
    assert counts == [1, 1]  # the page alone


async def test_a_query_over_post_reads_beside_a_writer_and_a_mutation_takes_its_turn(
    live_client: httpx2.AsyncClient, live_database: Database, live_settings: Settings
) -> None:
    """A query gets a session that only reads (on SQLite it never waits for the write lock); a
    mutation's session may write, so on SQLite it waits for the writer before it."""
    user = await make_user(live_database)
    headers = bearer(live_settings, user)
    mutation = {"query": 'mutation { updateMe(input: {displayName: "Later"}) { displayName } }'}
    async with live_database.session() as writer:
        await writer.execute(text("DELETE FROM rate_limit_windows"))  # holds the write turn on SQLite
        query = live_client.post("/graphql", json={"query": "{ me { id } }"}, headers=headers)
        answered = await asyncio.wait_for(query, 2)
        assert answered.json()["data"]["me"]["id"] == to_global_id(NodeType.USER, user.id)
        updating = asyncio.create_task(live_client.post("/graphql", json=mutation, headers=headers))
        await asyncio.sleep(0.2)  # a window in which the mutation must not get through on SQLite
        if live_database.engine.dialect.name == "sqlite":
            assert not updating.done()
    assert (await asyncio.wait_for(updating, 5)).json()["data"]["updateMe"]["displayName"] == "Later"
