"""Settings: injected, never read at import time, and unsafe production settings refused."""

import json
import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from api.settings import DEFAULT_SECRET_KEY, Settings

GOOD_SECRET = "a-production-secret-of-more-than-32-bytes!"


def test_production_refuses_the_default_secret() -> None:
    with pytest.raises(ValidationError, match="SWITCHBOARD_SECRET_KEY is the development default"):
        Settings(_env_file=None, environment="production", secret_key=DEFAULT_SECRET_KEY)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        Settings(_env_file=None, environment="production", secret_key="too-short")


def test_production_starts_with_its_own_secret() -> None:
    settings = Settings(_env_file=None, environment="production", secret_key=GOOD_SECRET)
    assert settings.is_production
    assert settings.introspection_enabled is False


def test_environment_is_read_with_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_GRAPHQL_MAX_DEPTH", "7")
    monkeypatch.setenv("SWITCHBOARD_CORS_ORIGINS", '["https://app.example.com"]')
    settings = Settings(_env_file=None)
    assert settings.graphql_max_depth == 7
    assert settings.cors_origins == ["https://app.example.com"]


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own interpreter and code)
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_importing_the_app_reads_no_settings() -> None:
    """With an environment that would be refused, importing everything still works."""
    result = _python(
        "import api.app, api.contracts, schema.root, resolvers.users\n"
        "from api.settings import get_settings\n"
        "assert get_settings.cache_info().currsize == 0",
        SWITCHBOARD_ENVIRONMENT="production",
    )
    assert result.returncode == 0, result.stderr


def test_the_server_refuses_to_start_in_production_with_the_default_secret() -> None:
    result = _python(
        "from api.app import create_app; create_app()",
        SWITCHBOARD_ENVIRONMENT="production",
        SWITCHBOARD_SECRET_KEY=DEFAULT_SECRET_KEY,
    )
    assert result.returncode != 0
    assert "SWITCHBOARD_SECRET_KEY is the development default" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_allowlist_is_read_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_FETCH_ALLOW_NETWORKS", json.dumps(["127.0.0.0/8", "::1/128"]))
    settings = Settings(_env_file=None, secret_key="x" * 32)
    assert [str(network) for network in settings.fetch_allow_networks] == ["127.0.0.0/8", "::1/128"]
    monkeypatch.delenv("SWITCHBOARD_FETCH_ALLOW_NETWORKS")
    assert Settings(_env_file=None, secret_key="x" * 32).fetch_allow_networks == []


def test_a_cost_budget_below_the_cost_limit_is_refused() -> None:
    with pytest.raises(ValidationError, match="could never be paid for"):
        Settings(_env_file=None, graphql_cost_budget=10, graphql_max_cost=100)
