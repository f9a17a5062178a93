"""GraphQL documents planned into compiled reads (``api.services.reads``): the transport's half.

A query document that validated without errors is planned once per operation (and per value of the
variables its ``@skip``/``@include`` read): its selection, with fragments, aliases, ``__typename``
and those directives applied, becomes a tree of the reads service's members, and its arguments a list
of where each read's values come from (a literal of the document, or a variable). Per request,
only the variables are coerced (by graphql-core, as the executor would) and looked up.

A document the planner does not know all of (a mutation, introspection, ``fetch``, ``apiKeys``, a
field with a resolver that is not one of the reads below, a directive other than the two) is marked
as such once and goes to the executor every time.
"""

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLArgument,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
    VariableNode,
    get_operation_ast,
    value_from_ast,
)
from graphql.execution.values import get_variable_values
from graphql.pyutils import Undefined

from api.graphql.execution import plain_leaves
from api.ids import NodeType
from api.services import reads
from api.services.reads import Relation

CACHE_SIZE = 512
MAX_VARIANTS = 8  # plans per operation, one per combination of its directives' variables
# The reads a root or nested field with a resolver stands for.
_READS = {
    ("Query", "me"): Relation.VIEWER,
    ("Query", "user"): Relation.USER,
    ("Query", "users"): Relation.USERS,
    ("Query", "fetchJob"): Relation.JOB,
    ("Query", "fetchJobs"): Relation.MY_JOBS,
    ("User", "fetchJobs"): Relation.JOBS_OF_USER,
    ("FetchJob", "owner"): Relation.OWNER,
    ("FetchJob", "results"): Relation.RESULTS,
}
_NODES = {"User": (Relation.NODE_USER, NodeType.USER), "FetchJob": (Relation.NODE_JOB, NodeType.FETCH_JOB)}
_PAGING = {
    "hasNextPage": reads.Paging.HAS_NEXT,
    "hasPreviousPage": reads.Paging.HAS_PREVIOUS,
    "startCursor": reads.Paging.START_CURSOR,
    "endCursor": reads.Paging.END_CURSOR,
}


class Unplanned(Exception):
    """Part of the document is not something the planner knows: the executor answers it."""


@dataclass(frozen=True, slots=True)
class Variable:
    """An argument given by a variable; ``default``: the argument's when the variable is not given."""

    name: str
    default: Any


