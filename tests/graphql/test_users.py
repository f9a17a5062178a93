"""The users domain over GraphQL."""

import base64

import httpx2

from api.db.engine import Database
from api.ids import NodeType, to_global_id
from api.settings import Settings
from tests.factories import PASSWORD, bearer, error_codes, graphql, make_user

USER_FIELDS = "id email displayName isActive isAdmin createdAt"


class TestRegister:
    async def test_creates_the_account_and_signs_it_in(self, client: httpx2.AsyncClient) -> None:
        body = await graphql(
            client,
            f"mutation($input: RegisterInput!) {{ register(input: $input) {{ accessToken tokenType expiresIn user {{ {USER_FIELDS} }} }} }}",
            {"input": {"email": "Ada@Example.com", "password": PASSWORD, "displayName": "Ada"}},
        )
        payload = body["data"]["register"]
        assert payload["tokenType"] == "Bearer"
        assert payload["expiresIn"] == 900
        assert payload["user"]["email"] == "ada@example.com"
        assert payload["user"]["displayName"] == "Ada"
        me = await graphql(
            client, "{ me { email } }", headers={"Authorization": f"Bearer {payload['accessToken']}"}
        )
        assert me["data"]["me"] == {"email": "ada@example.com"}

    async def test_taken_email_is_a_conflict(self, client: httpx2.AsyncClient, database: Database) -> None:
        await make_user(database, email="taken@example.com")
        body = await graphql(
            client,
            'mutation { register(input: {email: "TAKEN@example.com", password: "long enough pw"}) { accessToken } }',
        )
        assert error_codes(body) == ["CONFLICT"]
        assert body["data"] is None

    async def test_invalid_fields_are_reported_per_field(self, client: httpx2.AsyncClient) -> None:
        body = await graphql(
            client,
            'mutation { register(input: {email: "nope", password: "short", displayName: ""}) { accessToken } }',
        )
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert set(error["extensions"]["fields"]) == {"email", "password", "displayName"}


class TestLogin:
    async def test_returns_a_working_token(self, client: httpx2.AsyncClient, database: Database) -> None:
        await make_user(database, email="bob@example.com")
        body = await graphql(
            client,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken user { email } } }",
            {"e": "BOB@example.com", "p": PASSWORD},
        )
        token = body["data"]["login"]["accessToken"]
        me = await graphql(client, "{ me { email } }", headers={"Authorization": f"Bearer {token}"})
        assert me["data"]["me"]["email"] == "bob@example.com"

    async def test_wrong_password_and_unknown_email_answer_alike(
        self, client: httpx2.AsyncClient, database: Database
    ) -> None:
        await make_user(database, email="bob@example.com")
        query = 'mutation($e: String!) { login(email: $e, password: "wrong password") { accessToken } }'
        wrong = await graphql(client, query, {"e": "bob@example.com"})
        unknown = await graphql(client, query, {"e": "nobody@example.com"})
        assert error_codes(wrong) == error_codes(unknown) == ["UNAUTHENTICATED"]
        assert wrong["errors"][0]["message"] == unknown["errors"][0]["message"]


