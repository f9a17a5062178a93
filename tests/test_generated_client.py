"""A client generated from the committed ``openapi.json`` by a common generator
(openapi-python-client, from PyPI) builds and calls the service: the contract is one that tools
read, not only a document that validates."""

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from api.contracts import OPENAPI_PATH
from api.db.engine import Database
from tests.conftest import Serve
from tests.factories import bearer, make_user

PACKAGE = "switchboard_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package, generated into a scratch folder and imported from there."""
    folder = tmp_path_factory.mktemp("client")
    tool = Path(sys.executable).parent / "openapi-python-client"
    command = [str(tool), "generate", "--path", str(OPENAPI_PATH), "--meta", "none"]
    command += ["--output-path", str(folder / PACKAGE)]
    bin_path = str(Path(sys.executable).parent)  # its formatting hook runs our ruff
    environment = {"PATH": bin_path}
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=environment)  # noqa: S603 (the dev tool, fixed arguments)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


async def test_the_generated_client_reads_the_signed_in_user(
    generated: ModuleType, serve: Serve, live_database: Database
) -> None:
    read_me = importlib.import_module(f"{PACKAGE}.api.users.read_me")
    user = await make_user(live_database, display_name="Generated")
    async with serve() as (url, app):
        token = bearer(app.state.settings, user)["Authorization"].removeprefix("Bearer ")
        client = generated.AuthenticatedClient(base_url=url, token=token)
        async with client:
            answer = await read_me.asyncio_detailed(client=client)
        assert answer.status_code == 200
        me = answer.parsed
        assert (me.email, me.display_name, str(me.id)) == (user.email, "Generated", str(user.id))
        anonymous = generated.Client(base_url=url)
        async with anonymous:
            refused = await read_me.asyncio_detailed(client=anonymous)
        assert refused.status_code == 401
        assert b'"code":"UNAUTHENTICATED"' in refused.content
