"""The committed contracts match the code (regenerate them with ``make schema``)."""

import json
import re

from api.contracts import OPENAPI_PATH, SDL_PATH, render_openapi, render_sdl
from api.services.callers import SCOPES


def test_schema_graphql_matches_the_code() -> None:
    assert SDL_PATH.read_text() == render_sdl(), "schema/schema.graphql is stale: run `make schema`"


def test_openapi_json_matches_the_code() -> None:
    assert OPENAPI_PATH.read_text() == render_openapi(), "openapi.json is stale: run `make schema`"


def test_every_operation_has_a_short_camel_case_id() -> None:
    """What generated clients name their methods after (``listApiKeys``, not FastAPI's
    ``list_api_keys_api_v1_api_keys_get``); unique, as OpenAPI requires."""
    ids = [
        operation["operationId"]
        for path in json.loads(render_openapi())["paths"].values()
        for operation in path.values()
    ]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)*", operation_id) for operation_id in ids), ids
    assert {"listApiKeys", "readMe", "startJob", "token"} <= set(ids)


def test_refusals_security_and_summaries_read_as_documented() -> None:
    document = json.loads(render_openapi())
    schemes = document["components"]["securitySchemes"]
    assert set(schemes) == {"OAuth2Password", "ApiKey"}
    assert set(schemes["OAuth2Password"]["flows"]["password"]["scopes"]) == SCOPES
    for path, operations in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            assert operation["summary"][0].isupper(), (method, path)
            assert "``" not in operation["summary"]
            refusals = {status: r for status, r in operation["responses"].items() if status[0] in "45"}
            assert "503" in refusals
            assert ("401" in refusals) == ("security" in operation or path == "/api/v1/auth/refresh")
            assert ("404" in refusals) == ("{" in path), (method, path)
            for status, response in refusals.items():
                if path == "/api/v1/auth/token" and status == "400":
                    continue  # the token endpoint's refusal is RFC 6749's JSON, not a problem document
                assert list(response["content"]) == ["application/problem+json"], (method, path)
                assert re.match(r"`[A-Z_]+`: ", response["description"])
    # What a route takes, and what its service refuses, each as that route's own list.
    codes = {
        operation["operationId"]: {status for status in operation["responses"] if status[0] in "45"}
        for operations in document["paths"].values()
        for operation in operations.values()
    }
    assert codes["readMe"] == {"401", "403", "503"}
    assert codes["register"] == {"409", "422", "429", "503"}
    assert codes["updateUser"] == {"401", "403", "404", "409", "412", "422", "503"}
    assert codes["listApiKeys"] == {"401", "403", "503"}
