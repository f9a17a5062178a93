"""Our executor: a shortcut for plain leaf fields, and one execution per event for subscribers
asking the same thing.

A shortcut through graphql-core's per-field machinery for plain leaf fields.

Most fields of a read are scalars read straight off an object (``email``, ``createdAt``). For each,
graphql-core builds a resolve-info object, calls the resolver through Strawberry's wrapper and runs the
generic completion: several microseconds a field, thousands of times per page. For a field with no
resolver, no arguments and a scalar or enum type, none of that can change the answer, so this reads
the attribute and serializes it directly. Anything else, and any value the shortcut cannot serialize
or a null where the type forbids one, goes the normal way, which also reports errors as usual.

One event reaching a thousand subscribers would be executed a thousand times, most of them the same
query for the same viewer (a dashboard open in many tabs, many sockets of one service). A
subscription's executor knows its operation (the printed document and the variables) and its viewer
(the account, its admin flag, an API key's scopes: what resolvers decide by). Subscribers with the
same operation and viewer share one response per event, kept in what the event's subscribers share
(``Context.shared``). A response with errors is not shared: the others execute for themselves, so
each error is rendered for its own operation.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast
from weakref import WeakKeyDictionary

from graphql import (
    ExecutionResult,
    GraphQLEnumType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    OperationType,
    print_ast,
)
from graphql.pyutils import AwaitableOrValue, Path, UndefinedType
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

# (attribute name, serializer, may be null) for each plain leaf field, by (type name, field name).
Leaves = dict[tuple[str, str], tuple[str, Callable[[Any], Any], bool]]
_leaves_of: WeakKeyDictionary[GraphQLSchema, Leaves] = WeakKeyDictionary()
_MISSING = object()


def plain_leaves(schema: GraphQLSchema) -> Leaves:
    """The fields of ``schema`` the shortcut may answer, found once per schema."""
    if schema in _leaves_of:
        return _leaves_of[schema]
    leaves: Leaves = {}
    for type_name, named_type in schema.type_map.items():
        if not isinstance(named_type, GraphQLObjectType) or type_name.startswith("__"):
            continue
        for field_name, field in named_type.fields.items():
            definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
            nullable = not isinstance(field.type, GraphQLNonNull)
            leaf_type = field.type if nullable else field.type.of_type
            if (
                isinstance(definition, StrawberryField)
                and definition.is_basic_field
                and getattr(field.resolve, "_is_default", False)
                and not field.args
                and isinstance(leaf_type, GraphQLScalarType | GraphQLEnumType)
            ):
                leaves[type_name, field_name] = (definition.python_name, leaf_type.serialize, nullable)
    _leaves_of[schema] = leaves
    return leaves


class LeafShortcutExecutor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        # Middleware (an extension with a ``resolve`` hook) must see every field: no shortcut then.
        self._leaves = {} if manager is not None and manager.middlewares else plain_leaves(self.schema)
        self._operation_key: str | None = None
        if self.operation.operation is OperationType.SUBSCRIPTION:
            fragments = sorted(print_ast(fragment.definition) for fragment in self.fragments.values())
            variables = sorted(self.variable_values.coerced.items())
            self._operation_key = repr((print_ast(self.operation), fragments, variables))

    def execute_operation(self, serially: bool | None = None) -> Any:
        """One event of a subscription: the response another subscriber with the same operation and
        viewer got for it, or a new one that such subscribers may share."""
        shared = None if self._operation_key is None else self.context_value.shared()
        if shared is None:
            return super().execute_operation(serially)
        caller = self.context_value.caller
        viewer = None if caller is None else (caller.user.id, caller.user.is_admin, caller.scopes)
        key = (ExecutionResult, self._operation_key, viewer)
        found: ExecutionResult | asyncio.Future[ExecutionResult] | None = shared.get(key)
        if isinstance(found, ExecutionResult):
            return found
        if found is not None:
            return self._follow(found, serially)
        outcome = self._execute(serially)
        if isinstance(outcome, ExecutionResult):
            if not outcome.errors:
                shared[key] = outcome
            return outcome
        announced = shared[key] = asyncio.get_running_loop().create_future()
        return self._lead(outcome, announced, shared, key)

    @staticmethod
    async def _lead(
        outcome: Awaitable[ExecutionResult],
        announced: "asyncio.Future[ExecutionResult]",
        shared: dict[Any, Any],
        key: Any,
    ) -> ExecutionResult:
        """Execute in this subscriber's own task and scope (if it goes away, the execution stops with
        its session), then hand the response to the others, or let them execute on their own."""
        try:
            result = await outcome
        except BaseException:
            shared.pop(key, None)
            announced.cancel()
            raise
        if result.errors:
            shared.pop(key, None)
            announced.cancel()
        else:
            announced.set_result(result)
        return result

    async def _follow(
        self, announced: "asyncio.Future[ExecutionResult]", serially: bool | None
    ) -> ExecutionResult:
        try:
            return await asyncio.shield(announced)
        except asyncio.CancelledError:
            if not announced.cancelled():
                raise  # this subscriber itself is going away
        own = self._execute(serially)  # the first one failed or went away: execute on our own
        return own if isinstance(own, ExecutionResult) else await own

    def _execute(self, serially: bool | None) -> "ExecutionResult | Awaitable[ExecutionResult]":
        """graphql-core's execution of a subscription event (never incremental: no defer or stream)."""
        return cast("ExecutionResult | Awaitable[ExecutionResult]", super().execute_operation(serially))

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: Any,
    ) -> AwaitableOrValue[Any] | UndefinedType:
        node = field_details_list[0].node
        leaf = None if node.arguments else self._leaves.get((parent_type.name, node.name.value))
        if leaf is not None:
            name, serialize, nullable = leaf
            value = getattr(source, name, _MISSING)
            if value is None and nullable:
                return None
            if value is not None and value is not _MISSING:
                try:
                    return serialize(value)
                except Exception:  # noqa: BLE001, S110 (the normal path below reports it properly)
                    pass
        return super().execute_field(parent_type, source, field_details_list, path, position_context)
