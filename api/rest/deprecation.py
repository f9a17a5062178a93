"""Deprecated routes, declared once on the route (``**Deprecation(...).route()``, read back by
``api.rest.routing.Route``): OpenAPI marks the operation ``deprecated`` with its sunset and
successor (``x-sunset``, ``x-successor``), and every answer of the route carries ``Deprecation``
(RFC 9745), ``Sunset`` (RFC 8594) and a ``Link`` to the successor (``rel="successor-version"``,
RFC 5829), so a legacy client's logs show it in time. ``/api/v1`` stays as it is until a sunset
passes; a v2 would be another router beside it (README, "HTTP conventions on REST").
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any

from fastapi.routing import APIRoute

_KEY = "x-sunset"


@dataclass(frozen=True, slots=True)
class Deprecation:
    since: date
    sunset: date
    successor: str  # a path, with the route's own parameters in braces: "/api/v1/jobs/{job_id}"
    reason: str

    def route(self) -> dict[str, Any]:
        """The route decorator's arguments that mark it."""
        extra = {
            _KEY: self.sunset.isoformat(),
            "x-successor": self.successor,
            "x-deprecated-since": self.since.isoformat(),
            "x-deprecation-reason": self.reason,
        }
        return {"deprecated": True, "openapi_extra": extra}

    @classmethod
    def of(cls, route: APIRoute) -> "Deprecation | None":
        extra = route.openapi_extra or {}
        if _KEY not in extra:
            return None
        return cls(
            date.fromisoformat(extra["x-deprecated-since"]),
            date.fromisoformat(extra[_KEY]),
            extra["x-successor"],
            extra["x-deprecation-reason"],
        )

    def headers(self, path_params: dict[str, Any]) -> dict[str, str]:
        since = datetime.combine(self.since, datetime.min.time(), UTC)
        sunset = datetime.combine(self.sunset, datetime.min.time(), UTC)
        return {
            "Deprecation": f"@{int(since.timestamp())}",
            "Sunset": format_datetime(sunset, usegmt=True),
            "Link": f'<{self.successor.format(**path_params)}>; rel="successor-version"',
        }
