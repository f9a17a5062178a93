"""One log stream: every logger, uvicorn's included, through one handler; JSON lines a machine can read;
each failure one record with its request id and traceback."""

import asyncio
import json
import logging
import re
import uuid
from contextlib import ExitStack
from typing import Any

import httpx2
import pytest

from api.logs import HANDLER_NAME, OncePerFailure, configure_logging, request_id_var
from api.security import create_access_token
from tests.conftest import settings_for_tests
from tests.processes import free_port, server_process
from tests.waiting import until

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
FIELDS = {"time", "level", "logger", "message", "request_id"}


async def _until_healthy(port: int) -> None:
    """``/healthz``, not ``/readyz``: this server's database is down on purpose."""
    async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

        async def healthy() -> bool:
            try:
                return (await client.get("/healthz")).status_code == 200
            except httpx2.TransportError:
                return False

        await until(healthy, within=15, what=f"the server on port {port} to start")


Logged = tuple[list[dict[str, Any]], dict[str, Any]]


def _serve(tmp_path_factory: pytest.TempPathFactory, *servers: tuple[str, int, str]) -> list[Logged]:
    """``switchboard serve`` with JSON logs, one for each ``(database, workers, failing)``, all at once
    (each takes a second or more to start): every line each wrote to stderr, parsed, and what a
    ``/healthz`` and a ``GET /api/v1/users/me`` (request id ``failing``) got from it."""
    token = create_access_token(settings_for_tests(), uuid.uuid4()).token
    env = {"SWITCHBOARD_LOG_FORMAT": "json", "SWITCHBOARD_LOG_LEVEL": "INFO"}
    ports = [free_port() for _ in servers]
    logs = [tmp_path_factory.mktemp("logs") / "stderr.log" for _ in servers]

    async def traffic(port: int, failing: str) -> dict[str, Any]:
        await _until_healthy(port)
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            healthy = await client.get("/healthz")
            failed = await client.get(
                "/api/v1/users/me", headers={"Authorization": f"Bearer {token}", "X-Request-ID": failing}
            )
        return {"ok_id": healthy.headers["x-request-id"], "failed": failed}

    async def all_traffic() -> list[dict[str, Any]]:
        return await asyncio.gather(
            *(traffic(port, failing) for port, (_, _, failing) in zip(ports, servers, strict=True))
        )

    with ExitStack() as running:
        processes = [
            server_process(
                port,
                database,
                "--workers",
                str(workers),
                env=env,
                stderr=running.enter_context(log.open("wb")),
            )
            for port, log, (database, workers, _) in zip(ports, logs, servers, strict=True)
        ]
        started = [running.enter_context(process) for process in processes]
        seen = asyncio.run(all_traffic())
        for process in started:
            process.terminate()  # all at once; each block then waits for its own
    found = []
    for log, answers in zip(logs, seen, strict=True):
        lines = log.read_text().splitlines()
        assert lines, "the server wrote nothing"
        found.append(([json.loads(line) for line in lines], answers))
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> list[Logged]:
    """``broken`` and ``away``, run side by side."""
    unmigrated = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('unmigrated') / 'empty.db'}"
    unanswered = f"postgresql+asyncpg://switchboard:switchboard@127.0.0.1:{free_port()}/switchboard"
    return _serve(tmp_path_factory, (unmigrated, 1, "log-test-failure"), (unanswered, 2, "log-test-outage"))


@pytest.fixture(scope="module")
def broken(served: list[Logged]) -> Logged:
    """A server on a SQLite file that was never migrated: reading a user meets a real bug (no such
    table), and so does the job sweeper."""
    return served[0]


@pytest.fixture(scope="module")
def away(served: list[Logged]) -> Logged:
    """Two workers on a PostgreSQL that does not answer: the bus cannot listen, and a request that
    reads a user is refused for the database (one warning for the outage, not a traceback)."""
    return served[1]


