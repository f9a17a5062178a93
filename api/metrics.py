"""The service's Prometheus metrics, defined once for every layer that records them.

Only ``prometheus_client`` is imported here, so the bus, the services, the fetcher and the database
layer record their own facts without reaching up into the web framework. Labels hold route
templates, operation types, codes, outcomes and states: never a path, an id, an address or anything
else a user typed (GraphQL operation names, which clients choose, go through ``OperationNames``).

With several worker processes (``switchboard serve --workers N``) the values live in files under
``PROMETHEUS_MULTIPROC_DIR`` and a scrape of any worker sums them (``exposition``); gauges say how
(``livesum``: the sum over the workers alive). prometheus-client chooses its storage when it is
first imported, so the variable must be set before the workers start (``share_between_workers``).
"""

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

MULTIPROC_DIR_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

# Latencies of this service run from a fraction of a millisecond (a cached read) to seconds (a
# one-shot fetch): the low buckets are fine-grained so the read path's percentiles mean something.
LATENCY_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_REQUESTS = Counter(
    "switchboard_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ("route", "method", "status"),
)
HTTP_DURATION = Histogram(
    "switchboard_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response (a stream's whole life), by route template "
    "and method.",
    ("route", "method"),
    buckets=LATENCY_BUCKETS,
)

GRAPHQL_OPERATIONS = Counter(
    "switchboard_graphql_operations",
    "GraphQL operations finished, by type, operation name and the code of their first error ('none').",
    ("type", "operation", "error_code"),
)
GRAPHQL_DURATION = Histogram(
    "switchboard_graphql_operation_duration_seconds",
    "Time a GraphQL query or mutation took, parsing to result (subscriptions are not timed: they last "
    "as long as their client wants).",
    ("type", "operation"),
    buckets=LATENCY_BUCKETS,
)

WEBSOCKETS_OPEN = Gauge(
    "switchboard_websockets_open",
    "GraphQL WebSockets open, by subprotocol.",
    ("protocol",),
    multiprocess_mode="livesum",
)
SUBSCRIPTIONS_ACTIVE = Gauge(
    "switchboard_graphql_subscriptions_active",
    "GraphQL subscriptions running (the sockets following one relay count once: their deliveries are "
    "switchboard_events_delivered).",
    multiprocess_mode="livesum",
)
SSE_STREAMS_OPEN = Gauge(
    "switchboard_sse_streams_open",
    "Server-Sent Event streams open.",
    multiprocess_mode="livesum",
)

EVENTS_PUBLISHED = Counter(
    "switchboard_events_published",
    "Events announced on the bus by transactions that committed.",
)
EVENTS_DELIVERED = Counter(
    "switchboard_events_delivered",
    "Updates a live feed handed to a subscriber for an event, by feed.",
    ("feed",),
)
DELIVERY_LAG = Histogram(
    "switchboard_event_delivery_lag_seconds",
    "Time from an event's announcement to its update leaving the live feed for a subscriber, by feed.",
    ("feed",),
    buckets=LATENCY_BUCKETS,
)
SUBSCRIBERS_CUT_OFF = Counter(
    "switchboard_subscribers_cut_off",
    "Subscribers ended because their queue of events overflowed (too slow).",
)
BUS_RECONNECTS = Counter(
    "switchboard_bus_reconnects",
    "Times the PostgreSQL event bus listened again after losing its connection.",
)

JOB_TRANSITIONS = Counter(
    "switchboard_fetch_job_transitions",
    "Fetch jobs entering a status (created PENDING, claimed RUNNING, DONE, FAILED, CANCELLED).",
    ("status",),
)
FETCHES = Counter(
    "switchboard_fetches",
    "URLs fetched, by outcome.",
    ("outcome",),
)

DB_POOL_IN_USE = Gauge(
    "switchboard_db_pool_connections_in_use",
    "Database connections checked out of the pool.",
    multiprocess_mode="livesum",
)
DB_POOL_WAITING = Gauge(
    "switchboard_db_pool_waiting",
    "Callers waiting for a database connection (the pool is exhausted, or a new connection is opening).",
    multiprocess_mode="livesum",
)


class OperationNames:
    """Bounds the ``operation`` label: a client names its operations, and each new name would be a
    new set of series. A name is kept if it is a plain GraphQL name of at most ``max_length``
    characters, and only for the first ``limit`` distinct names this process sees; any other is
    ``other``, a nameless operation ``anonymous``. (With N workers, at most N times ``limit`` names.)"""

    OTHER: Final = "other"
    ANONYMOUS: Final = "anonymous"

    def __init__(self, limit: int = 200, max_length: int = 64) -> None:
        self.limit = limit
        self._pattern = re.compile(rf"[A-Za-z_][A-Za-z0-9_]{{0,{max_length - 1}}}")
        self._kept: set[str] = set()

    def label(self, name: str | None) -> str:
        if name is None:
            return self.ANONYMOUS
        if name in self._kept:
            return name
        if len(self._kept) >= self.limit or not self._pattern.fullmatch(name):
            return self.OTHER
        self._kept.add(name)
        return name


def share_between_workers(workers: int) -> None:
    """Give the worker processes a directory for their values, before they start (they inherit the
    environment; prometheus-client reads it when first imported). A directory of ours is new for
    each run and removed when the server exits; one the operator set is cleared of the files earlier
    runs left (every process's but this one's, which may be writing there already). A single
    process needs none: its own registry is the truth."""
    given = os.environ.get(MULTIPROC_DIR_ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        mine = f"_{os.getpid()}.db"
        for stale in directory.glob("*.db"):
            if not stale.name.endswith(mine):
                stale.unlink(missing_ok=True)
        return
    if workers > 1:
        path = tempfile.mkdtemp(prefix="switchboard-metrics-")
        os.environ[MULTIPROC_DIR_ENV] = path
        atexit.register(shutil.rmtree, path, ignore_errors=True)


_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


def _forget_dead_workers(directory: str) -> None:
    """Drop the live gauges (open sockets, connections in use) of workers that have exited, however
    they went: uvicorn's supervisor, which replaces them, offers no hook for it. Their counters stay:
    what they counted did happen."""
    for name in os.listdir(directory):
        found = _LIVE_GAUGE_FILE.fullmatch(name)
        if found is None:
            continue
        pid = int(found[1])
        try:
            os.kill(pid, 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # it exists, under another user


def multiprocess_directory() -> str | None:
    """Where the workers' values go, if there are several."""
    return os.environ.get(MULTIPROC_DIR_ENV)


def multiprocess() -> bool:
    """Whether values go to files shared by the worker processes (and a scrape must sum them)."""
    return MULTIPROC_DIR_ENV in os.environ


def exposition_registry() -> CollectorRegistry:
    """What a scrape reads: this process's registry, or, with several workers, every worker's files
    summed (built once; it reads the files again on every scrape)."""
    if not multiprocess():
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The metrics in the Prometheus text format."""
    directory = os.environ.get(MULTIPROC_DIR_ENV)
    if directory and registry is not REGISTRY:
        _forget_dead_workers(directory)
    return generate_latest(registry)
