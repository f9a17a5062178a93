"""The committed contracts match the code (regenerate them with ``make schema``)."""

from api.contracts import OPENAPI_PATH, SDL_PATH, render_openapi, render_sdl


def test_schema_graphql_matches_the_code() -> None:
    assert SDL_PATH.read_text() == render_sdl(), "schema/schema.graphql is stale: run `make schema`"


def test_openapi_json_matches_the_code() -> None:
    assert OPENAPI_PATH.read_text() == render_openapi(), "openapi.json is stale: run `make schema`"
