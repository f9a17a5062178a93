"""What an operation asks of the server, measured before it runs: its cost, depth and aliases.

The cost follows the IBM GraphQL cost specification with the prices ``schema.cost`` declares: each
field its weight, a list its items' cost times its size. The document's shape is measured once (its
``Measure`` is kept per document text and operation); only the sizes given as variables change
from one request to the next, so a request's cost is a few additions.

Introspection fields (``__schema``, ``__type``) cost nothing and add no depth: GraphiQL's own query
must pass whatever the limits, and what it reads is the schema, not the database.
"""

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_abstract_type,
    is_composite_type,
)
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from api.errors import QueryTooComplex
from schema.cost import Cost, ListSize

# The size of a list nothing declares: the page size a connection has by default.
DEFAULT_LIST_SIZE = 20
# Fields of one operation once its fragments are spread: a fragment spread twice in one that is
# spread twice... doubles them at each level, and measuring (or running) it would never end.
MAX_FIELDS = 5_000
CACHE_SIZE = 512


@dataclass(frozen=True, slots=True)
class Size:
    """How many items a list holds: the value of ``variable`` when the request gives an integer for
    it (a list: its length), else ``fixed`` (a literal argument, the argument's default, the assumed
    size)."""

    fixed: int
    variable: str | None = None

    def of(self, variables: Mapping[str, Any]) -> int:
        value = variables.get(self.variable) if self.variable is not None else None
        if isinstance(value, list):
            return len(value)
        if isinstance(value, float) and value.is_integer():  # graphql-core takes 100.0 for an Int
            value = int(value)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else self.fixed


@dataclass(frozen=True, slots=True)
class Priced:
    """A field of the document: its weight plus what its selection costs, times its size when it
    is a list (each item is an object to build, or a URL to fetch)."""

    weight: int
    size: Size | None
    selection: "Selection"

    def cost(self, variables: Mapping[str, Any]) -> int:
        each = self.weight + self.selection.cost(variables)
        return each if self.size is None else self.size.of(variables) * each


@dataclass(frozen=True, slots=True)
class Selection:
    """A selection set: its fields, and for an abstract type the fragments on each of its types, of
    which only the dearest can apply to any one object."""

    fields: tuple[Priced, ...]
    branches: tuple["Selection", ...] = ()

    def cost(self, variables: Mapping[str, Any]) -> int:
        own = sum(field.cost(variables) for field in self.fields)
        return own + max((branch.cost(variables) for branch in self.branches), default=0)


@dataclass(frozen=True, slots=True)
class Measure:
    fields: int  # fields once every fragment is spread (past MAX_FIELDS, the walk stopped there)
    depth: int  # levels of selection below the root fields (``{ me { id } }``: 1), as Strawberry counted
    aliases: int
    selection: Selection

    def cost(self, variables: Mapping[str, Any] | None) -> int:
        return self.selection.cost(variables or {})


@dataclass(frozen=True, slots=True)
class Limits:
    max_cost: int
    max_depth: int
    max_aliases: int

    def check(self, measure: Measure, variables: Mapping[str, Any] | None) -> int:
        """The operation's cost, or ``QueryTooComplex`` naming the first limit it passes."""
        if measure.fields > MAX_FIELDS:
            raise QueryTooComplex(
                f"The operation asks for more than {MAX_FIELDS} fields once its fragments are spread.",
                {"maxFields": MAX_FIELDS},
            )
        if measure.depth > self.max_depth:
            raise QueryTooComplex(
                f"The operation is {measure.depth} fields deep; at most {self.max_depth} are allowed.",
                {"depth": measure.depth, "maxDepth": self.max_depth},
            )
        if measure.aliases > self.max_aliases:
            raise QueryTooComplex(
                f"The operation uses {measure.aliases} aliases; at most {self.max_aliases} are allowed.",
                {"aliases": measure.aliases, "maxAliases": self.max_aliases},
            )
        cost = measure.cost(variables)
        if cost > self.max_cost:
            raise QueryTooComplex(
                f"The operation costs {cost}; at most {self.max_cost} is allowed. Ask for smaller pages.",
                {"cost": cost, "maxCost": self.max_cost},
            )
        return cost


TOKEN_LIMIT = re.compile(r"Syntax Error: Document contains more than (\d+) tokens\.")


def token_limit_passed(parse_error: str) -> QueryTooComplex | None:
    """graphql-core's parse error for a document past the token limit as our refusal, or ``None``
    for any other parse error (its message is the only sign of which it is)."""
    found = TOKEN_LIMIT.match(parse_error)
    if found is None:
        return None
    limit = int(found.group(1))
    return QueryTooComplex(
        f"The document has more than {limit} tokens; at most {limit} are allowed.", {"maxTokens": limit}
    )


Prices = dict[tuple[str, str], tuple[int | None, ListSize | None]]


def _prices(schema: GraphQLSchema) -> Prices:
    """The declared ``@cost`` weight and ``@listSize`` of every field that has either."""
    prices: Prices = {}
    for type_name, named in schema.type_map.items():
        for field_name, field in getattr(named, "fields", {}).items():
            definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if not isinstance(definition, StrawberryField):
                continue
            weight = next((int(d.weight) for d in definition.directives if isinstance(d, Cost)), None)
            size = next((d for d in definition.directives if isinstance(d, ListSize)), None)
            if weight is not None or size is not None:
                prices[type_name, field_name] = weight, size
    return prices


