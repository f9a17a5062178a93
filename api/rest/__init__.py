"""The REST compatibility layer (``/api/v1``): thin adapters over the same services GraphQL uses."""

from fastapi import APIRouter

from api.problems import PROBLEM_RESPONSES
from api.rest import api_keys, auth, events, exports, fetch, users

router = APIRouter(prefix="/api/v1")
router.include_router(auth.router)  # its errors are RFC 6749's, not problem documents
router.include_router(users.router, responses=PROBLEM_RESPONSES)
router.include_router(api_keys.router, responses=PROBLEM_RESPONSES)
router.include_router(fetch.router, responses=PROBLEM_RESPONSES)
router.include_router(exports.router, responses=PROBLEM_RESPONSES)
router.include_router(events.router, responses=PROBLEM_RESPONSES)
