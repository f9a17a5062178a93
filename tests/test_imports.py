"""The direction of the house, read from the imports: transport → service → data, and no circle.

Every import counts, a lazy one inside a function or one for type checking included: an import moved
into a function still ties the two modules together, it only hides the tie from the interpreter.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("api", "schema", "resolvers")
TRANSPORT = ("fastapi", "starlette", "strawberry", "schema", "resolvers", "api.rest", "api.graphql")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


def _imported(path: Path, name: str) -> Iterator[str]:
    """The dotted names ``path`` (module ``name``) imports, relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """Each of our modules and the modules of ours it imports."""
    modules = _modules()
    return {
        name: {target for target in _imported(path, name) if target in modules and target != name}
        for name, path in modules.items()
    }


def external_imports(name: str) -> set[str]:
    return set(_imported(_modules()[name], name))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _reaches(imported: str, prefixes: tuple[str, ...]) -> bool:
    return any(imported == prefix or imported.startswith(f"{prefix}.") for prefix in prefixes)


def test_no_module_of_ours_is_part_of_an_import_circle() -> None:
    assert cycles(import_graph()) == []


def test_services_know_nothing_of_the_transports() -> None:
    offenders = {
        name: sorted(i for i in external_imports(name) if _reaches(i, TRANSPORT))
        for name in _modules()
        if name.startswith("api.services")
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_data_layer_imports_nothing_above_it() -> None:
    """``api.db`` builds on itself and on foundations: modules that import nothing of ours (the
    settings, the error tree, the metric definitions)."""
    graph = import_graph()
    packages = {name.rpartition(".")[0] for name in graph}
    foundations = tuple(name for name, imports in graph.items() if not imports and name not in packages)
    offenders = {
        name: sorted(i for i in imports if not _reaches(i, ("api.db", *foundations)))
        for name, imports in graph.items()
        if name.startswith("api.db")
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_circle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
