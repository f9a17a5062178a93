"""The users routes of the REST layer."""

import uuid

import httpx2

from api.db.engine import Database
from api.ids import NodeType, to_global_id
from api.settings import Settings
from tests.factories import PASSWORD, bearer, make_user


class TestRegister:
    async def test_answers_201_with_location(self, client: httpx2.AsyncClient) -> None:
        response = await client.post(
            "/api/v1/users", json={"email": "Ada@Example.com", "password": PASSWORD, "display_name": "Ada"}
        )
        assert response.status_code == 201
        body = response.json()
        assert body["email"] == "ada@example.com"
        assert body["node_id"] == to_global_id(NodeType.USER, uuid.UUID(body["id"]))
        assert response.headers["location"] == f"http://testserver/api/v1/users/{body['id']}"

    async def test_invalid_body_is_a_problem_document_with_fields(self, client: httpx2.AsyncClient) -> None:
        response = await client.post("/api/v1/users", json={"email": "nope", "password": "short", "extra": 1})
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "BAD_USER_INPUT"
        assert problem["status"] == 422
        assert set(problem["errors"]) == {"email", "password", "extra"}


class TestToken:
    async def test_password_grant_gives_a_bearer_token(
        self, client: httpx2.AsyncClient, database: Database
    ) -> None:
        await make_user(database, email="bob@example.com")
        response = await client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": "bob@example.com", "password": PASSWORD},
        )
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        token = response.json()
        assert token["token_type"] == "bearer"
        assert token["scope"] == "fetch users:read users:write"
        me = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {token['access_token']}"}
        )
        assert me.json()["email"] == "bob@example.com"

    async def test_errors_follow_rfc_6749(self, client: httpx2.AsyncClient, database: Database) -> None:
        await make_user(database, email="bob@example.com")
        cases = {
            "invalid_scope": {
                "username": "bob@example.com",
                "password": PASSWORD,
                "scope": "users:read teleport",
            },
            "invalid_grant": {"username": "bob@example.com", "password": "wrong password"},
            "invalid_request": {"username": "bob@example.com"},
            "unsupported_grant_type": {"grant_type": "client_credentials", "username": "x", "password": "y"},
        }
        for error, form in cases.items():
            response = await client.post("/api/v1/auth/token", data=form)
            assert response.status_code == 400, error
            assert response.json()["error"] == error
            assert response.headers["cache-control"] == "no-store"

    async def test_only_an_admin_may_ask_for_the_admin_scope(
        self, client: httpx2.AsyncClient, database: Database
    ) -> None:
        await make_user(database, email="bob@example.com")
        await make_user(database, email="root@example.com", admin=True)
        refused = await client.post(
            "/api/v1/auth/token", data={"username": "bob@example.com", "password": PASSWORD, "scope": "admin"}
        )
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_scope")
        granted = await client.post(
            "/api/v1/auth/token",
            data={"username": "root@example.com", "password": PASSWORD, "scope": "admin"},
        )
        assert granted.json()["scope"] == "admin fetch graphql:arbitrary users:read users:write"


class TestList:
    async def test_pages_with_next_cursor_and_link_header(
        self, client: httpx2.AsyncClient, database: Database, settings: Settings
    ) -> None:
        admin = await make_user(database, admin=True)
        others = [await make_user(database) for _ in range(2)]
        first = await client.get("/api/v1/users", params={"limit": 2}, headers=bearer(settings, admin))
        assert first.status_code == 200
        assert [u["email"] for u in first.json()["items"]] == [admin.email, others[0].email]
        cursor = first.json()["next_cursor"]
        assert (
            first.headers["link"] == f'<http://testserver/api/v1/users?limit=2&cursor={cursor}>; rel="next"'
        )
        second = await client.get(
            "/api/v1/users", params={"limit": 2, "cursor": cursor}, headers=bearer(settings, admin)
        )
        assert [u["email"] for u in second.json()["items"]] == [others[1].email]
        assert second.json()["next_cursor"] is None
        assert "link" not in second.headers

    async def test_limit_out_of_range_is_refused(
        self, client: httpx2.AsyncClient, database: Database, settings: Settings
    ) -> None:
        admin = await make_user(database, admin=True)
        for limit in (0, 101):
            response = await client.get(
                "/api/v1/users", params={"limit": limit}, headers=bearer(settings, admin)
            )
            assert response.status_code == 422
            assert "limit" in response.json()["errors"]


class TestUpdate:
    async def test_patch_updates_and_put_replaces(
        self, client: httpx2.AsyncClient, database: Database, settings: Settings
    ) -> None:
        admin = await make_user(database, admin=True)
        user = await make_user(database, display_name="Name")
        url = f"/api/v1/users/{user.id}"
        patched = await client.patch(url, json={"is_admin": True}, headers=bearer(settings, admin))
        assert patched.status_code == 200
        assert (patched.json()["is_admin"], patched.json()["display_name"]) == (True, "Name")
        partial_put = await client.put(url, json={"is_admin": False}, headers=bearer(settings, admin))
        assert partial_put.status_code == 422
        assert set(partial_put.json()["errors"]) == {"display_name", "is_active"}
        replaced = await client.put(
            url,
            json={"display_name": None, "is_active": True, "is_admin": False},
            headers=bearer(settings, admin),
        )
        assert (replaced.json()["is_admin"], replaced.json()["display_name"]) == (False, None)

    async def test_patch_refuses_null_for_a_required_column(
        self, client: httpx2.AsyncClient, database: Database, settings: Settings
    ) -> None:
        user = await make_user(database)
        response = await client.patch(
            "/api/v1/users/me", json={"email": None}, headers=bearer(settings, user)
        )
        assert response.status_code == 422
        assert response.json()["errors"] == {"email": ["May be left out, but not null."]}


class TestDelete:
    async def test_self_delete_then_token_stops_working(
        self, client: httpx2.AsyncClient, database: Database, settings: Settings
    ) -> None:
        user = await make_user(database)
        headers = bearer(settings, user)
        assert (await client.delete(f"/api/v1/users/{user.id}", headers=headers)).status_code == 204
        after = await client.get("/api/v1/users/me", headers=headers)
        assert after.status_code == 401
        assert after.headers["www-authenticate"] == "Bearer"


class TestMethods:
    async def test_head_answers_like_get_without_a_body(
        self, client: httpx2.AsyncClient, database: Database, settings: Settings
    ) -> None:
        user = await make_user(database)
        get = await client.get("/api/v1/users/me", headers=bearer(settings, user))
        head = await client.head("/api/v1/users/me", headers=bearer(settings, user))
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == get.headers["content-length"]

    async def test_options_lists_the_allowed_methods(
        self, client: httpx2.AsyncClient, database: Database
    ) -> None:
        user = await make_user(database)
        response = await client.options(f"/api/v1/users/{user.id}")
        assert response.status_code == 204
        assert response.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"
        response = await client.options("/api/v1/users")
        assert response.headers["allow"] == "GET, HEAD, OPTIONS, POST"

    async def test_unknown_path_and_wrong_method_are_problems(self, client: httpx2.AsyncClient) -> None:
        missing = await client.get("/api/v1/nothing-here")
        assert (missing.status_code, missing.json()["code"]) == (404, "NOT_FOUND")
        wrong = await client.post("/api/v1/users/me")
        assert (wrong.status_code, wrong.json()["code"]) == (405, "METHOD_NOT_ALLOWED")
