"""Starting servers and load for a benchmark: uvicorn processes on free ports, wrk, and CPU time."""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str

    def cpu_seconds(self) -> float:
        """User and system CPU time so far of the server process and the workers it started (Linux
        ``/proc``)."""
        processes = _processes()
        parents = {pid: process.parent for pid, process in processes.items()}

        def ours(pid: int) -> bool:
            while pid > 1:
                if pid == self.process.pid:
                    return True
                pid = parents.get(pid, 0)
            return False

        return sum(process.ticks for pid, process in processes.items() if ours(pid)) / CLOCK_TICKS


def database_cpu_seconds() -> float:
    """User and system CPU time so far of this machine's PostgreSQL processes (Linux ``/proc``): what
    the database spends answering a target, beside what its server spends."""
    return sum(p.ticks for p in _processes().values() if p.name == "postgres") / CLOCK_TICKS


@dataclass(frozen=True)
class _Process:
    name: str
    parent: int
    ticks: int  # user and system CPU time


def _processes() -> dict[int, _Process]:
    found: dict[int, _Process] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except (OSError, ValueError):  # the process ended meanwhile
            continue
        fields = tail.split()
        name = head.split("(", 1)[1]
        found[int(stat.parent.name)] = _Process(name, int(fields[1]), int(fields[11]) + int(fields[12]))
    return found


@contextmanager
def uvicorn(
    target: str, *, factory: bool = False, env: dict[str, str] | None = None, workers: int = 1
) -> Iterator[Server]:
    """uvicorn (uvloop, httptools, no access log; ``workers`` processes) serving ``target`` until the
    block ends."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", target, "--port", str(port), "--no-access-log"]
    command += ["--log-level", "warning", "--loop", "uvloop", "--http", "httptools"]
    if factory:
        command.append("--factory")
    if workers > 1:
        command += ["--workers", str(workers)]
    with _serving(command, port, env, target) as server:
        yield server


POSTGRAPHILE = ROOT / "bench" / "postgraphile"


@contextmanager
def postgraphile(database_url: str, *, workers: int = 1) -> Iterator[Server]:
    """PostGraphile 4 (the version in ``bench/postgraphile/package-lock.json``, installed with
    ``npm ci`` on first use) serving the ``public`` schema of ``database_url`` until the block ends."""
    binary = POSTGRAPHILE / "node_modules" / ".bin" / "postgraphile"
    if not binary.exists():
        if shutil.which("npm") is None:
            raise SystemExit("bench: npm is needed for PostGraphile (Debian/Ubuntu: apt-get install npm)")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=POSTGRAPHILE, check=True)  # noqa: S607
    port = free_port()
    connection = re.sub(r"^postgresql\+\w+://", "postgres://", database_url)
    command = [str(binary), "-c", connection, "-s", "public", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--disable-query-log", "--disable-graphiql"]
    if workers > 1:
        command += ["--cluster-workers", str(workers)]
    with _serving(command, port, {"NODE_ENV": "production"}, "postgraphile") as server:
        yield server


@contextmanager
def switchboard(env: dict[str, str]) -> Iterator[Server]:
    """``switchboard serve``, as deployed (one worker), until the block ends."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "switchboard"), "serve", "--port", str(port)]
    with _serving(command, port, env, "switchboard serve") as server:
        yield server


@contextmanager
def _serving(command: list[str], port: int, env: dict[str, str] | None, name: str) -> Iterator[Server]:
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})})  # noqa: S603
    server = Server(process, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        with httpx2.Client(timeout=1) as client:
            while True:
                try:
                    client.get(server.url + "/")
                    break
                except httpx2.TransportError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError(f"{name} did not start") from None
                    time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(
    url: str,
    *,
    seconds: int,
    connections: int,
    body: str | None = None,
    headers: dict[str, str] | None = None,
) -> Load:
    """Load ``url`` with wrk (GET, or POST when ``body`` is given) and read its report."""
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is needed (Debian/Ubuntu: apt-get install wrk)")
    lines = [f'wrk.headers["{k}"] = "{v}"' for k, v in (headers or {}).items()]
    if body is not None:
        lines += ['wrk.method = "POST"', f"wrk.body = [==[{body}]==]"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write("\n".join(lines) + "\n")
        script.flush()
        command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency"]
        command += ["-s", script.name, url]
        report = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603
    done = re.search(r"(\d+) requests in ([\d.]+)(s|m)", report)
    assert done is not None, report
    percentiles = dict(re.findall(r"^ *(50|99)% +(\S+) *$", report, re.MULTILINE))
    assert set(percentiles) == {"50", "99"}, report
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report)
    errors = (int(failed.group(1)) if failed else 0) + (
        sum(map(int, socket_errors.groups())) if socket_errors else 0
    )
    elapsed = float(done.group(2)) * (60 if done.group(3) == "m" else 1)
    return Load(int(done.group(1)), elapsed, _ms(percentiles["50"]), _ms(percentiles["99"]), errors)
