"""The REST layer's route class, for what every route gets from its declaration alone: a short
OpenAPI summary from the first sentence of its docstring, and a deprecated route's headers on
every answer it makes (``api.rest.deprecation``)."""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from api.rest.deprecation import Deprecation


def first_sentence(text: str) -> str:
    """The docstring's first sentence, on one line, without its full stop; its reST literals as
    Markdown's, which OpenAPI renders."""
    joined = " ".join(text.split()).replace("``", "`")
    sentence = joined.split(". ", 1)[0].split("; ", 1)[0]
    return sentence.removesuffix(".")


class Route(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
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
