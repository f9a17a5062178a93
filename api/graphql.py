"""The ``/graphql`` endpoint: Strawberry's router, its context built from our FastAPI dependencies,
and the response rules of the GraphQL over HTTP specification."""

from typing import Any

from cross_web import AsyncHTTPRequestAdapter
from cross_web import HTTPException as StrawberryHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET

from api.deps import (
    ApiKeyDep,
    BearerDep,
    BodyReadFirst,
    ClientAddressDep,
    FetcherDep,
    JobsDep,
    LimiterDep,
    SessionDep,
    SettingsDep,
)
from api.errors import Unauthenticated
from api.services import auth
from resolvers.context import Context
from schema.errors import escaped_errors_rendered, request_error_extensions
from schema.root import Schema

GRAPHQL_RESPONSE = "application/graphql-response+json"
PREFLIGHT_HEADERS = ("GraphQL-Require-Preflight", "Apollo-Require-Preflight", "X-Apollo-Operation-Name")


async def get_context(
    _body: BodyReadFirst,
    session: SessionDep,
    settings: SettingsDep,
    bearer: BearerDep,
    api_key: ApiKeyDep,
    limiter: LimiterDep,
    client: ClientAddressDep,
    fetcher: FetcherDep,
    jobs: JobsDep,
) -> Context:
    """The context of one operation, from the same dependencies and service the REST routes use."""
    caller, refusal = None, None
    try:
        caller = await auth.identify(session, settings, bearer=bearer, api_key=api_key)
    except Unauthenticated as exc:
        refusal = exc
    return Context(
        session=session,
        caller=caller,
        settings=settings,
        attempt=auth.Attempt(limiter, client),
        fetcher=fetcher,
        jobs=jobs,
        refusal=refusal,
    )


def _accepts_graphql_response(request: Request) -> bool:
    return GRAPHQL_RESPONSE in request.headers.get("accept", "")


class GraphQLApp(GraphQLRouter[Context, None]):
    """Strawberry's router, answering as GraphQL over HTTP asks.

    With ``Accept: application/graphql-response+json`` a document that cannot run (it does not parse
    or validate, or its variables do not fit) is a 400 with no ``data`` entry; plain JSON clients get
    200 as before. Malformed requests get a GraphQL-shaped error body, not plain text.
    """

    def __init__(self, schema: Schema, **kwargs: Any) -> None:
        # No WebSocket protocol until there are subscriptions: Strawberry would otherwise run queries and
        # mutations over a socket inside one context, hence one session and transaction, for its lifetime.
        super().__init__(
            schema,
            context_getter=get_context,
            subscription_protocols=(),
            multipart_uploads_enabled=True,
            **kwargs,
        )

    async def parse_multipart(self, request: AsyncHTTPRequestAdapter) -> dict[str, str]:
        """Uploads (the GraphQL multipart request specification), from scripts and apps only.

        A browser sends a cross-site ``multipart/form-data`` POST without a CORS preflight, with the
        user's cookies, so a page elsewhere could start a job in their name. Asking for a header that
        no plain form can set, as Apollo's CSRF prevention does, forces that preflight.
        """
        if not any(request.headers.get(name) for name in PREFLIGHT_HEADERS):
            raise StrawberryHTTPException(
                400,
                "Multipart requests must carry a non-empty "
                f"{' or '.join(PREFLIGHT_HEADERS)} header (CSRF protection).",
            )
        return await super().parse_multipart(request)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        if result.errors:
            result.errors = escaped_errors_rendered(result.errors)
        body = await super().process_result(request, result)
        if result.data is None and result.errors and all(e.path is None for e in result.errors):
            request.state.graphql_request_error = True
            if _accepts_graphql_response(request):
                body.pop("data", None)
        return body

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """As Strawberry's, but a mutation sent with GET is 405, as GraphQL over HTTP requires."""
        try:
            return await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        except StrawberryHTTPException as exc:
            if isinstance(exc.__cause__, InvalidOperationTypeError) and request_adapter.method == "GET":
                raise StrawberryHTTPException(405, exc.reason) from exc
            raise

    async def run(  # type: ignore[override]
        self,
        request: Request | WebSocket,
        context: Context = UNSET,
        root_value: None = UNSET,
    ) -> Response | WebSocket:
        try:
            response = await super().run(request, context=context, root_value=root_value)
            if isinstance(response, Response) and isinstance(request, Request) and request.method == "POST":
                response.headers["Cache-Control"] = "no-store"  # answers may carry tokens and secrets
        except StrawberryHTTPException as exc:
            body = {"errors": [{"message": exc.reason, "extensions": request_error_extensions()}]}
            return JSONResponse(body, status_code=exc.status_code)
        if (
            isinstance(response, Response)
            and response.media_type == "application/json"
            and isinstance(request, Request)
            and _accepts_graphql_response(request)
        ):
            response.headers["content-type"] = GRAPHQL_RESPONSE
            if getattr(request.state, "graphql_request_error", False):
                response.status_code = 400
        return response
