"""The REST layer's route class, for what every route gets from its declaration alone: a short
OpenAPI summary from the first sentence of its docstring, the refusals it can answer documented
from what it takes (``refusals_of``), and a deprecated route's headers on every answer its
handler returns (``api.rest.deprecation``; a refusal raised before it returns goes without)."""

from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase

from api.problems import refusals
from api.rest.deprecation import Deprecation


def first_sentence(text: str) -> str:
    """The docstring's first sentence, on one line, without its full stop; its reST literals as
    Markdown's, which OpenAPI renders."""
    joined = " ".join(text.split()).replace("``", "`")
    sentence = joined.split(". ", 1)[0].split("; ", 1)[0]
    return sentence.removesuffix(".")


def _nodes(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for dependency in dependant.dependencies:
        yield from _nodes(dependency)


def refusals_of(path: str, endpoint: Callable[..., Any]) -> dict[int | str, dict[str, Any]]:
    """The problem documents a route can answer, read from what it takes: credentials (401, 403),
    a resource in its path (404), ``If-Match`` (412), any input (422), and the database (503,
    every route). Refusals that depend on the rule a service applies (409, 429) the route declares
    itself (``api.problems.refusals``)."""
    nodes = list(_nodes(get_dependant(path=path, call=endpoint)))
    headers = [
        param
        for node in nodes
        for param in node.header_params
        if getattr(param.field_info, "include_in_schema", True)
    ]
    statuses = [503]
    if any(isinstance(node.call, SecurityBase) for node in nodes):
        statuses += [401, 403]
    if any(node.path_params for node in nodes):
        statuses.append(404)
    if any(param.alias.lower() == "if-match" for param in headers):
        statuses.append(412)
    if headers or any(node.path_params or node.query_params or node.body_params for node in nodes):
        statuses.append(422)
    return refusals(*sorted(statuses))


class Route(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        kwargs["responses"] = {**refusals_of(path, endpoint), **(kwargs.get("responses") or {})}
        super().__init__(path, endpoint, **kwargs)
        if kwargs.get("summary") is None and self.description:
            self.summary = first_sentence(self.description)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        deprecation = Deprecation.of(self)
        if deprecation is None:
            return handler

        async def marked(request: Request) -> Response:
            response = await handler(request)
            for name, value in deprecation.headers(request.path_params).items():
                response.headers.append(name, value)  # appended: a page's own Link stays
            return response

        return marked
