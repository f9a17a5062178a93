"""The connection pool, measured: connections checked out, and callers waiting for one.

SQLAlchemy's pool events tell when a connection is checked out and in, but nothing of a caller
still waiting for one, which is the sign of a pool too small for its load. So the pool is ours: a
subclass of the async queue pool that counts around ``_do_get`` (the call that waits, when the pool
and its overflow are used up, or opens a new connection) and ``_do_return_conn``. A pool that
``engine.dispose()`` recreates is of the same class, so the counting goes on.
"""

from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from api.metrics import DB_POOL_IN_USE, DB_POOL_WAITING


class MeasuredPool(AsyncAdaptedQueuePool):
    def _do_get(self) -> ConnectionPoolEntry:
        DB_POOL_WAITING.inc()
        try:
            record = super()._do_get()
        finally:
            DB_POOL_WAITING.dec()
        DB_POOL_IN_USE.inc()
        return record

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        DB_POOL_IN_USE.dec()
        super()._do_return_conn(record)


def measured_pool(url: URL) -> dict[str, Any]:
    """The engine options that measure its pool, when the dialect would use the async queue pool
    (PostgreSQL, an SQLite file); none for another pool (an in-memory SQLite database's static one,
    where nobody waits and one connection is always out)."""
    dialect: Any = url.get_dialect()  # a dialect class; its typing leaves ``get_pool_class`` out
    if dialect.get_pool_class(url) is AsyncAdaptedQueuePool:
        return {"poolclass": MeasuredPool}
    return {}
