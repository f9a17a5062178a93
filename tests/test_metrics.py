"""/metrics after real traffic: HTTP by route template, GraphQL by type, name and error code, the
live gauges, events, jobs, fetches and the pool; off by a setting; summed over worker processes."""

import asyncio
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
from prometheus_client import REGISTRY
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from api import metrics
from api.app import create_app
from api.db.engine import Database
from api.middleware import MetricsMiddleware
from tests.conftest import TEST_SECRET, Serve, settings_for_tests
from tests.factories import bearer, graphql, make_user
from tests.processes import free_port, ready
from tests.sockets import socket
from tests.waiting import until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

FOLLOW = """subscription Follow($id: ID!) { fetchJobEvents(id: $id) {
  job { status completed } result { position outcome } } }"""


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(http: httpx2.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def gauge_reaches(http: httpx2.AsyncClient, name: str, target: float, **labels: str) -> None:
    """Until a scrape shows the gauge at ``target`` (a socket closes a moment after the client)."""

    async def reached() -> bool:
        return value(await scrape(http), name, **labels) == target

    await until(reached, within=2, what=f"{name}{labels} at {target}")


async def test_real_traffic_moves_the_counters(serve: Serve, live_database: Database, targets: str) -> None:
    user = await make_user(live_database, email="metrics-person@example.com")
    async with serve() as (url, app), httpx2.AsyncClient(base_url=url) as http:
        auth = bearer(app.state.settings, user)
        before = await scrape(http)

        assert (await http.get(f"/api/v1/users/{user.id}", headers=auth)).status_code == 200
        assert (await http.get(f"/api/v1/users/{uuid.uuid4()}", headers=auth)).status_code == 404
        assert (await http.head(f"/api/v1/users/{user.id}", headers=auth)).status_code == 200
        assert (await http.get("/no/such/path")).status_code == 404
        me = await graphql(http, "query Me { me { email } }", headers=auth)
        assert me["data"]["me"]["email"] == user.email
        refused = await graphql(http, "query Everyone { users { nodes { id } } }", headers=auth)
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        # A request may name any operation; one its document does not hold is no label.
        named_by_a_user = await http.post(
            "/graphql", json={"query": "query Me { me { id } }", "operationName": "alice@example.com"}
        )
        assert named_by_a_user.status_code == 400
        await graphql(http, "query Broken { me { nope } }")

        urls = [f"{targets}/ok", f"{targets}/status/404", f"{targets}/slow?s=0.3"]
        started = await http.post("/api/v1/fetch-jobs", json={"urls": urls}, headers=auth)
        async with socket(url, "graphql-transport-ws") as ws:
            assert (await ws.init(auth))["type"] == "connection_ack"
            await ws.subscribe("1", FOLLOW, {"id": started.json()["node_id"]})
            await ws.next("1")  # the job as it stands: the subscription runs
            during = await scrape(http)
            while True:
                event = (await asyncio.wait_for(ws.next("1"), 5))["data"]["fetchJobEvents"]
                if event["job"]["status"] == "DONE" and event["result"] is None:
                    break
            assert (await ws.receive())["type"] == "complete"
        await gauge_reaches(http, "switchboard_websockets_open", 0, protocol="graphql-transport-ws")
        after = await scrape(http)
        text = (await http.get("/metrics")).text

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "switchboard_http_requests_total"
    user_route = {"route": "/api/v1/users/{user_id}"}
    assert moved(requests, **user_route, method="GET", status="200") == 1
    assert moved(requests, **user_route, method="GET", status="404") == 1
    assert moved(requests, **user_route, method="HEAD", status="200") == 1  # through the scope's copy
    assert moved(requests, route="unmatched", method="GET", status="404") == 1
    assert moved(requests, route="/api/v1/fetch-jobs", method="POST", status="202") == 1
    assert moved("switchboard_http_request_duration_seconds_count", **user_route, method="GET") == 2

    operations = "switchboard_graphql_operations_total"
    assert moved(operations, type="query", operation="Me", error_code="none") == 1
    assert moved(operations, type="query", operation="Everyone", error_code="FORBIDDEN") == 1
    assert moved(operations, type="query", operation="Broken", error_code="GRAPHQL_VALIDATION_FAILED") == 1
    assert moved(operations, type="subscription", operation="Follow", error_code="none") == 1
    assert moved("switchboard_graphql_operation_duration_seconds_count", type="query", operation="Me") == 1
    assert value(during, "switchboard_graphql_subscriptions_active") == 1
    assert value(after, "switchboard_graphql_subscriptions_active") == 0
    assert value(during, "switchboard_websockets_open", protocol="graphql-transport-ws") == 1

    assert moved("switchboard_fetches_total", outcome="OK") == 2
    assert moved("switchboard_fetches_total", outcome="HTTP_ERROR") == 1
    for status in ("PENDING", "RUNNING", "DONE"):
        assert moved("switchboard_fetch_job_transitions_total", status=status) == 1
    # Created, claimed, three results, done: six events; the subscriber got the ones after its start.
    assert moved("switchboard_events_published_total") >= 6
    delivered = moved("switchboard_events_delivered_total", feed="job")
    assert delivered >= 2
    assert moved("switchboard_event_delivery_lag_seconds_count", feed="job") == delivered
    assert value(after, "switchboard_db_pool_waiting") == 0

    # Nothing of the user's in it: not their address, id or job, nor the name they chose.
    for private in (user.email, str(user.id), started.json()["id"], "alice"):
        assert private not in text
    assert moved(operations, type="unknown", operation="other", error_code="BAD_REQUEST") == 1


async def test_server_sent_events_streams_are_counted_while_open(
    serve: Serve, live_database: Database, targets: str
) -> None:
    user = await make_user(live_database)
    async with serve() as (url, app), httpx2.AsyncClient(base_url=url, timeout=5) as http:
        auth = bearer(app.state.settings, user)
        started = await http.post(
            "/api/v1/fetch-jobs", json={"urls": [f"{targets}/slow?s=0.5"]}, headers=auth
        )
        async with http.stream(
            "GET", f"/api/v1/fetch-jobs/{started.json()['id']}/events", headers=auth
        ) as sse:
            await anext(sse.aiter_lines())
            assert value(await scrape(http), "switchboard_sse_streams_open") == 1
        await gauge_reaches(http, "switchboard_sse_streams_open", 0)


async def test_metrics_off_is_a_404_with_no_middleware(database: Database) -> None:
    app = create_app(settings_for_tests(metrics_enabled=False), database=database)
    installed: list[object] = [middleware.cls for middleware in app.user_middleware]
    assert MetricsMiddleware not in installed
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://t") as http:
            assert (await http.get("/metrics")).status_code == 404
            assert (await http.get("/healthz")).status_code == 200


def test_operation_names_are_bounded() -> None:
    names = metrics.OperationNames(limit=2, max_length=8)
    assert names.label(None) == "anonymous"
    assert names.label("first") == "first"
    assert names.label("a.b@c") == "other"  # not a GraphQL name
    assert names.label("ninechars") == "other"  # too long
    assert names.label("second") == "second"
    assert names.label("third") == "other"  # past the cap
    assert names.label("first") == "first"  # kept ones stay


WORKER = textwrap.dedent(
    """
    import sys
    from api import metrics
    metrics.HTTP_REQUESTS.labels("/api/v1/users/{user_id}", "GET", "200").inc(int(sys.argv[1]))
    metrics.WEBSOCKETS_OPEN.labels("graphql-transport-ws").inc()
    print("counted", flush=True)
    sys.stdin.readline()  # stays alive (its sockets open) until told to go
    """
)
SCRAPE = "from api import metrics; print(metrics.exposition(metrics.exposition_registry()).decode())"


@contextmanager
def worker(directory: Path, requests: int) -> Iterator[subprocess.Popen[str]]:
    env = os.environ | {metrics.MULTIPROC_DIR_ENV: str(directory)}
    process = subprocess.Popen(  # noqa: S603 (this interpreter, our own script)
        [sys.executable, "-c", WORKER, str(requests)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "counted"
        yield process
    finally:
        process.communicate("", timeout=10)


def scrape_directory(directory: Path) -> Samples:
    env = os.environ | {metrics.MULTIPROC_DIR_ENV: str(directory)}
    output = subprocess.run(  # noqa: S603 (this interpreter, our own script)
        [sys.executable, "-c", SCRAPE], env=env, capture_output=True, text=True, check=True, timeout=20
    )
    return parse(output.stdout)


def test_a_scrape_sums_every_process_and_forgets_the_sockets_of_those_gone(tmp_path: Path) -> None:
    route = {"route": "/api/v1/users/{user_id}", "method": "GET", "status": "200"}
    sockets = {"protocol": "graphql-transport-ws"}
    with worker(tmp_path, 3):
        with worker(tmp_path, 4):
            both = scrape_directory(tmp_path)
        one_gone = scrape_directory(tmp_path)
    assert value(both, "switchboard_http_requests_total", **route) == 7
    assert value(both, "switchboard_websockets_open", **sockets) == 2
    assert value(one_gone, "switchboard_http_requests_total", **route) == 7  # what it counted happened
    assert value(one_gone, "switchboard_websockets_open", **sockets) == 1  # its socket did not outlive it


def test_serve_gives_several_workers_a_directory_of_their_own_removed_at_exit() -> None:
    script = (
        "from api import metrics; metrics.share_between_workers(2); print(metrics.multiprocess_directory())"
    )
    env = {k: v for k, v in os.environ.items() if k != metrics.MULTIPROC_DIR_ENV}
    done = subprocess.run(  # noqa: S603 (this interpreter, our own script)
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, timeout=20
    )
    directory = Path(done.stdout.strip())
    assert directory.name.startswith("switchboard-metrics-")
    assert not directory.exists()


@contextmanager
def serving_workers(port: int, database_url: str, workers: int, directory: Path) -> Iterator[None]:
    env = os.environ | {
        "SWITCHBOARD_DATABASE_URL": database_url,
        "SWITCHBOARD_SECRET_KEY": TEST_SECRET,
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
        metrics.MULTIPROC_DIR_ENV: str(directory),
    }
    command = [os.path.join(os.path.dirname(sys.executable), "switchboard"), "serve"]
    process = subprocess.Popen([*command, "--port", str(port), "--workers", str(workers)], env=env)  # noqa: S603
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


async def test_switchboard_serve_with_two_workers_answers_with_their_sum(
    live_database: Database, tmp_path: Path
) -> None:
    if live_database.engine.dialect.name != "postgresql":
        pytest.skip("several workers need PostgreSQL")
    with worker(tmp_path, 5):
        pass  # an earlier run's files, which the server clears as it starts
    port = free_port()
    url = live_database.engine.url.render_as_string(hide_password=False)
    with serving_workers(port, url, 2, tmp_path):
        async with ready(port):
            # Fresh connections, so that the kernel hands them to both workers.
            async def healthz() -> None:
                async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as fresh:
                    assert (await fresh.get("/healthz")).status_code == 200

            sent = 0

            async def both_served() -> bool:
                """Ten more; the kernel may hand a burst of connections to one worker alone."""
                nonlocal sent
                await asyncio.gather(*(healthz() for _ in range(10)))
                sent += 10
                return sent >= 40 and len([n for n in healthz_per_process(tmp_path).values() if n]) == 2

            await until(both_served, within=10, what="both workers to answer a /healthz")
            scrapes = []
            for _ in range(6):  # each on a connection of its own: it may reach either worker
                async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as fresh:
                    scrapes.append(await scrape(fresh))
            per_process = healthz_per_process(tmp_path)
    # Whichever worker answers the scrape, it reports every worker's requests, and only this run's.
    assert {value(s, "switchboard_http_requests_total", **HEALTHZ) for s in scrapes} == {sent}
    assert value(scrapes[0], "switchboard_http_requests_total", **USERS_ROUTE) == 0
    assert sum(per_process.values()) == sent
    assert len([count for count in per_process.values() if count]) == 2, per_process  # both served


HEALTHZ = {"route": "/healthz", "method": "GET", "status": "200"}
USERS_ROUTE = {"route": "/api/v1/users/{user_id}", "method": "GET", "status": "200"}


def healthz_per_process(directory: Path) -> dict[str, float]:
    """The /healthz requests each process counted, by its file."""
    return {
        file.name: value(parse_files([file]), "switchboard_http_requests_total", **HEALTHZ)
        for file in directory.glob("counter_*.db")
    }


def parse_files(files: list[Path]) -> Samples:
    """The samples of some processes' files alone."""
    merged = MultiProcessCollector.merge([str(file) for file in files])  # type: ignore[no-untyped-call]
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in merged
        for sample in family.samples
    }


def test_a_single_process_serves_its_own_registry() -> None:
    assert metrics.MULTIPROC_DIR_ENV not in os.environ
    assert metrics.exposition_registry() is REGISTRY
