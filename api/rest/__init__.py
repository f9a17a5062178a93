"""The REST compatibility layer (``/api/v1``): thin adapters over the same services GraphQL uses."""

from fastapi import APIRouter

from api.rest import auth, users

router = APIRouter(prefix="/api/v1")
router.include_router(auth.router)
router.include_router(users.router)