class Measures:
    """The measures of recently seen operations of one schema, least recently used dropped first."""

    def __init__(self, schema: GraphQLSchema, size: int = CACHE_SIZE) -> None:
        self.schema = schema
        self.size = size
        self.prices = _prices(schema)
        self._entries: OrderedDict[tuple[str, str | None], Measure] = OrderedDict()

    def of(self, document: DocumentNode, query: str | None, operation_name: str | None) -> Measure | None:
        """The measure of a validated document's operation (kept when its text is known); ``None``
        if it has no such operation."""
        key = (query or "", operation_name)
        found = self._entries.get(key) if query else None
        if found is not None:
            self._entries.move_to_end(key)
            return found
        measure = _Measuring(self.schema, self.prices, document).operation(operation_name)
        if measure is not None and query:
            self._entries[key] = measure
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return measure


class _TooMany(Exception):
    """The walk passed ``MAX_FIELDS``: the operation is refused whatever else it holds."""


class _Measuring:
    """One walk over a document (validated: its fields exist and its fragments do not cycle)."""

    def __init__(self, schema: GraphQLSchema, prices: Prices, document: DocumentNode) -> None:
        self.schema = schema
        self.prices = prices
        self.operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.aliases = 0
        self.fields = 0
        self.defaults: dict[str, int] = {}  # the operation's variables' integer defaults

    def operation(self, name: str | None) -> Measure | None:
        found = [o for o in self.operations if name is None or (o.name and o.name.value == name)]
        if len(found) != 1:
            return None
        operation = found[0]
        root = self.schema.get_root_type(operation.operation)
        if root is None:
            return None
        self.defaults = {
            v.variable.name.value: int(v.default_value.value)
            for v in operation.variable_definitions or ()
            if isinstance(v.default_value, IntValueNode)
        }
        try:
            selection, depth = self._selection(root, operation.selection_set, {})
        except _TooMany:
            return Measure(fields=self.fields, depth=0, aliases=self.aliases, selection=Selection(()))
        return Measure(fields=self.fields, depth=depth, aliases=self.aliases, selection=selection)

    def _selection(
        self, parent: GraphQLNamedType, selections: SelectionSetNode, sized: Mapping[str, Size]
    ) -> tuple[Selection, int]:
        """What a selection set on ``parent`` costs, and how deep it goes; ``sized``: the sizes a
        connection field gave the lists under it."""
        fields: list[Priced] = []
        branches: dict[str, list[Priced]] = {}  # by type condition, on an abstract type
        depth = 0
        for node in selections.selections:
            if isinstance(node, FieldNode):
                priced, deep = self._field(parent, node, sized)
                fields.extend([] if priced is None else [priced])
                depth = max(depth, deep)
                continue
            if isinstance(node, FragmentSpreadNode):
                fragment = self.fragments[node.name.value]
                condition, inner = fragment.type_condition.name.value, fragment.selection_set
            else:
                assert isinstance(node, InlineFragmentNode)
                condition = node.type_condition.name.value if node.type_condition else parent.name
                inner = node.selection_set
            target = self.schema.get_type(condition)
            assert target is not None
            selection, deep = self._selection(target, inner, sized)
            depth = max(depth, deep)
            into = (
                branches.setdefault(condition, [])
                if is_abstract_type(parent) and condition != parent.name
                else fields
            )
            into.extend(selection.fields)
            if selection.branches:  # its own alternatives: the dearest of them, as one more term
                into.append(Priced(0, None, Selection((), selection.branches)))
        return Selection(tuple(fields), tuple(Selection(tuple(group)) for group in branches.values())), depth

    def _field(
        self, parent: GraphQLNamedType, node: FieldNode, sized: Mapping[str, Size]
    ) -> tuple[Priced | None, int]:
        if node.alias is not None:
            self.aliases += 1
        self.fields += 1
        if self.fields > MAX_FIELDS:
            raise _TooMany
        name = node.name.value
        if name.startswith("__"):
            return None, 0  # introspection, and __typename: free
        field: GraphQLField = getattr(parent, "fields", {})[name]
        named = get_named_type(field.type)
        weight, declared = self.prices.get((parent.name, name), (None, None))
        if weight is None:
            weight = 1 if is_composite_type(named) else 0
        size: Size | None = sized.get(name)
        below: dict[str, Size] = {}
        if declared is not None and declared.sized_fields:
            below = dict.fromkeys(declared.sized_fields, self._size(field, node, declared))
        elif size is None and isinstance(get_nullable_type(field.type), GraphQLList):
            size = self._size(field, node, declared)
        if node.selection_set is None:
            return Priced(weight, size, Selection(())), 0
        selection, depth = self._selection(named, node.selection_set, below)
        return Priced(weight, size, selection), depth + 1

    def _size(self, field: GraphQLField, node: FieldNode, declared: ListSize | None) -> Size:
        """A list's size, as the specification finds it: a slicing argument as given (a literal, or
        a variable: its value at each request, its default in the document otherwise), that
        argument's default in the schema, the declared assumed size, our default."""
        fallback = (
            declared.assumed_size if declared is not None and declared.assumed_size else DEFAULT_LIST_SIZE
        )
        for argument in (declared.slicing_arguments or []) if declared is not None else []:
            default = field.args[argument].default_value
            fixed = default if isinstance(default, int) else fallback
            given = next((a.value for a in node.arguments or () if a.name.value == argument), None)
            if isinstance(given, IntValueNode):
                return Size(int(given.value))
            if isinstance(given, ListValueNode):
                return Size(len(given.values))
            if isinstance(given, VariableNode):
                variable = given.name.value
                return Size(self.defaults.get(variable, fixed), variable)
            return Size(fixed)
        return Size(fallback)