def test_every_line_is_one_json_object_with_the_fields(broken: Logged, away: Logged) -> None:
    for records in (broken[0], away[0]):
        for record in records:
            assert record.keys() >= FIELDS, record
            assert ISO_UTC.fullmatch(record["time"]), record["time"]
    loggers = {r["logger"] for r in broken[0]}
    assert {"uvicorn.error", "switchboard.access", "switchboard.errors"} <= loggers
    messages = [r["message"] for r in away[0] if r["logger"] == "uvicorn.error"]
    assert any(m.startswith("Started parent process") for m in messages)  # the supervisor's own line
    assert messages.count("Application startup complete.") == 2  # one per worker


def test_the_access_line_carries_the_request_id_of_its_request(broken: Logged) -> None:
    records, seen = broken
    access = [r for r in records if r["logger"] == "switchboard.access"]
    mine = [r for r in access if r["request_id"] == seen["ok_id"]]
    assert [(r["method"], r["path"], r["status"]) for r in mine] == [("GET", "/healthz", 200)]
    assert mine[0]["duration_ms"] >= 0
    assert mine[0]["client"].startswith("127.0.0.1:")
    failed = [r for r in access if r["request_id"] == "log-test-failure"]
    assert [(r["path"], r["status"]) for r in failed] == [("/api/v1/users/me", 500)]


def test_a_failure_is_one_record_with_its_request_id_and_traceback(broken: Logged) -> None:
    records, seen = broken
    response = seen["failed"]
    assert response.status_code == 500
    assert response.json()["code"] == "INTERNAL_SERVER_ERROR"
    assert response.headers["x-request-id"] == "log-test-failure"
    tracebacks = [r for r in records if "exception" in r and r["logger"] != "switchboard.jobs"]
    assert len(tracebacks) == 1, [r["message"] for r in tracebacks]
    (failure,) = tracebacks
    assert (failure["logger"], failure["level"], failure["request_id"]) == (
        "switchboard.errors",
        "ERROR",
        "log-test-failure",
    )
    assert failure["exception"].startswith("Traceback (most recent call last):")
    assert "no such table" in failure["exception"]
    assert not any("Exception in ASGI application" in r["message"] for r in records)


def test_a_database_away_is_one_warning_without_a_traceback(away: Logged) -> None:
    records, seen = away
    assert seen["failed"].status_code == 503
    assert seen["failed"].headers["retry-after"]
    outage = [r for r in records if r["message"].startswith("database unavailable")]
    assert len(outage) <= 2  # once per worker that met it: the request's worker, perhaps the other's sweeper
    assert outage
    assert all(r["level"] == "WARNING" and "exception" not in r for r in outage)
    assert not any("exception" in r for r in records if r["logger"] != "switchboard.bus")


def test_the_runner_and_the_bus_log_through_the_same_configuration(broken: Logged, away: Logged) -> None:
    jobs = [r for r in broken[0] if r["logger"] == "switchboard.jobs"]
    assert jobs
    assert all(r["level"] == "ERROR" and "Traceback" in r["exception"] for r in jobs)
    bus = [r for r in away[0] if r["logger"] == "switchboard.bus"]
    assert bus
    assert all(r["level"] == "WARNING" and "cannot listen" in r["message"] for r in bus)


def test_console_lines_read_time_level_logger_request_id_and_message() -> None:
    configure_logging("console", "INFO")
    (handler,) = [h for h in logging.getLogger().handlers if h.get_name() == HANDLER_NAME]
    record = logging.makeLogRecord(
        {"name": "switchboard.jobs", "levelno": logging.WARNING, "levelname": "WARNING"}
        | {"msg": "fetch job %s failed", "args": ("j1",)}
    )
    token = request_id_var.set("req-1")
    try:
        assert handler.filter(record)
    finally:
        request_id_var.reset(token)
    line = handler.format(record)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING switchboard\.jobs \[req-1\] fetch job j1 failed", line
    )


def test_the_same_exception_reported_twice_is_written_once() -> None:
    """What happens to a failure after its response began: our middleware logs it, then Starlette's
    handler and uvicorn report the same exception object again."""
    once = OncePerFailure()
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        info = (type(exc), exc, exc.__traceback__)
    first, again = (
        logging.makeLogRecord({"msg": m, "exc_info": info}) for m in ("ours", "Exception in ASGI application")
    )
    other = logging.makeLogRecord({"msg": "no exception"})
    assert [once.filter(r) for r in (first, again, other)] == [True, False, True]
