"""Operational endpoints at the root: liveness, readiness, metrics, and the way to GraphiQL."""

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, RedirectResponse

from api import metrics
from api.deps import DatabaseDep, FeedsDep

router = APIRouter(tags=["system"])
# Included only when metrics are on (``Settings.metrics_enabled``); otherwise /metrics is a 404.
metrics_router = APIRouter(tags=["system"])


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


# Not in the OpenAPI document: it is for Prometheus, and present or not by a setting.
@metrics_router.get("/metrics", include_in_schema=False)
async def metrics_text() -> Response:
    """The Prometheus text format: this process's metrics, or with several workers all of theirs,
    summed. Labels hold templates, codes and states only, never a user's data (``api.metrics``)."""
    body = metrics.exposition(metrics.exposition_registry())
    return Response(body, media_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})
