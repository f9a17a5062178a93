"""A shortcut through graphql-core's per-field machinery for plain leaf fields.

Most fields of a read are scalars read straight off an object (``email``, ``createdAt``). For each,
graphql-core builds a resolve-info object, calls the resolver through Strawberry's wrapper and runs the
generic completion: several microseconds a field, thousands of times per page. For a field with no
resolver, no arguments and a scalar or enum type, none of that can change the answer, so this reads
the attribute and serializes it directly. Anything else, and any value the shortcut cannot serialize
or a null where the type forbids one, goes the normal way, which also reports errors as usual.
"""

from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from graphql import GraphQLEnumType, GraphQLNonNull, GraphQLObjectType, GraphQLScalarType, GraphQLSchema
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
