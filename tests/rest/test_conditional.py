"""Conditional requests: entity tags on reads, 304 on ``If-None-Match``, 412 on a stale ``If-Match``
(two clients editing one profile), and what each answer lets a cache keep."""

import asyncio

import httpx2

from api.db.engine import Database
from api.settings import Settings
from tests.conftest import asgi_client, running_app, settings_for_tests
from tests.factories import PASSWORD, bearer, graphql, make_user


async def test_a_read_is_tagged_and_revalidates_with_304(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    admin = await make_user(database, admin=True)
    headers = bearer(settings, admin)
    for path in ("/api/v1/users/me", f"/api/v1/users/{admin.id}", "/api/v1/users", "/api/v1/api-keys"):
        first = await client.get(path, headers=headers)
        assert first.status_code == 200
        tag = first.headers["etag"]
        assert tag[0] == tag[-1] == '"'  # strong
        assert first.headers["cache-control"] == "private, no-cache"
        again = await client.get(path, headers={**headers, "If-None-Match": f'"other", {tag}'})
        assert again.status_code == 304, path
        assert again.content == b""
        assert again.headers["etag"] == tag
        assert "content-type" not in again.headers
        assert (await client.get(path, headers={**headers, "If-None-Match": '"other"'})).status_code == 200
        assert (await client.get(path, headers={**headers, "If-None-Match": "*"})).status_code == 304


async def test_a_change_moves_the_tag(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    user = await make_user(database)
    headers = bearer(settings, user)
    before = (await client.get("/api/v1/users/me", headers=headers)).headers["etag"]
    changed = await client.patch("/api/v1/users/me", json={"display_name": "Ada"}, headers=headers)
    assert changed.headers["etag"] != before
    stale = await client.get("/api/v1/users/me", headers={**headers, "If-None-Match": before})
    assert stale.status_code == 200
    assert stale.json()["display_name"] == "Ada"
    assert stale.headers["etag"] == changed.headers["etag"]


async def test_credentials_stay_uncacheable(client: httpx2.AsyncClient, database: Database) -> None:
    await make_user(database, email="cache@example.com")
    form = {"username": "cache@example.com", "password": PASSWORD}
    response = await client.post("/api/v1/auth/token", data=form)
    assert response.headers["cache-control"] == "no-store"
    assert "etag" not in response.headers  # a POST: nothing to revalidate


async def test_a_graphql_get_query_revalidates_too(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    user = await make_user(database)
    params = {"query": "{ me { email } }"}
    # The tag is the digest of the bytes: the compiled read on PostgreSQL (from the second request
    # on, once the caller is known) writes the same document with other spacing, so another tag.
    await client.get("/graphql", params=params, headers=bearer(settings, user))
    first = await client.get("/graphql", params=params, headers=bearer(settings, user))
    assert first.json() == {"data": {"me": {"email": user.email}}}
    tagged = {**bearer(settings, user), "If-None-Match": first.headers["etag"]}
    assert (await client.get("/graphql", params=params, headers=tagged)).status_code == 304
    other = await make_user(database)  # another caller's answer is another body, another tag
    mine = {**bearer(settings, other), "If-None-Match": first.headers["etag"]}
    assert (await client.get("/graphql", params=params, headers=mine)).status_code == 200


async def test_if_match_refuses_a_stale_write_and_keeps_the_row(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    admin = await make_user(database, admin=True)
    user = await make_user(database, display_name="Before")
    path = f"/api/v1/users/{user.id}"
    headers = bearer(settings, admin)
    tag = (await client.get(path, headers=headers)).headers["etag"]
    first = await client.patch(path, json={"display_name": "One"}, headers={**headers, "If-Match": tag})
    assert first.status_code == 200
    lost = await client.patch(path, json={"display_name": "Two"}, headers={**headers, "If-Match": tag})
    assert lost.status_code == 412
    assert lost.headers["content-type"] == "application/problem+json"
    assert lost.json()["code"] == "PRECONDITION_FAILED"
    put = {"display_name": "Three", "is_active": True, "is_admin": False}
    assert (await client.put(path, json=put, headers={**headers, "If-Match": tag})).status_code == 412
    assert (await client.delete(path, headers={**headers, "If-Match": tag})).status_code == 412
    assert (await client.get(path, headers=headers)).json()["display_name"] == "One"
    for refused in ('W/"' + tag.strip('"') + '"', '"not-a-version"', '"zz"'):
        answer = await client.patch(
            path, json={"display_name": "X"}, headers={**headers, "If-Match": refused}
        )
        assert answer.status_code == 412, refused
    current = first.headers["etag"]
    assert (
        await client.delete(path, headers={**headers, "If-Match": f'"old", {current}'})
    ).status_code == 204


async def test_if_match_star_or_none_writes_unconditionally(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    user = await make_user(database)
    headers = bearer(settings, user)
    star = await client.patch(
        "/api/v1/users/me", json={"display_name": "A"}, headers={**headers, "If-Match": "*"}
    )
    assert star.status_code == 200
    assert (
        await client.patch("/api/v1/users/me", json={"display_name": "B"}, headers=headers)
    ).status_code == 200


async def test_two_clients_editing_one_profile_at_once_one_wins(
    live_client: httpx2.AsyncClient, live_database: Database, live_settings: Settings
) -> None:
    """Both read the same version and write at once: the conditional UPDATE lets one through and
    holds the other until it can see the row moved on; no change is silently lost."""
    user = await make_user(live_database)
    headers = bearer(live_settings, user)
    tag = (await live_client.get("/api/v1/users/me", headers=headers)).headers["etag"]
    for round in range(5):
        writes = [
            live_client.patch(
                "/api/v1/users/me",
                json={"display_name": f"{round}-{n}"},
                headers={**headers, "If-Match": tag},
            )
            for n in range(4)
        ]
        answers = await asyncio.gather(*writes)
        assert sorted(a.status_code for a in answers) == [200, 412, 412, 412]
        (winner,) = [a for a in answers if a.status_code == 200]
        me = await live_client.get("/api/v1/users/me", headers=headers)
        assert me.json()["display_name"] == winner.json()["display_name"]
        tag = me.headers["etag"]
        assert tag == winner.headers["etag"]


async def test_graphql_writes_are_unconditional_and_move_the_tag(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    user = await make_user(database)
    headers = bearer(settings, user)
    tag = (await client.get("/api/v1/users/me", headers=headers)).headers["etag"]
    mutation = 'mutation { updateMe(input: {displayName: "G"}) { displayName } }'
    await graphql(client, mutation, headers=headers)
    stale = await client.patch(
        "/api/v1/users/me", json={"display_name": "R"}, headers={**headers, "If-Match": tag}
    )
    assert stale.status_code == 412


async def test_a_browser_on_another_origin_may_read_the_tag_and_deprecation_headers(
    database: Database, settings: Settings
) -> None:
    user = await make_user(database)
    origin = "https://app.example.com"
    async with (
        running_app(settings_for_tests(cors_origins=[origin]), database) as app,
        asgi_client(app) as http,
    ):
        headers = {**bearer(app.state.settings, user), "Origin": origin}
        response = await http.get("/api/v1/users/me", headers=headers)
    exposed = {name.strip().lower() for name in response.headers["access-control-expose-headers"].split(",")}
    assert {"etag", "deprecation", "sunset", "link", "retry-after"} <= exposed


async def test_an_unreadable_if_match_is_refused_whatever_the_form_asked_for(
    client: httpx2.AsyncClient, database: Database, settings: Settings
) -> None:
    """A tag without quotes, a quoted "*", or a version past the year 9999 names no version: 412,
    also when gzip or MessagePack would rewrite the tags on the way in."""
    user = await make_user(database)
    headers = bearer(settings, user)
    for if_match in ("18f3ab12", '"*"', '"fffffffffffffff"', "W/*"):
        for form in ({"Accept-Encoding": "gzip"}, {"Accept": "application/msgpack"}, {}):
            answer = await client.patch(
                "/api/v1/users/me",
                json={"display_name": "X"},
                headers={**headers, **form, "If-Match": if_match},
            )
            assert answer.status_code == 412, (if_match, form)
    assert (await client.get("/api/v1/users/me", headers=headers)).json()["display_name"] is None
