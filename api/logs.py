"""Logging set-up and the request id that ties a client's error report to the log lines behind it.

One handler on the root logger writes every record of the process (ours under ``switchboard.*``,
uvicorn's, any library's) to stderr in one format: readable lines, or one JSON object per line.
Access lines are ours (``switchboard.access``, from the request-id middleware): uvicorn's own are
switched off, since it writes the line of a failed request after the request id is gone.
"""

import json
import logging
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.types import Scope

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

HANDLER_NAME = "switchboard"
CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
_LOGGED = "_switchboard_logged"
# Attributes every record has; anything else on a record came from ``extra`` and is a field of its own.
_STANDARD = {*vars(logging.makeLogRecord({})), "message", "asctime", "request_id", "color_message"}

access_logger = logging.getLogger("switchboard.access")


class RequestIdFilter(logging.Filter):
    """Tags each record with the id of the request it was logged in."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):  # code outside the request may pass it in ``extra``
            record.request_id = request_id_var.get() or "-"
        return True


class OncePerFailure(logging.Filter):
    """Lets the first record of an exception through and drops the later ones.

    A failure that escapes a request is seen by several layers: our middleware logs it with the
    request id, then Starlette's ``ServerErrorMiddleware`` hands it to its handler and re-raises, and
    uvicorn logs "Exception in ASGI application" with the same traceback. The exception object is
    marked when first written, so the same failure is one record however many layers report it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        failure = record.exc_info[1] if record.exc_info else None
        if failure is None:
            return True
        if getattr(failure, _LOGGED, False):
            return False
        setattr(failure, _LOGGED, True)  # exceptions refuse weak references, so a mark on the object
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: the time in ISO 8601 UTC, the traceback as one field of the object."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        entry.update((key, value) for key, value in vars(record).items() if key not in _STANDARD)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def configure_logging(log_format: Literal["console", "json"], level: str) -> None:
    """Route every logger of the process through one stderr handler in ``log_format``.

    Safe to call again (``switchboard serve`` calls it before uvicorn starts, and each worker's
    ``create_app`` once more): the handler of an earlier call is replaced, and handlers that are not
    ours (a test runner's) stay on the root logger. Other libraries log at WARNING and above.
    """
    handler = logging.StreamHandler()
    handler.set_name(HANDLER_NAME)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(OncePerFailure())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(CONSOLE_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(logging.WARNING, logging.getLevelNamesMapping()[level.upper()]))
    for name in ("switchboard", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()  # uvicorn's own configuration, when uvicorn was started directly
        logger.propagate = True
        logger.setLevel(level.upper() if name != "uvicorn.error" else logging.NOTSET)
    # Without handlers uvicorn writes no access line at all (it asks ``hasHandlers``); ours replace them.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False


def log_access(scope: Scope, status: int | None, started: float) -> None:
    """The access line of an HTTP request: method, path (no query string, which may carry a user's
    URLs or a GraphQL document with its variables), status, duration and client."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    client = scope.get("client")
    peer = f"{client[0]}:{client[1]}" if client else "-"
    access_logger.info(
        "%s %s %s %.1f ms %s",
        scope["method"],
        scope["path"],
        status if status is not None else "no response",
        duration_ms,
        peer,
        extra={
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "duration_ms": duration_ms,
            "client": peer,
        },
    )
