"""The app every parity module runs its scenarios against: one per module, as ``module_app`` builds
it, allowed to fetch from the local target server."""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import fetch_settings
from tests.parity import Served, module_app


@pytest.fixture(scope="module")
async def served(engine: AsyncEngine) -> AsyncIterator[Served]:
    async with module_app(engine, fetch_settings()) as app:
        yield app
