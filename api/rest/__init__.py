"""The REST compatibility layer (``/api/v1``): thin adapters over the same services GraphQL uses."""

from fastapi import APIRouter

from api.rest import api_keys, auth, events, exports, fetch, users

router = APIRouter(prefix="/api/v1")
router.include_router(auth.router)
router.include_router(users.router)
router.include_router(api_keys.router)
router.include_router(fetch.router)
router.include_router(exports.router)
router.include_router(events.router)
