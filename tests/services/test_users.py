"""Who may do what with accounts, as the REST status codes and GraphQL ``node`` show it.
(``tests/parity/test_users.py`` checks every operation's error code on both transports.)"""

import httpx2

from api.db.engine import Database
from api.ids import NodeType, to_global_id
from api.settings import Settings
from tests.factories import bearer, graphql, make_user


async def test_rest_statuses_for_each_kind_of_refusal(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    alice = await make_user(database)
    bob = await make_user(database)
    as_alice = bearer(settings, alice)
    assert (await client.get(f"/api/v1/users/{bob.id}")).status_code == 401
    assert (await client.get(f"/api/v1/users/{bob.id}", headers=as_alice)).status_code == 404
    assert (await client.patch(f"/api/v1/users/{bob.id}", json={}, headers=as_alice)).status_code == 403
    assert (
        await client.put(
            f"/api/v1/users/{bob.id}",
            json={"display_name": None, "is_active": True, "is_admin": True},
            headers=as_alice,
        )
    ).status_code == 403
    assert (await client.delete(f"/api/v1/users/{bob.id}", headers=as_alice)).status_code == 403
    assert (await client.get("/api/v1/users", headers=as_alice)).status_code == 403
    # Nothing changed.
    as_bob = bearer(settings, bob)
    assert (await client.get("/api/v1/users/me", headers=as_bob)).json()["is_admin"] is False


async def test_an_admin_may_read_change_and_delete_anyone(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    admin = bearer(settings, await make_user(database, admin=True))
    bob = await make_user(database)
    assert (await client.get(f"/api/v1/users/{bob.id}", headers=admin)).status_code == 200
    assert (
        await client.patch(f"/api/v1/users/{bob.id}", json={"display_name": "B"}, headers=admin)
    ).status_code == 200
    assert (await client.delete(f"/api/v1/users/{bob.id}", headers=admin)).status_code == 204
    assert (await client.get(f"/api/v1/users/{bob.id}", headers=admin)).status_code == 404


async def test_node_hides_other_users_from_non_admins(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    alice = await make_user(database)
    bob = await make_user(database)
    query = "query($id: ID!) { node(id: $id) { id } }"
    hidden = await graphql(
        client, query, {"id": to_global_id(NodeType.USER, bob.id)}, headers=bearer(settings, alice)
    )
    assert hidden == {"data": {"node": None}}
    anonymous = await graphql(client, query, {"id": to_global_id(NodeType.USER, bob.id)})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
