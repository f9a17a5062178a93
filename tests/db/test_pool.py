"""The pool the app's engines use, measured: connections in use and callers waiting for one."""

import asyncio
from pathlib import Path

from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import create_async_engine

from api.db.engine import create_engine
from api.db.pool import MeasuredPool
from tests.waiting import until_true


async def test_the_pool_counts_callers_waiting_for_a_connection(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}"
    assert isinstance(create_engine(url).pool, MeasuredPool)  # the app's engines measure their pool
    engine = create_async_engine(url, poolclass=MeasuredPool, pool_size=1, max_overflow=0)

    def waiting() -> float:
        return REGISTRY.get_sample_value("switchboard_db_pool_waiting") or 0.0

    def in_use() -> float:
        return REGISTRY.get_sample_value("switchboard_db_pool_connections_in_use") or 0.0

    start_waiting, start_in_use = waiting(), in_use()
    try:
        async with engine.connect():
            assert in_use() == start_in_use + 1
            second = asyncio.create_task(engine.connect().start())
            # Blocked: the pool's one connection is out.
            await until_true(lambda: waiting() == start_waiting + 1, what="a caller waiting for the pool")
        connection = await asyncio.wait_for(second, 5)
        assert (waiting(), in_use()) == (start_waiting, start_in_use + 1)
        await connection.close()
        assert in_use() == start_in_use
    finally:
        await engine.dispose()
