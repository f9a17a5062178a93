"""Operational endpoints at the root: liveness, readiness, and the way to GraphiQL."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse, RedirectResponse

from api.deps import DatabaseDep, FeedsDep

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (no dependency is checked)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "A dependency is unreachable."}})
async def readyz(database: DatabaseDep, feeds: FeedsDep) -> JSONResponse:
    """The process can serve: the database answers and the event bus listens."""
    checks = {
        "database": "ok" if await database.ping() else "unreachable",
        "bus": "ok" if feeds.bus.ready else "unreachable",
    }
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", **checks}, status_code=200 if ready else 503
    )


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse("/graphql")