class TestQueries:
    async def test_me_is_null_when_anonymous(self, client: httpx2.AsyncClient) -> None:
        assert await graphql(client, "{ me { id } }") == {"data": {"me": None}}

    async def test_node_finds_a_user_by_global_id(
        self, client: httpx2.AsyncClient, database: Database, settings: Settings
    ) -> None:
        user = await make_user(database)
        global_id = to_global_id(NodeType.USER, user.id)
        body = await graphql(
            client,
            "query($id: ID!) { node(id: $id) { id ... on User { email } } }",
            {"id": global_id},
            headers=bearer(settings, user),
        )
        assert body["data"]["node"] == {"id": global_id, "email": user.email}

    async def test_node_is_null_for_ids_that_name_nothing(
        self, client: httpx2.AsyncClient, database: Database, settings: Settings
    ) -> None:
        user = await make_user(database)
        for unknown in ("not-an-id", base64.urlsafe_b64encode(f"Nothing:{user.id}".encode()).decode()):
            body = await graphql(
                client,
                "query($id: ID!) { node(id: $id) { id } }",
                {"id": unknown},
                headers=bearer(settings, user),
            )
            assert body == {"data": {"node": None}}

    async def test_users_pages_through_everyone_with_keyset_cursors(
        self, client: httpx2.AsyncClient, database: Database, settings: Settings
    ) -> None:
        admin = await make_user(database, admin=True)
        created = [admin] + [await make_user(database) for _ in range(4)]
        query = "query($after: String) { users(first: 2, after: $after) { edges { cursor node { email } } nodes { email } pageInfo { hasNextPage endCursor } } }"
        seen: list[str] = []
        after = None
        while True:
            page = (await graphql(client, query, {"after": after}, headers=bearer(settings, admin)))["data"][
                "users"
            ]
            assert [e["node"] for e in page["edges"]] == page["nodes"]
            assert page["edges"][-1]["cursor"] == page["pageInfo"]["endCursor"]
            seen += [n["email"] for n in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert seen == [u.email for u in created]

    async def test_users_search_matches_email_or_name_case_insensitively(
        self, client: httpx2.AsyncClient, database: Database, settings: Settings
    ) -> None:
        admin = await make_user(database, admin=True)
        await make_user(database, email="grace@example.com")
        await make_user(database, display_name="Grace Hopper", email="gh@example.com")
        await make_user(database, email="percent%@example.com")
        body = await graphql(
            client, '{ users(search: "GRACE") { nodes { email } } }', headers=bearer(settings, admin)
        )
        assert [n["email"] for n in body["data"]["users"]["nodes"]] == ["grace@example.com", "gh@example.com"]
        body = await graphql(
            client, '{ users(search: "%") { nodes { email } } }', headers=bearer(settings, admin)
        )
        assert [n["email"] for n in body["data"]["users"]["nodes"]] == ["percent%@example.com"]

    async def test_page_size_and_cursor_are_checked(
        self, client: httpx2.AsyncClient, database: Database, settings: Settings
    ) -> None:
        admin = await make_user(database, admin=True)
        for args in ("first: 0", "first: 101", 'after: "!!"'):
            body = await graphql(
                client, f"{{ users({args}) {{ nodes {{ id }} }} }}", headers=bearer(settings, admin)
            )
            assert error_codes(body) == ["BAD_USER_INPUT"], args


class TestMutations:
    async def test_update_me_changes_only_what_is_sent(
        self, client: httpx2.AsyncClient, database: Database, settings: Settings
    ) -> None:
        user = await make_user(database, display_name="Before")
        body = await graphql(
            client,
            'mutation { updateMe(input: {email: "New@Example.com"}) { email displayName } }',
            headers=bearer(settings, user),
        )
        assert body["data"]["updateMe"] == {"email": "new@example.com", "displayName": "Before"}

    async def test_update_user_and_delete_user_as_admin(
        self, client: httpx2.AsyncClient, database: Database, settings: Settings
    ) -> None:
        admin = await make_user(database, admin=True)
        user = await make_user(database)
        user_id = to_global_id(NodeType.USER, user.id)
        body = await graphql(
            client,
            'mutation($id: ID!) { updateUser(id: $id, input: {isActive: false, displayName: "Z"}) { isActive displayName isAdmin } }',
            {"id": user_id},
            headers=bearer(settings, admin),
        )
        assert body["data"]["updateUser"] == {"isActive": False, "displayName": "Z", "isAdmin": False}
        body = await graphql(
            client,
            "mutation($id: ID!) { deleteUser(id: $id) }",
            {"id": user_id},
            headers=bearer(settings, admin),
        )
        assert body["data"]["deleteUser"] is True
        body = await graphql(
            client,
            "query($id: ID!) { user(id: $id) { id } }",
            {"id": user_id},
            headers=bearer(settings, admin),
        )
        assert error_codes(body) == ["NOT_FOUND"]
