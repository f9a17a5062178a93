"""What a field costs, declared on the schema in the terms of the IBM GraphQL cost specification
(the directives Apollo Router's demand control reads), so clients see the prices in the SDL.

Without a declaration a field weighs 1 when it returns an object (an interface, a union) and 0 when
it returns a scalar or an enum. A list multiplies what its items cost by its size: the value of a
slicing argument (``first``; a list argument by its length), else that argument's default, else
``assumedSize``. A connection is
not a list itself: its slicing argument sizes the lists named in ``sizedFields``
(``edges``, ``nodes``). ``api.graphql.complexity`` adds it up.
"""

import strawberry
from strawberry.schema_directive import Location


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="cost",
    description="The weight of the field, beyond what its selection costs (IBM cost specification).",
)
class Cost:
    weight: str


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="listSize",
    description="How many items a list field, or the lists under a connection field, hold at most.",
)
class ListSize:
    # Unset arguments are left out of the printed schema, as the specification's definition has them.
    assumed_size: int | None = strawberry.UNSET
    slicing_arguments: list[str] | None = strawberry.UNSET
    sized_fields: list[str] | None = strawberry.UNSET
    require_one_slicing_argument: bool = True


# Every mutation writes, and several hash a password: each weighs as ten plain objects.
MUTATION = (Cost(weight="10"),)
# A connection's page: ``first`` items (its default when absent) in ``edges`` and in ``nodes``.
# ``first`` may be left out (it has a default), so one slicing argument is not required.
CONNECTION = (
    ListSize(
        slicing_arguments=["first"], sized_fields=["edges", "nodes"], require_one_slicing_argument=False
    ),
)
# A job's results, and a one-shot fetch's: at most the default ``FETCH_MAX_URLS``.
RESULTS = (ListSize(assumed_size=100),)
# The caller's API keys: at most ``api.services.api_keys.MAX_KEYS_PER_USER``.
API_KEYS = (ListSize(assumed_size=50),)
# One-shot fetching goes out to the network for every URL while the request waits: one result
# per URL given (a list argument sizes a list by its length, which the specification leaves open).
FETCH = (Cost(weight="10"), ListSize(assumed_size=100, slicing_arguments=["urls"]))