# Per read, per argument name: the value (from the document, or its default), or a ``Variable``.
Sources = tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Plan:
    selection: reads.Selection
    sources: Sources

    def arguments(self, variables: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Each read's argument values for a request with these (coerced) variables."""
        return [
            {
                name: (variables.get(source.name, source.default) if isinstance(source, Variable) else source)
                for name, source in given.items()
            }
            for given in self.sources
        ]


class _Operation:
    """One operation of a document: its plans, one per combination of the directives' variables."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode):
        self.schema = schema
        self.operation = operation
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.switches = tuple(sorted(_directive_variables(operation, self.fragments.values())))
        self.variants: dict[tuple[bool, ...], Plan | None] = {}

    def plan(self, variables: Mapping[str, Any]) -> Plan | None:
        if any(name in variables and variables[name] is None for name in self.switches):
            return None  # a directive's condition given as null: the executor refuses it
        key = tuple(bool(variables.get(name)) for name in self.switches)
        if key not in self.variants:
            if len(self.variants) >= MAX_VARIANTS:
                return None
            try:
                self.variants[key] = _Planner(self.schema, self.fragments, variables).plan(self.operation)
            except Unplanned:
                self.variants[key] = None
        return self.variants[key]


class Plans:
    """The plans of recently seen documents, least recently used dropped first."""

    def __init__(self, schema: GraphQLSchema, size: int = CACHE_SIZE) -> None:
        self.schema = schema
        self.size = size
        self._operations: OrderedDict[tuple[str, str | None], _Operation | None] = OrderedDict()

    def find(
        self, document: DocumentNode, query: str, operation_name: str | None, raw_variables: object
    ) -> tuple[Plan, list[dict[str, Any]]] | None:
        """The plan of a request and its reads' arguments; ``None`` for one the executor answers (the
        document is not planned, or its variables do not fit: the executor says how)."""
        key = (query, operation_name)
        operation = self._operations.get(key, Undefined)
        if operation is Undefined:
            operation = self._operations[key] = self._operation(document, operation_name)
            if len(self._operations) > self.size:
                self._operations.popitem(last=False)
        else:
            self._operations.move_to_end(key)
        if not isinstance(operation, _Operation):
            return None
        if raw_variables is not None and not isinstance(raw_variables, dict):
            return None
        definitions = operation.operation.variable_definitions
        variables: Mapping[str, Any] = {}
        if definitions:
            coerced = get_variable_values(self.schema, definitions, raw_variables or {})
            if isinstance(coerced, list):
                return None
            variables = coerced.coerced
        plan = operation.plan(variables)
        return None if plan is None else (plan, plan.arguments(variables))

    def _operation(self, document: DocumentNode, operation_name: str | None) -> _Operation | None:
        try:
            operation = get_operation_ast(document, operation_name)
        except GraphQLError:
            return None
        if operation is None or operation.operation is not OperationType.QUERY:
            return None
        return _Operation(self.schema, document, operation)


def _directive_variables(
    operation: OperationDefinitionNode, fragments: Iterable[FragmentDefinitionNode]
) -> set[str]:
    """The variables any ``@skip`` or ``@include`` of the operation reads."""
    found: set[str] = set()
    pending: list[SelectionNode] = [*operation.selection_set.selections]
    for fragment in fragments:
        pending.extend(fragment.selection_set.selections)
    while pending:
        node = pending.pop()
        for directive in node.directives or ():
            for argument in directive.arguments or ():
                if isinstance(argument.value, VariableNode):
                    found.add(argument.value.name.value)
        selection_set = getattr(node, "selection_set", None)
        if selection_set is not None:
            pending.extend(selection_set.selections)
    return found


class _Planner:
    """One plan: walks the operation's selection as graphql-core's executor collects it."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.leaves = plain_leaves(schema)
        self.sources: list[dict[str, Any]] = []

    def plan(self, operation: OperationDefinitionNode) -> Plan:
        root = self.schema.query_type
        assert root is not None
        members = self.members(root, operation.selection_set.selections)
        return Plan(reads.Selection(members), tuple(self.sources))

    def members(self, parent: GraphQLObjectType, selections: Sequence[SelectionNode]) -> reads.Members:
        fields = self.collect(parent, selections, OrderedDict(), set())
        return tuple((key, self.value(parent, nodes)) for key, nodes in fields.items())

    def collect(
        self,
        parent: GraphQLObjectType,
        selections: Sequence[SelectionNode],
        fields: "OrderedDict[str, list[FieldNode]]",
        visited: set[str],
    ) -> "OrderedDict[str, list[FieldNode]]":
        for selection in selections:
            if not self.included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or self.applies(condition.name.value, parent):
                    self.collect(parent, selection.selection_set.selections, fields, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if name in visited or fragment is None:
                    continue
                visited.add(name)
                if self.applies(fragment.type_condition.name.value, parent):
                    self.collect(parent, fragment.selection_set.selections, fields, visited)
        return fields

    def applies(self, condition: str, parent: GraphQLObjectType) -> bool:
        return condition == parent.name or any(interface.name == condition for interface in parent.interfaces)

    def included(self, node: SelectionNode) -> bool:
        """``@skip`` and ``@include``, read as graphql-core reads them; any other directive is unplanned."""
        for directive in node.directives or ():
            name = directive.name.value
            if name not in ("skip", "include") or len(directive.arguments or ()) != 1:
                raise Unplanned(f"@{name}")
            given = (directive.arguments or ())[0].value
            if isinstance(given, VariableNode):
                value = bool(self.variables.get(given.name.value))
            elif isinstance(given, BooleanValueNode):
                value = given.value
            else:
                raise Unplanned("a directive's argument")
            if value == (name == "skip"):
                return False
        return True

    def value(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> reads.Value:
        name = nodes[0].name.value
        if name == "__typename":
            return reads.Constant(parent.name)
        definition = parent.fields.get(name)
        if definition is None:
            raise Unplanned(f"{parent.name}.{name}")
        selections = [s for node in nodes if node.selection_set for s in node.selection_set.selections]
        if parent.name == "Query" and name == "node":
            return self.node(definition, nodes[0], selections)
        relation = _READS.get((parent.name, name))
        if relation is not None:
            slot = self.arguments(definition, nodes[0])
            target = _named(definition.type)
            if relation in (Relation.USERS, Relation.MY_JOBS, Relation.JOBS_OF_USER):
                return reads.Read(relation, slot, self.connection(target, selections))
            return reads.Read(relation, slot, self.members(target, selections))
        if nodes[0].arguments:
            raise Unplanned(f"{parent.name}.{name} with arguments")
        if name == "id" and parent.name in _NODES:
            return reads.GlobalId(_NODES[parent.name][1])
        leaf = self.leaves.get((parent.name, name))
        if leaf is None:
            raise Unplanned(f"{parent.name}.{name}")
        time = _named(definition.type).name == "DateTime"
        return reads.Column(leaf[0], timestamp=time)

    def node(self, definition: GraphQLField, node: FieldNode, selections: list[SelectionNode]) -> reads.Value:
        slot = self.arguments(definition, node)
        found = []
        for type_name, (relation, _) in _NODES.items():
            concrete = self.schema.get_type(type_name)
            assert isinstance(concrete, GraphQLObjectType)
            found.append(reads.Read(relation, slot, self.members(concrete, selections)))
        return reads.FirstOf(tuple(found))

    def connection(self, connection: GraphQLObjectType, selections: list[SelectionNode]) -> reads.Members:
        members: list[tuple[str, reads.Value]] = []
        for key, nodes in self.collect(connection, selections, OrderedDict(), set()).items():
            name = nodes[0].name.value
            inner = [s for n in nodes if n.selection_set for s in n.selection_set.selections]
            if name == "__typename":
                members.append((key, reads.Constant(connection.name)))
            elif name == "edges":
                members.append((key, reads.Edges(self.edge(_named(connection.fields[name].type), inner))))
            elif name == "nodes":
                members.append((key, reads.Nodes(self.members(_named(connection.fields[name].type), inner))))
            elif name == "pageInfo":
                members.append(
                    (key, reads.PageInfo(self.page_info(_named(connection.fields[name].type), inner)))
                )
            else:
                raise Unplanned(f"{connection.name}.{name}")
        return tuple(members)

    def edge(self, edge: GraphQLObjectType, selections: list[SelectionNode]) -> reads.Members:
        members: list[tuple[str, reads.Value]] = []
        for key, nodes in self.collect(edge, selections, OrderedDict(), set()).items():
            name = nodes[0].name.value
            if name == "__typename":
                members.append((key, reads.Constant(edge.name)))
            elif name == "cursor":
                members.append((key, reads.RowCursor()))
            elif name == "node":
                inner = [s for n in nodes if n.selection_set for s in n.selection_set.selections]
                members.append((key, reads.Fields(self.members(_named(edge.fields[name].type), inner))))
            else:
                raise Unplanned(f"{edge.name}.{name}")
        return tuple(members)

    def page_info(self, info: GraphQLObjectType, selections: list[SelectionNode]) -> reads.Members:
        members: list[tuple[str, reads.Value]] = []
        for key, nodes in self.collect(info, selections, OrderedDict(), set()).items():
            name = nodes[0].name.value
            members.append((key, reads.Constant(info.name) if name == "__typename" else _PAGING[name]))
        return tuple(members)

    def arguments(self, definition: GraphQLField, node: FieldNode) -> int:
        """Where each argument of ``node`` comes from, as the read's slot in the plan."""
        given = {argument.name.value: argument.value for argument in node.arguments or ()}
        sources: dict[str, Any] = {}
        for name, argument in definition.args.items():
            sources[name] = self.source(argument, given.get(name))
        self.sources.append(sources)
        return len(self.sources) - 1

    def source(self, argument: GraphQLArgument, value: Any) -> Any:
        default = None if argument.default_value is Undefined else argument.default_value
        if value is None:
            return default
        if isinstance(value, VariableNode):
            return Variable(value.name.value, default)
        literal = value_from_ast(value, argument.type)
        if literal is Undefined:
            raise Unplanned("an argument that does not coerce")
        return literal


def _named(type_: Any) -> Any:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_
