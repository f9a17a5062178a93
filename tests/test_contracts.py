"""The committed contracts match the code (regenerate them with ``make schema``)."""

import json
import re
from typing import Any

import pytest
from pydantic import BaseModel

from api.contracts import OPENAPI_PATH, SDL_PATH, render_openapi, render_sdl
from api.problems import Problem
from api.rest.api_keys import ApiKeyOut, NewApiKeyOut
from api.rest.auth import RefreshIn, TokenOut
from api.rest.fetch import FetchJobOut, FetchResultOut
from api.rest.users import UserOut
from api.services.callers import SCOPES
from api.services.commands import (
    ApiKeyCreate,
    FetchJobCreate,
    PasswordChange,
    UserAdminUpdate,
    UserCreate,
    UserReplace,
    UserSelfUpdate,
)


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


@pytest.mark.parametrize(
    "model",
    [UserOut, ApiKeyOut, NewApiKeyOut, FetchJobOut, FetchResultOut, TokenOut, Problem],
    ids=lambda model: model.__name__,
)
def test_each_answer_example_is_what_the_model_writes(model: type[BaseModel]) -> None:
    for example in model.model_json_schema(mode="serialization")["examples"]:
        assert model.model_validate(example).model_dump(mode="json") == example


@pytest.mark.parametrize(
    "model",
    [
        UserCreate,
        UserSelfUpdate,
        UserAdminUpdate,
        UserReplace,
        PasswordChange,
        ApiKeyCreate,
        FetchJobCreate,
        RefreshIn,
    ],
    ids=lambda model: model.__name__,
)
def test_each_body_example_is_accepted(model: type[BaseModel]) -> None:
    for example in model.model_json_schema()["examples"]:
        assert model.model_validate(example).model_dump(exclude_unset=True) == example


def test_every_json_body_and_answer_has_an_example() -> None:
    document = json.loads(render_openapi())
    schemas = document["components"]["schemas"]

    def example_of(content: dict[str, Any]) -> bool:
        schema = content.get("schema", {})
        if "example" in content or "examples" in content or "examples" in schema:
            return True
        name = schema.get("$ref", "").rsplit("/", 1)[-1]
        if name.startswith("ItemPage"):  # a page's items are one of the resources below
            name = schemas[name]["properties"]["items"]["items"]["$ref"].rsplit("/", 1)[-1]
        return "examples" in schemas.get(name, {})

    for path, operations in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                if media == "application/json":
                    assert example_of(content), (method, path, "body")
            for status, response in operation["responses"].items():
                json_content = response.get("content", {}).get("application/json")
                if json_content and json_content.get("schema") and status[0] in "2":
                    assert example_of(json_content), (method, path, status)
