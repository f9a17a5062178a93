"""Operational endpoints at the root: liveness, readiness, and the way to GraphiQL."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse, RedirectResponse

from api.deps import DatabaseDep

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (no dependency is checked)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "A dependency is unreachable."}})
async def readyz(database: DatabaseDep) -> JSONResponse:
    """The process can serve: the database answers."""
    if not await database.ping():
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse("/graphql")
