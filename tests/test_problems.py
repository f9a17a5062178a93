"""REST refusals of what cannot be parsed: a problem document, never a bug's 500."""

import httpx2


async def test_a_rest_body_that_is_not_utf8_or_nests_too_deep_is_400(client: httpx2.AsyncClient) -> None:
    json_body = {"Content-Type": "application/json"}
    for content in (b'{"email": "\xff\xfe"}', b"[" * 100_000 + b"]" * 100_000):
        response = await client.post("/api/v1/users", content=content, headers=json_body)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "BAD_REQUEST"
