"""The root types, assembled from the domain modules: each root field is a resolver of ``resolvers/``."""

from collections.abc import AsyncGenerator

import strawberry

from resolvers import api_keys, auth, fetch, nodes, users
from schema import cost
from schema.api_keys import ApiKey, ApiKeyPayload
from schema.auth import AuthPayload
from schema.base import Node
from schema.events import FetchJobEvent, UserEvent
from schema.fetch import FetchResult
from schema.nodes import FetchJob, FetchJobConnection, User, UserConnection


@strawberry.type
class Query:
    node: Node | None = strawberry.field(resolver=nodes.node)
    me: User | None = strawberry.field(resolver=users.me, description="The signed-in user.")
    user: User | None = strawberry.field(resolver=users.user, description="Oneself, or anyone for an admin.")
    api_keys: list[ApiKey] = strawberry.field(
        resolver=api_keys.api_keys_list, description="The caller's.", directives=cost.API_KEYS
    )
    users: UserConnection = strawberry.field(
        resolver=users.users_page,
        description="Every account, oldest first (admin).",
        directives=cost.CONNECTION,
    )
    fetch_job: FetchJob | None = strawberry.field(
        resolver=fetch.fetch_job, description="One of the caller's jobs (any, for an admin)."
    )
    fetch_jobs: FetchJobConnection = strawberry.field(
        resolver=fetch.my_fetch_jobs,
        description="The caller's jobs, newest first.",
        directives=cost.CONNECTION,
    )
    fetch: list[FetchResult] = strawberry.field(
        resolver=fetch.fetch_now,
        description=(
            "Fetch the URLs now and wait for every result (not stored). Bounded by the fetch limits "
            "(time a URL, URLs at once), not by the operation time limit."
        ),
        directives=cost.FETCH,
    )


@strawberry.type
class Mutation:
    register: AuthPayload = strawberry.mutation(resolver=auth.register, directives=cost.MUTATION)
    login: AuthPayload = strawberry.mutation(resolver=auth.login, directives=cost.MUTATION)
    refresh_token: AuthPayload = strawberry.mutation(
        resolver=auth.refresh_token,
        description="A new token pair for a refresh token, which is spent.",
        directives=cost.MUTATION,
    )
    logout: bool = strawberry.mutation(
        resolver=auth.logout,
        description="End the session of a refresh token (true even if unknown).",
        directives=cost.MUTATION,
    )
    update_me: User = strawberry.mutation(resolver=users.update_me, directives=cost.MUTATION)
    change_password: bool = strawberry.mutation(
        resolver=auth.change_password,
        description="Set a new password; every other session ends.",
        directives=cost.MUTATION,
    )
    update_user: User = strawberry.mutation(
        resolver=users.update_user,
        description="Change any account (admin).",
        directives=cost.MUTATION,
    )
    create_api_key: ApiKeyPayload = strawberry.mutation(
        resolver=api_keys.create_api_key, directives=cost.MUTATION
    )
    revoke_api_key: bool = strawberry.mutation(resolver=api_keys.revoke_api_key, directives=cost.MUTATION)
    delete_user: bool = strawberry.mutation(
        resolver=users.delete_user,
        description="Delete one's own account, or any (admin).",
        directives=cost.MUTATION,
    )
    start_fetch_job: FetchJob = strawberry.mutation(
        resolver=fetch.start_fetch_job,
        description="Start fetching in the background; returns at once.",
        directives=cost.MUTATION,
    )
    start_fetch_job_from_file: FetchJob = strawberry.mutation(
        resolver=fetch.start_fetch_job_from_file,
        description="As `startFetchJob`, for a text file of URLs, one a line (`#` starts a comment).",
        directives=cost.MUTATION,
    )
    cancel_fetch_job: FetchJob = strawberry.mutation(
        resolver=fetch.cancel_fetch_job,
        description="Stop a job: its fetches in flight end, the URLs not fetched are CANCELLED.",
        directives=cost.MUTATION,
    )


@strawberry.type
class Subscription:
    fetch_job_events: AsyncGenerator[FetchJobEvent, None] = strawberry.subscription(
        resolver=fetch.fetch_job_events,
        description="A job as it stands, then one event per result; completes when the job ends.",
    )
    my_fetch_job_events: AsyncGenerator[FetchJobEvent, None] = strawberry.subscription(
        resolver=fetch.my_fetch_job_events,
        description="Every job of the caller's, as it starts and moves along.",
    )
    user_events: AsyncGenerator[UserEvent, None] = strawberry.subscription(
        resolver=users.user_events, description="Accounts created, updated and deleted (admin)."
    )


# Reached only through the ``Node`` interface (``node(id:)``): named so that the schema holds them.
NODE_TYPES = (User, ApiKey, FetchJob)
