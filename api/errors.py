"""The domain error tree, raised by services and rendered by both transports.

Each error carries a ``code`` shared by REST (``code`` in an RFC 9457 problem document) and GraphQL
(``extensions.code``), and the HTTP status REST answers with. Nothing here knows either transport.
"""

from collections.abc import Mapping
from typing import Any, ClassVar


class DomainError(Exception):
    """A refusal the client can act on; its message is safe to show."""

    code: ClassVar[str] = "BAD_REQUEST"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    # Whether the work done before the refusal is committed anyway (a security response such as
    # revoking a leaked token's family must persist); by default a refusal leaves nothing behind.
    keeps_changes: ClassVar[bool] = False

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.title
        super().__init__(self.message)

    def extensions(self) -> dict[str, Any]:
        """What GraphQL puts in ``extensions`` and REST adds to the problem document."""
        return {"code": self.code}


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"
    status = 401
    title = "Authentication required"


class Forbidden(DomainError):
    code = "FORBIDDEN"
    status = 403
    title = "Not allowed"


class NotFound(DomainError):
    code = "NOT_FOUND"
    status = 404
    title = "Not found"


class Conflict(DomainError):
    code = "CONFLICT"
    status = 409
    title = "Conflict"


class PreconditionFailed(DomainError):
    """A conditional write (HTTP ``If-Match``) whose row changed since the client read it: the
    lost update, made visible."""

    code = "PRECONDITION_FAILED"
    status = 412
    title = "Precondition failed"


class InvalidInput(DomainError):
    """Input that fails validation; ``fields`` maps a field path to its messages."""

    code = "BAD_USER_INPUT"
    status = 422
    title = "Invalid input"

    def __init__(self, fields: Mapping[str, list[str]], message: str | None = None) -> None:
        self.fields = dict(fields)
        super().__init__(message or "; ".join(f"{k}: {' '.join(v)}" for k, v in self.fields.items()))

    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, "fields": self.fields}


class RefreshTokenReused(Unauthenticated):
    """A refresh token that was already exchanged came back: it leaked, and its family is revoked."""

    title = "Invalid or expired refresh token"
    keeps_changes = True


class RateLimited(DomainError):
    code = "RATE_LIMITED"
    status = 429
    title = "Too many requests"

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        self.retry_after = max(1, round(retry_after))
        super().__init__(message or f"Too many attempts; try again in {self.retry_after} s.")

    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, "retryAfter": self.retry_after}


class QueryTooComplex(DomainError):
    """A GraphQL document past one of the limits on what one operation may ask (its cost, depth,
    aliases or tokens), refused before it runs; ``measured`` names the limit and both figures
    (``{"cost": 12000, "maxCost": 10000}``)."""

    code = "QUERY_TOO_COMPLEX"
    status = 400
    title = "The operation asks for too much at once"

    def __init__(self, message: str, measured: Mapping[str, int]) -> None:
        self.measured = dict(measured)
        super().__init__(message)

    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, **self.measured}


class TimedOut(DomainError):
    """An operation that ran past the time it has; what it had not committed is rolled back (a
    password change, say, commits what came before it as it begins to hash)."""

    code = "TIMEOUT"
    status = 504
    title = "The operation took too long and was stopped"

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"The operation ran past its {seconds:g} s and was stopped; "
            "what it had not committed is rolled back."
        )


class ServiceUnavailable(DomainError):
    """The database did not answer (refused, dropped, timed out, locked): nothing the client did,
    and worth trying again shortly. ``reason`` is the driver's words, for the log, never for the client."""

    code = "SERVICE_UNAVAILABLE"
    status = 503
    title = "The service is unavailable for a moment; try again shortly."

    def __init__(self, reason: str, retry_after: float = 2) -> None:
        self.reason = reason
        self.retry_after = max(1, round(retry_after))
        super().__init__()

    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, "retryAfter": self.retry_after}


class Overloaded(ServiceUnavailable):
    """A bound of our own is full (every password-hashing slot busy): a 503 to the client as for the
    database, but not the database's trouble, so its outage log says nothing of it."""


class ClientGone(DomainError):
    """The client hung up before its request's body was all there: nobody reads the answer, and
    it is no bug of ours."""

    title = "The request's body ended before it was complete."


class ScopeNotGranted(Forbidden):
    title = "The account may not have the scope it asked for"


class InvalidCredentials(Unauthenticated):
    """Login failed; the same answer whether the account is unknown or the password wrong."""

    title = "Invalid email or password"


INTERNAL_ERROR_CODE = "INTERNAL_SERVER_ERROR"
INTERNAL_ERROR_MESSAGE = "Internal server error"


def field_messages(errors: list[Any], *, skip: int = 0) -> dict[str, list[str]]:
    """Group pydantic error entries by dotted field path; ``skip`` drops leading ``loc`` parts
    (FastAPI prefixes them with ``body``, ``query`` …)."""
    fields: dict[str, list[str]] = {}
    for error in errors:
        path = ".".join(str(part) for part in error["loc"][skip:]) or "__root__"
        message = str(error["msg"]).removeprefix("Value error, ")
        fields.setdefault(path, []).append(message)
    return fields
