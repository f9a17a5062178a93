"""The production image and compose.yaml, checked as far as that goes without a Docker engine: the
Dockerfile's settings are read from the file, and its default command runs here with its environment."""

import ast
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import packages_distributions
from pathlib import Path

import httpx2
import yaml

from api.serving import GRACE_SECONDS
from tests.conftest import TEST_SECRET
from tests.processes import free_port
from tests.waiting import blocking_until

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = {"api", "schema", "resolvers", "alembic", "tests", "bench"}
DEV_TOOLS = {"pytest", "pytest-asyncio", "mypy", "ruff", "hatchling"}


@dataclass
class Stage:
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [argument for word, argument in self.instructions if word == keyword]

    def env(self) -> dict[str, str]:
        pairs = (shlex.split(line) for line in self.all("ENV"))
        return dict(pair.split("=", 1) for words in pairs for pair in words)


def dockerfile() -> dict[str, Stage]:
    """The Dockerfile's stages by name, each a list of (instruction, argument) with continued lines
    joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, argument = line.partition(" ")
        if keyword == "FROM":
            stage = stages.setdefault(argument.split()[-1], Stage(argument.split()[-1]))
        assert stage is not None, "an instruction before FROM"
        stage.instructions.append((keyword, argument.strip()))
    return stages


def lock_names(lock: str) -> set[str]:
    text = (ROOT / "requirements" / lock).read_text()
    return {match.lower() for match in re.findall(r"^([A-Za-z0-9._-]+)==", text, re.MULTILINE)}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules(*folders: str) -> set[str]:
    """The top-level modules the code in ``folders`` imports."""
    modules: set[str] = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules.add(node.module.split(".")[0])
    return modules


def test_every_module_the_service_imports_comes_from_the_runtime_lock() -> None:
    runtime = {_normalized(name) for name in lock_names("runtime.lock")}
    providers = packages_distributions()
    third_party = imported_modules("api", "schema", "resolvers", "alembic") - FIRST_PARTY
    missing = {
        module: providers.get(module)
        for module in third_party - set(sys.stdlib_module_names)
        if not {_normalized(dist) for dist in providers.get(module, [])} & runtime
    }
    assert missing == {}
    assert not DEV_TOOLS & runtime


def test_the_development_lock_holds_the_runtime_lock_at_the_same_versions() -> None:
    def pins(lock: str) -> set[str]:
        text = (ROOT / "requirements" / lock).read_text()
        return set(re.findall(r"^([A-Za-z0-9._-]+==\S+)", text, re.MULTILINE))

    assert pins("runtime.lock") <= pins("dev.lock")
    assert {"pip", "hatchling"} <= lock_names("bootstrap.lock")
    for lock in ("bootstrap.lock", "runtime.lock", "dev.lock"):
        text = (ROOT / "requirements" / lock).read_text()
        assert text.count("==") <= text.count("--hash=sha256:"), f"{lock} pins a package without a hash"


def test_the_image_installs_runtime_dependencies_only() -> None:
    stages = dockerfile()
    build = " ".join(stages["build"].all("RUN"))
    assert "--require-hashes -r requirements/runtime.lock" in build
    assert "dev.lock" not in (ROOT / "Dockerfile").read_text()
    copied = " ".join(stage_copy for stage in stages.values() for stage_copy in stage.all("COPY"))
    assert not {"tests", "bench"} & set(copied.split())
    build_only = lock_names("bootstrap.lock") - lock_names("runtime.lock") - {"pip"}
    assert f"pip uninstall --yes {' '.join(sorted(build_only))}" in build
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".env", "tests", "bench", "*.db"} <= ignored


def test_the_image_runs_in_production_as_a_user_who_owns_its_data() -> None:
    runtime = list(dockerfile().values())[-1]
    env = runtime.env()
    assert env["SWITCHBOARD_ENVIRONMENT"] == "production"
    user = runtime.all("USER")[-1]
    assert user not in {"root", "0"}
    data = Path(env["SWITCHBOARD_DATABASE_URL"].split(":///", 1)[1]).parent
    setup = " ".join(runtime.all("RUN"))
    assert f"chown {user}:{user} {data}" in setup
    assert runtime.all("VOLUME") == [str(data)]


def _image_command(tmp_path: Path, **env: str) -> tuple[list[str], dict[str, str]]:
    """The image's default command and environment, with its data directory moved into ``tmp_path``
    and the commands taken from this virtual environment (what /venv/bin is in the image)."""
    runtime = list(dockerfile().values())[-1]
    image_env = {
        key: value.replace("/data/", f"{tmp_path}/")
        for key, value in runtime.env().items()
        if key.startswith("SWITCHBOARD_")
    }
    base = {key: value for key, value in os.environ.items() if not key.startswith("SWITCHBOARD_")}
    command = ast.literal_eval(runtime.all("CMD")[-1])
    command[0] = str(Path(sys.executable).parent / command[0])
    return command, base | image_env | env


def _run(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own command)
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_default_command_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    command, env = _image_command(tmp_path)
    result = _run(command, env, tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "SWITCHBOARD_SECRET_KEY is the development default" in result.stderr


def test_the_default_command_refuses_several_workers_on_sqlite(tmp_path: Path) -> None:
    command, env = _image_command(tmp_path, SWITCHBOARD_SECRET_KEY=TEST_SECRET)
    result = _run(command, env, tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "--workers 2 needs PostgreSQL" in result.stderr


def test_the_image_serves_with_introspection_and_suggestions_off(tmp_path: Path) -> None:
    command, env = _image_command(tmp_path, SWITCHBOARD_SECRET_KEY=TEST_SECRET)
    migrated = _run([command[0], "migrate"], env, tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    port = free_port()
    serve = [*command[:2], "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    server = subprocess.Popen(serve, env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:

            def answers() -> bool:
                try:
                    return client.get("/readyz").status_code == 200
                except httpx2.TransportError:
                    return False

            blocking_until(answers, within=10, what="the image's server to become ready")
            introspection = client.post("/graphql", json={"query": "{ __schema { types { name } } }"})
            typo = client.post("/graphql", json={"query": "{ mee { id } }"})
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "data" not in introspection.json() or introspection.json()["data"] is None
    assert "introspection" in introspection.text.lower()
    assert "Did you mean" not in typo.text
    assert "mee" in typo.json()["errors"][0]["message"]


def test_compose_migrates_once_then_serves_on_postgresql() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "app"}
    assert "healthcheck" in services["postgres"]
    assert "healthcheck" in services["app"]
    assert services["migrate"]["command"] == ["switchboard", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["app"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    for name in ("migrate", "app"):
        env = services[name]["environment"]
        assert env["SWITCHBOARD_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in env["SWITCHBOARD_DATABASE_URL"]
        # Compose stops with this message unless the operator gives a secret: no default.
        assert env["SWITCHBOARD_SECRET_KEY"].startswith("${SWITCHBOARD_SECRET_KEY:?")
    assert int(services["app"]["stop_grace_period"].removesuffix("s")) > GRACE_SECONDS
