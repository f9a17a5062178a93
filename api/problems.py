"""Error responses: RFC 9457 problem documents for REST, GraphQL-shaped bodies on ``/graphql``.

Every refusal carries the same ``code`` on both transports, and the request id, so a client's report
can be matched with the log.
"""

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from api.errors import (
    INTERNAL_ERROR_CODE,
    INTERNAL_ERROR_MESSAGE,
    DomainError,
    InvalidInput,
    RateLimited,
    ServiceUnavailable,
    Unauthenticated,
    field_messages,
)

logger = logging.getLogger("switchboard.errors")


class Problem(BaseModel):
    """An RFC 9457 problem document, as every REST error is sent (OpenAPI's view of it)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "about:blank",
                    "title": "Not Found",
                    "status": 404,
                    "detail": "No such user.",
                    "instance": "/api/v1/users/0193a6e4-4b7e-7c3a-9f1e-3c5d2a1b0c9d",
                    "code": "NOT_FOUND",
                    "request_id": "7f1c2d3e4b5a69788796a5b4c3d2e1f0",
                    "errors": None,
                }
            ]
        }
    )

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str
    code: str
    request_id: str | None
    errors: dict[str, list[str]] | None = None


PROBLEM_JSON = "application/problem+json"
# The refusals a REST route may answer, each a problem document with its ``code`` (moved under
# ``application/problem+json`` in OpenAPI by ``problem_media``).
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": f"`{code}`: {description}"}
    for status, code, description in [
        (401, "UNAUTHENTICATED", "missing or invalid credentials"),
        (403, "FORBIDDEN", "not allowed, or a scope the token or key lacks"),
        (404, "NOT_FOUND", "no such resource, or one the caller may not see"),
        (409, "CONFLICT", "the change conflicts with what is there (an email taken, the last admin)"),
        (412, "PRECONDITION_FAILED", "`If-Match` names a version the resource is no longer at"),
        (413, "PAYLOAD_TOO_LARGE", "the body or upload is larger than the limit"),
        (422, "BAD_USER_INPUT", "invalid input, with messages per field in `errors`"),
        (429, "RATE_LIMITED", "too many requests: try again after `Retry-After` seconds"),
        (
            503,
            "SERVICE_UNAVAILABLE",
            "the database is unavailable for a moment: try again after `Retry-After`",
        ),
    ]
}


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented refusals with these statuses, for a route's ``responses``."""
    return {status: PROBLEM_RESPONSES[status] for status in statuses}


def problem_media(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with every refusal's schema under ``application/problem+json``, the
    type it is sent as (FastAPI files a response model under the route's JSON type)."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                schema = content.get("application/json", {}).get("schema", {})
                if schema.get("$ref") == "#/components/schemas/Problem":
                    content[PROBLEM_JSON] = content.pop("application/json")
    return document


GRAPHQL_PATH = "/graphql"
_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
    431: "REQUEST_HEADER_FIELDS_TOO_LARGE",
}


def problem(
    request: Request,
    status: int,
    code: str,
    detail: str,
    *,
    extra: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    request_id = request.scope.get("request_id")
    if request.url.path == GRAPHQL_PATH:
        extensions = {"code": code, **(extra or {}), "requestId": request_id}
        body: dict[str, Any] = {"errors": [{"message": detail, "extensions": extensions}]}
        return JSONResponse(body, status_code=status, headers=headers)
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "code": code,
        "request_id": request_id,
        **(extra or {}),
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def refusal(request: Request, exc: DomainError) -> Response:
    """The answer to a domain error: its status, code and message, and the headers it implies."""
    extra: dict[str, Any] | None = {"errors": exc.fields} if isinstance(exc, InvalidInput) else None
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
    if isinstance(exc, RateLimited | ServiceUnavailable):
        extra, headers = {"retry_after": exc.retry_after}, {"Retry-After": str(exc.retry_after)}
    return problem(request, exc.status, exc.code, exc.message, extra=extra, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return refusal(request, exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's refusal of a body, query or path parameter: the domain's ``InvalidInput``."""
    assert isinstance(exc, RequestValidationError)
    return await _domain_error(request, InvalidInput(field_messages(list(exc.errors()), skip=1)))


async def http_error(request: Request, exc: Exception) -> Response:
    """An ``HTTPException`` (the body limit's 413 and 408 among them) as a problem document."""
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "BAD_REQUEST" if exc.status_code < 500 else INTERNAL_ERROR_CODE)
    return problem(request, exc.status_code, code, str(exc.detail), headers=exc.headers)


def log_unexpected(scope: Scope, exc: Exception) -> None:
    """Log a bug with its traceback under the request id.

    ``RequestIdMiddleware`` calls it for anything that escapes the app. The same exception reported
    again later (by Starlette's ``ServerErrorMiddleware``, by uvicorn) is not written twice: see
    ``api.logs.OncePerFailure``.
    """
    logger.error(
        "unexpected error on %s %s",
        scope.get("method", "WebSocket"),
        scope["path"],
        exc_info=exc,
        extra={"request_id": scope.get("request_id")},
    )


def internal_error(request: Request) -> Response:
    """The masked answer to a bug: a fixed message and the request id to find it in the log."""
    return problem(request, 500, INTERNAL_ERROR_CODE, INTERNAL_ERROR_MESSAGE)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    """Starlette's last resort, outside our middleware (so it sets the request id header itself):
    it sees what ``RequestIdMiddleware`` re-raises (a failure after the response began, which it
    cannot answer either) and what a middleware outside that one raises."""
    log_unexpected(request.scope, exc)
    response = internal_error(request)
    if request_id := request.scope.get("request_id"):
        response.headers["X-Request-ID"] = request_id
    return response


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, _unexpected_error)
