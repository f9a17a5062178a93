"""Configuration, read from the environment (prefix ``SWITCHBOARD_``) and an optional ``.env`` file.

Nothing here runs at import time: ``get_settings()`` builds a ``Settings`` when asked, and the app
factory receives one, so tests construct their own without touching the environment.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, IPvAnyNetwork, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# A development convenience only: production refuses to start with it (see `_refuse_unsafe_production`).
DEFAULT_SECRET_KEY = "switchboard-development-secret-change-me-0123456789"
MIN_SECRET_BYTES = 32


class UnsafeSettingsError(ValueError):
    """The settings would run production with a development default."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", env_file=".env", extra="ignore", frozen=True)

    environment: Literal["development", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///./switchboard.db"
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    secret_key: str = DEFAULT_SECRET_KEY
    jwt_algorithm: Literal["HS256", "HS384", "HS512", "RS256", "EdDSA"] = "HS256"
    # PEM keys for RS256 / EdDSA; the HS algorithms sign with SECRET_KEY instead.
    jwt_private_key: str | None = None
    jwt_public_key: str | None = None
    jwt_issuer: str = "switchboard"
    jwt_audience: str = "switchboard"
    access_token_ttl: int = Field(default=15 * 60, ge=1, description="seconds")
    refresh_token_ttl: int = Field(default=30 * 24 * 3600, ge=1, description="seconds")
    # Attempts per window (seconds): sign-in per account and per client address, sign-up per address.
    rate_limit_login_per_account: int = Field(default=10, ge=1)
    rate_limit_login_per_address: int = Field(default=50, ge=1)
    rate_limit_login_window: int = Field(default=15 * 60, ge=1)
    rate_limit_register_per_address: int = Field(default=10, ge=1)
    rate_limit_register_window: int = Field(default=3600, ge=1)
    # Password hashing (argon2id): hashes at once (default: one per core), and the seconds one waits
    # for its turn before the request is refused with 503 and Retry-After.
    password_hash_concurrency: int | None = Field(default=None, ge=1)
    password_hash_wait: float = Field(default=3.0, gt=0)
    rate_limit_fetch_per_user: int = Field(default=60, ge=1, description="fetches and jobs per window")
    rate_limit_fetch_window: int = Field(default=60, ge=1)
    # Fetch (DESIGN §7): how many URLs a call takes, how hard the fetcher works, and for how long.
    fetch_max_urls: int = Field(default=100, ge=1)
    fetch_concurrency: int = Field(default=10, ge=1, description="fetches at once per job or call")
    fetch_per_host: int = Field(default=4, ge=1)
    fetch_per_process: int = Field(default=100, ge=1)
    fetch_connect_timeout: float = Field(default=5.0, gt=0, description="seconds")
    fetch_total_timeout: float = Field(default=10.0, gt=0, description="seconds per URL, redirects included")
    fetch_max_bytes: int = Field(default=1024 * 1024, ge=1)
    fetch_max_redirects: int = Field(default=5, ge=0)
    # Networks the SSRF guard lets through, as a JSON list of CIDRs (``["127.0.0.0/8"]``); for tests
    # and local development only: it opens the fetcher to whatever lives there.
    fetch_allow_networks: list[IPvAnyNetwork] = []
    # A running job renews its lease this often (seconds); a job whose lease ran out for this long
    # belongs to a dead process and is taken over by a live one.
    fetch_job_lease: float = Field(default=30.0, gt=0)
    fetch_job_max_attempts: int = Field(default=3, ge=1)
    upload_max_bytes: int = Field(default=1024 * 1024, ge=1)
    request_max_bytes: int = Field(default=1024 * 1024, ge=1)
    request_max_header_bytes: int = Field(default=16 * 1024, ge=1024, description="all headers together")
    # How long a request's whole body may take to arrive (a client trickling bytes is answered 408).
    request_body_timeout: float = Field(default=10.0, gt=0, description="seconds")
    cors_origins: list[str] = []
    allowed_hosts: list[str] = ["*"]
    graphql_introspection: bool | None = None
    graphql_max_depth: int = Field(default=10, ge=1)
    graphql_max_aliases: int = Field(default=30, ge=1)
    graphql_max_tokens: int = Field(default=15_000, ge=1)
    # What one operation may cost (schema.cost: about one per object it returns), and what one caller
    # (an account, else a client address) may spend in a window of ``graphql_cost_window`` seconds.
    graphql_max_cost: int = Field(default=10_000, ge=1)
    # Seconds one GraphQL operation over HTTP may run (past them: TIMEOUT, and its transaction rolls
    # back), and one SQL statement on PostgreSQL. A one-shot fetch is bounded by the FETCH_* limits.
    graphql_timeout: float = Field(default=10.0, gt=0)
    # Operations one POST may carry as a JSON array (each runs on its own, in order).
    graphql_max_batch: int = Field(default=10, ge=1)
    graphql_cost_budget: int = Field(default=1_000_000, ge=1)
    graphql_cost_window: int = Field(default=60, ge=1)
    # Trusted documents: a manifest of the operations the clients may send, by SHA-256 (the JSON
    # object GraphQL Codegen's client preset writes, ``{"<hash>": "<document>"}``), and which
    # documents run: any (``off``: the manifest is not read), the manifest's by id and any other
    # (``allowed-and-arbitrary``), or the manifest's alone (``allowed-only``; administrators and
    # API keys with the ``graphql:arbitrary`` scope may still send others).
    graphql_trusted_documents: Path | None = None
    graphql_document_policy: Literal["off", "allowed-and-arbitrary", "allowed-only"] = "off"
    # Automatic persisted queries (Apollo's protocol): a client sends a hash, and the document once
    # when the hash is not known yet; they are stored in the database, for every worker.
    graphql_apq: bool = False
    # Query documents answered by one compiled statement on PostgreSQL (api.graphql.compiled); off,
    # every document runs through the executor (the differential tests compare the two).
    compiled_reads: bool = True
    # Live updates: a socket must say connection_init within this many seconds (else 4408); the server
    # pings every ``ws_ping_interval`` and drops a peer whose pong takes longer than ``ws_ping_timeout``.
    ws_connection_init_timeout: float = Field(default=10.0, gt=0, le=10.0)
    ws_ping_interval: float = Field(default=15.0, gt=0)
    ws_ping_timeout: float = Field(default=10.0, gt=0)
    ws_max_subscriptions: int = Field(default=100, ge=1)
    # Events a subscriber may have waiting before its subscription is ended as too slow.
    subscription_queue_size: int = Field(default=100, ge=1)
    sse_heartbeat: float = Field(default=15.0, gt=0)
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    # GET /metrics (Prometheus) and the HTTP and GraphQL instrumentation behind it; off: a 404.
    metrics_enabled: bool = True

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def asymmetric_jwt(self) -> bool:
        return not self.jwt_algorithm.startswith("HS")

    @property
    def jwt_signing_key(self) -> str:
        return self.jwt_private_key or "" if self.asymmetric_jwt else self.secret_key

    @property
    def jwt_verification_key(self) -> str:
        return self.jwt_public_key or "" if self.asymmetric_jwt else self.secret_key

    @property
    def introspection_enabled(self) -> bool:
        """Introspection follows the environment unless set explicitly."""
        if self.graphql_introspection is None:
            return not self.is_production
        return self.graphql_introspection

    @property
    def database_is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Self:
        if len(self.secret_key.encode()) < MIN_SECRET_BYTES:
            raise UnsafeSettingsError(
                f"SWITCHBOARD_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes long"
            )
        if self.asymmetric_jwt and not (self.jwt_private_key and self.jwt_public_key):
            raise UnsafeSettingsError(
                f"SWITCHBOARD_JWT_ALGORITHM={self.jwt_algorithm} needs SWITCHBOARD_JWT_PRIVATE_KEY and "
                "SWITCHBOARD_JWT_PUBLIC_KEY (PEM)"
            )
        if self.graphql_cost_budget < self.graphql_max_cost:
            raise UnsafeSettingsError(
                f"SWITCHBOARD_GRAPHQL_COST_BUDGET ({self.graphql_cost_budget}) is below "
                f"SWITCHBOARD_GRAPHQL_MAX_COST ({self.graphql_max_cost}): an operation the cost limit "
                "lets through could never be paid for"
            )
        if self.graphql_document_policy != "off" and self.graphql_trusted_documents is None:
            raise UnsafeSettingsError(
                f"SWITCHBOARD_GRAPHQL_DOCUMENT_POLICY={self.graphql_document_policy} needs "
                "SWITCHBOARD_GRAPHQL_TRUSTED_DOCUMENTS (the manifest of trusted documents)"
            )
        if self.is_production and self.secret_key == DEFAULT_SECRET_KEY:
            raise UnsafeSettingsError(
                "SWITCHBOARD_SECRET_KEY is the development default; production needs its own "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read from the environment the first time they are needed.

    Invalid settings stop the process with one line per problem rather than a traceback: this runs
    at start-up, where the reader is whoever deployed the service.
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{_setting_name(e['loc'])}{e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        )
        raise SystemExit(f"switchboard: refusing to start: {problems}") from None


def _setting_name(location: tuple[int | str, ...]) -> str:
    """The environment variable a validation error is about (none for a check across settings)."""
    return f"SWITCHBOARD_{'_'.join(map(str, location)).upper()}: " if location else ""
