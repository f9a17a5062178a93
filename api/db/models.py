"""The ORM models. Relationships, when they come, load with ``lazy="raise"`` so N+1 fails loudly."""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, Entity
from api.db.types import UTCDateTime, utcnow, version_of


class User(Entity):
    """An account. ``email`` is stored lower-cased, which makes its unique index case-insensitive."""

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def version(self) -> str:
        """What changes whenever the row does: REST's entity tag, and what ``If-Match`` names."""
        return version_of(self.updated_at)


class RefreshToken(Entity):
    """One link of a sign-in session. The token itself is never stored, only its SHA-256: it is 256
    random bits, so a fast hash is enough. Each use replaces it with a new one of the same ``family``;
    a replaced token presented again means it leaked, and the whole family is revoked."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replaced_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class ApiKey(Entity):
    """A credential for scripts (``X-API-Key``), limited to its scopes. As with refresh tokens, only
    the SHA-256 of the secret is kept; ``prefix`` lets its owner tell keys apart."""

    __tablename__ = "api_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RateLimitWindow(Base):
    """A fixed-window counter, shared by every worker when the database is PostgreSQL."""

    __tablename__ = "rate_limit_windows"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    hits: Mapped[int]


class PersistedDocument(Base):
    """A GraphQL document a client registered by its SHA-256 (automatic persisted queries), kept
    here so that every worker knows it; a document is its hash's for ever, so rows never change."""

    __tablename__ = "persisted_documents"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# What fetching one URL gave: the fetcher's answer, kept as a result's column. (No docstring: pydantic
# would carry it into the REST contract, openapi.json.)
class Outcome(StrEnum):
    OK = "OK"
    HTTP_ERROR = "HTTP_ERROR"
    TIMEOUT = "TIMEOUT"
    BLOCKED = "BLOCKED"
    TOO_LARGE = "TOO_LARGE"
    INVALID_URL = "INVALID_URL"
    CONNECTION_ERROR = "CONNECTION_ERROR"
    CANCELLED = "CANCELLED"


class JobStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"

    @property
    def ended(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.CANCELLED, JobStatus.FAILED)


class FetchJob(Entity):
    """A list of URLs fetched in the background. ``completed`` counts the results written so far.

    A running job holds a lease (``lease_until``) that its process renews; a job still ``RUNNING``
    (or ``PENDING``) with an expired lease was left by a process that died, and a live one takes it
    over, at most ``fetch_job_max_attempts`` times (``attempts`` counts them).
    """

    __tablename__ = "fetch_jobs"
    __table_args__ = (Index("ix_fetch_jobs_owner_id_id", "owner_id", "id"),)

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, native_enum=False, length=16), default=JobStatus.PENDING, index=True
    )
    urls: Mapped[list[str]] = mapped_column(JSON)
    total: Mapped[int]
    completed: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class FetchResult(Base):
    """What fetching one URL of a job gave; ``position`` is the URL's place in the job's list."""

    __tablename__ = "fetch_results"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("fetch_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    url: Mapped[str] = mapped_column(Text)
    outcome: Mapped[Outcome] = mapped_column(Enum(Outcome, native_enum=False, length=20))
    status_code: Mapped[int | None]
    final_url: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(Text)
    bytes: Mapped[int | None]
    elapsed_ms: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The order results came in, from 1 (the job's ``completed`` once it was counted): a live stream
    # resumes after the last one its client saw (``Last-Event-ID``). Unset on results from before it.
    sequence: Mapped[int | None]
