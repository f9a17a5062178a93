"""Query documents over the schema, generated (hypothesis): the readable half of the schema that the
compiled read path plans, in every combination a client may write it, with the arguments good and bad.

Each document is drawn with the ids and cursors of a world (``compiled_world``), so its reads find
rows, miss them, or name the wrong kind of thing; with aliases, fragments of both kinds,
``__typename`` and ``@skip``/``@include`` given by a literal or by a variable.
"""

from typing import Any

from hypothesis import strategies as st

from tests.compiled_world import World

USER_LEAVES = ["id", "email", "displayName", "isActive", "isAdmin", "createdAt", "__typename"]
JOB_LEAVES = [
    "id",
    "status",
    "total",
    "completed",
    "error",
    "createdAt",
    "startedAt",
    "finishedAt",
    "__typename",
]
RESULT_LEAVES = [
    "position",
    "url",
    "outcome",
    "statusCode",
    "finalUrl",
    "contentType",
    "bytes",
    "elapsedMs",
    "error",
    "fetchedAt",
    "__typename",
]
PAGE_LEAVES = ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor", "__typename"]
STATUSES = ["PENDING", "RUNNING", "DONE", "CANCELLED", "FAILED"]
OUTCOMES = ["OK", "HTTP_ERROR", "TIMEOUT", "INVALID_URL", "CANCELLED"]


class _Draw:
    """One document's drawing: its text, the variables it declares and their values."""

    def __init__(self, draw: st.DrawFn, world: World) -> None:
        self.draw = draw
        self.world = world
        self.declared: dict[str, str] = {}
        self.variables: dict[str, Any] = {}
        self.fragments: dict[str, str] = {}
        self.aliases = 0

    def pick(self, options: list[Any]) -> Any:
        return self.draw(st.sampled_from(options))

    def chance(self, p: float = 0.3) -> bool:
        return bool(self.draw(st.floats(0, 1)) < p)

    def directive(self) -> str:
        if not self.chance(0.2):
            return ""
        name = self.pick(["skip", "include"])
        if self.chance(0.5):
            return f" @{name}(if: {self.pick(['true', 'false'])})"
        variable = f"flag{len(self.declared)}"
        self.declared[variable] = "Boolean!"
        self.variables[variable] = self.draw(st.booleans())
        return f" @{name}(if: ${variable})"

    def alias(self, name: str) -> str:
        if not self.chance(0.25):
            return name
        self.aliases += 1
        return f"a{self.aliases}: {name}"

    def argument(self, name: str, type_: str, values: list[Any]) -> str:
        value = self.pick(values)
        if self.chance(0.3):
            variable = f"v{len(self.declared)}"
            self.declared[variable] = type_
            self.variables[variable] = value
            return f"{name}: ${variable}"
        if isinstance(value, str) and type_.startswith(("FetchJobStatus", "FetchOutcome")):
            return f"{name}: {value}"
        return f"{name}: {_literal(value)}"

    def arguments(self, given: list[tuple[str, str, list[Any]]]) -> str:
        chosen = [self.argument(*a) for a in given if self.chance(0.5)]
        return f"({', '.join(chosen)})" if chosen else ""

    def leaves(self, names: list[str]) -> list[str]:
        chosen = self.draw(st.lists(st.sampled_from(names), min_size=1, max_size=5))
        return [self.alias(name) + self.directive() for name in chosen]

    def fragment(self, on: str, body: str) -> str:
        """``body`` as an inline fragment or a named one, now and then."""
        if not self.chance(0.25):
            return body
        if self.chance(0.5):
            return f"... on {on} {{ {body} }}"
        name = f"F{len(self.fragments)}"
        self.fragments[name] = f"fragment {name} on {on} {{ {body} }}"
        return f"...{name}"

    def user(self, depth: int) -> str:
        parts = self.leaves(USER_LEAVES)
        if depth > 0 and self.chance(0.4):
            jobs = self.connection(lambda: self.job(depth - 1))
            args = self.arguments([("first", "Int", [1, 2, 3, 20]), ("status", "FetchJobStatus", STATUSES)])
            parts.append(f"{self.alias('fetchJobs')}{args}{self.directive()} {{ {jobs} }}")
        return self.fragment("User", " ".join(parts))

    def job(self, depth: int) -> str:
        parts = self.leaves(JOB_LEAVES)
        if depth > 0 and self.chance(0.3):
            parts.append(f"{self.alias('owner')} {{ {self.user(depth - 1)} }}")
        if self.chance(0.4):
            args = self.arguments([("outcome", "FetchOutcome", OUTCOMES)])
            parts.append(f"{self.alias('results')}{args} {{ {' '.join(self.leaves(RESULT_LEAVES))} }}")
        return self.fragment("FetchJob", " ".join(parts))

    def connection(self, node: Any) -> str:
        parts = []
        for kind in self.draw(
            st.lists(st.sampled_from(["edges", "nodes", "pageInfo", "__typename"]), min_size=1, max_size=3)
        ):
            if kind == "edges":
                cursor = "cursor " if self.chance(0.5) else ""
                parts.append(f"{self.alias('edges')} {{ {cursor}node {{ {node()} }} }}")
            elif kind == "nodes":
                parts.append(f"{self.alias('nodes')} {{ {node()} }}")
            elif kind == "pageInfo":
                parts.append(f"{self.alias('pageInfo')} {{ {' '.join(self.leaves(PAGE_LEAVES))} }}")
            else:
                parts.append("__typename")
        return " ".join(parts)

    def root(self) -> str:
        world, depth = self.world, 2
        kind = self.pick(["me", "user", "users", "node", "fetchJob", "fetchJobs", "__typename"])
        ids = [("id", "ID!", world.ids)]
        pages: list[tuple[str, str, list[Any]]] = [
            ("first", "Int", [1, 2, 3, 20, 0, 101]),
            ("after", "String", world.cursors),
        ]
        if kind == "me":
            return f"{self.alias('me')} {{ {self.user(depth)} }}"
        if kind == "user":
            return f"{self.alias('user')}({self.argument(*ids[0])}) {{ {self.user(depth)} }}"
        if kind == "users":
            searches = ["", "alice", "ALICE %_", "%", "_", "example", "nobody"]
            args = self.arguments([*pages, ("search", "String", searches)])
            return f"{self.alias('users')}{args} {{ {self.connection(lambda: self.user(depth))} }}"
        if kind == "node":
            body = (
                f"id __typename ... on User {{ {self.user(depth)} }} ... on FetchJob {{ {self.job(depth)} }}"
            )
            return f"{self.alias('node')}({self.argument(*ids[0])}) {{ {body} }}"
        if kind == "fetchJob":
            return f"{self.alias('fetchJob')}({self.argument(*ids[0])}) {{ {self.job(depth)} }}"
        if kind == "fetchJobs":
            args = self.arguments([*pages, ("status", "FetchJobStatus", STATUSES)])
            return f"{self.alias('fetchJobs')}{args} {{ {self.connection(lambda: self.job(depth))} }}"
        return "__typename"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


@st.composite
def documents(draw: st.DrawFn, world: World) -> tuple[str, dict[str, Any]]:
    """A query document and its variables."""
    drawing = _Draw(draw, world)
    roots = [drawing.root() for _ in range(draw(st.integers(1, 3)))]
    declared = ", ".join(f"${name}: {type_}" for name, type_ in drawing.declared.items())
    head = f"query({declared})" if declared else "query"
    text = " ".join([f"{head} {{ {' '.join(roots)} }}", *drawing.fragments.values()])
    return text, drawing.variables
