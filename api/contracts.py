"""The contracts clients depend on, as files: the GraphQL SDL and the OpenAPI document.

``python -m api.contracts`` (``make schema``) rewrites them from the code; a test fails when the
committed files and the code disagree, so every change to a contract shows up in review.
"""

import json
from pathlib import Path

from strawberry.printer import print_schema

from api.app import create_app
from api.graphql.schema import build_schema
from api.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SDL_PATH = ROOT / "schema" / "schema.graphql"
OPENAPI_PATH = ROOT / "openapi.json"


def contract_settings() -> Settings:
    """Fixed settings, so the files do not depend on the environment they are generated in."""
    return Settings(_env_file=None, environment="development")


def render_sdl() -> str:
    return print_schema(build_schema(contract_settings())) + "\n"


def render_openapi() -> str:
    return json.dumps(create_app(contract_settings()).openapi(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    SDL_PATH.write_text(render_sdl())
    OPENAPI_PATH.write_text(render_openapi())
    print(f"wrote {SDL_PATH.relative_to(ROOT)} and {OPENAPI_PATH.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
