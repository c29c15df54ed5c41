"""Which of our modules may import which (issue 17): the ticket store sits below the features, and the policy below
business time.

The import graph is read from the source with `ast`, not by importing: every `import` and `from ... import` of an
`intake` module anywhere in a module counts, at the top, inside a function (a lazy import still runs, later) and
under `if TYPE_CHECKING:` (a type that needs the module is a dependency all the same). `from package import name`
counts as an import of `package.name` when that is a module, else of the package. A package's `__init__` is the
package's own module: importing `intake.store.keys` is not counted as importing `intake.store` (Python runs the
package's `__init__` first, but a submodule's import of its sibling is not a cycle through it).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "functions" / "intake"

STORE = "intake.store"
# What the store stands on: our models and records, the table's description. Nothing the store imports, directly or
# through these, may be a feature (a module that uses the store, or a channel, a handler, an adapter...).
STORE_FOUNDATION = ("intake.model", "intake.records", "intake.resources", "intake.errors", "intake.ids", "intake.text")
# The feature modules the issue names, checked by name as well, so that a widened foundation cannot let one in
FEATURES = (
    "intake.satisfaction",
    "intake.suppression",
    "intake.sla",
    "intake.notify",
    "intake.digest",
    "intake.replies",
    "intake.ingest",
    "intake.channels",
    "intake.emails",
    "intake.calls",
    "intake.reception",
    "intake.reconciliation",
    "intake.failures",
    "intake.handlers",
    "intake.local",
    "intake.console",
    "intake.cli",
    "intake.runtime",
    "intake.config",
)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} (line {self.line})"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _read_graph() -> dict[str, list[Edge]]:
    files = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
    graph: dict[str, list[Edge]] = {}
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        edges: list[Edge] = []
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(module, is_package, node.module, node.level)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base for alias in node.names]
            else:
                continue
            for target in targets:
                known = _known(target, files)
                if known is not None and known != module:
                    edges.append(Edge(module, known, node.lineno))
        first = {edge.target: edge for edge in sorted(edges, key=lambda edge: edge.line, reverse=True)}
        graph[module] = sorted(first.values(), key=lambda edge: edge.line)  # one per imported module: its first
    return graph


def _absolute(module: str, is_package: bool, name: str | None, level: int) -> str:
    if level == 0:
        return name or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _known(target: str, modules: Iterable[str]) -> str | None:
    """The module `target` names (or the longest of ours it lies in: `import intake.sla.policy.x`); None: not ours."""
    names = set(modules)
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in names:
            return candidate
    return None


GRAPH = _read_graph()


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _reachable(start: str, avoiding: Iterable[str] = ()) -> dict[str, list[Edge]]:
    """Every module `start` imports, directly or not, with the chain of imports that leads there (not through the
    modules `avoiding` names)."""
    avoided = set(avoiding)
    chains: dict[str, list[Edge]] = {start: []}
    pending = [start]
    while pending:
        module = pending.pop(0)
        for edge in GRAPH.get(module, []):
            if edge.target not in chains and edge.target not in avoided:
                chains[edge.target] = [*chains[module], edge]
                pending.append(edge.target)
    return chains


def _cycles(modules: Iterable[str]) -> list[list[Edge]]:
    """One import cycle through each module of `modules` that lies on one (as the chain of its imports)."""
    found = []
    for module in modules:
        for edge in GRAPH.get(module, []):
            back = _reachable(edge.target)
            if module in back:
                found.append([edge, *back[module]])
                break
    return found


def _chain(edges: list[Edge]) -> str:
    return "\n    ".join(str(edge) for edge in edges)


def _above_the_store(module: str) -> bool:
    """A feature, or anything else that is neither the store nor what it stands on (the `intake` package is)."""
    if any(_within(module, feature) for feature in FEATURES):
        return True
    return module != "intake" and not any(_within(module, allowed) for allowed in (STORE, *STORE_FOUNDATION))


STORE_MODULES = sorted(module for module in GRAPH if _within(module, STORE))


def test_the_graph_reads_the_store_and_its_imports() -> None:
    # Given the source tree, when its imports are read, then the store's package and modules are in it
    assert STORE in GRAPH
    assert f"{STORE}.keys" in GRAPH
    assert any(edge.target == f"{STORE}.keys" for edge in GRAPH["intake.sla.policy"])


def test_no_import_cycle_runs_through_the_store_or_what_it_imports() -> None:
    # Given every module the store imports, directly or not, when the import graph is followed from each, then
    # none leads back to itself
    below = sorted({module for start in STORE_MODULES for module in _reachable(start)})

    cycles = _cycles(below)

    assert not cycles, "import cycles:\n    " + "\n  and\n    ".join(_chain(cycle) for cycle in cycles)


def test_no_import_cycle_anywhere() -> None:
    # Given every module of Intake, when the import graph is followed from each (lazy imports count), then none
    # leads back to itself: the composition root (`intake.runtime`) builds the features and hands them what they
    # need; no feature reaches back into it
    cycles = _cycles(sorted(GRAPH))

    assert not cycles, "import cycles:\n    " + "\n  and\n    ".join(_chain(cycle) for cycle in cycles)


@pytest.mark.parametrize("module", STORE_MODULES)
def test_the_store_imports_no_feature_module(module: str) -> None:
    # Given a module of the store, when its imports are followed, then it reaches only the store, what the store
    # stands on, and what that imports: no feature module
    features = {
        target: chain
        for target, chain in _reachable(module).items()
        if _above_the_store(target) and not _above_the_store(chain[-1].source)  # where the chain leaves the store
    }

    assert not features, "the store imports a feature module:\n    " + "\n  and\n    ".join(
        _chain(chain) for chain in features.values()
    )


def test_the_policy_imports_no_sla_module() -> None:
    # Given the policy (`intake.config`), when its imports are followed, then none reaches `intake.sla`: the
    # calendar is built from the policy, and a team's calendar is checked with `intake.hours`, below both
    reached = _reachable("intake.config")
    sla = {target: chain for target, chain in reached.items() if _within(target, "intake.sla")}

    assert not sla, "intake.config imports intake.sla:\n    " + "\n  and\n    ".join(
        _chain(chain) for chain in sla.values()
    )


def test_business_time_and_the_policy_import_each_other_in_one_direction() -> None:
    # Given the calendar, which reads the policy's models, when the imports of both are followed, then no cycle
    # runs through either
    cycles = _cycles(["intake.config", "intake.sla.calendar", "intake.hours"])

    assert not cycles, "import cycles:\n    " + "\n  and\n    ".join(_chain(cycle) for cycle in cycles)


CHANNELS = sorted(module for module in GRAPH if _within(module, "intake.channels"))
# A channel's OpenAPI operations name the problems its routes answer, from the handlers' problem table, which knows
# every error (the store's too): documentation, built by `intake schemas export`, never run by a receiver
DOCUMENTATION = "intake.openapi_parts"


@pytest.mark.parametrize("module", CHANNELS)
def test_a_channel_never_touches_the_store(module: str) -> None:
    # Given a channel module (or what they share), when its imports are followed, then none reaches the store: what
    # a channel needs of it comes through its context (`ReceiveContext.claim_token`), and ingest writes what it made
    reached = _reachable(module, avoiding=[DOCUMENTATION])
    store = {target: chain for target, chain in reached.items() if _within(target, STORE)}

    assert not store, f"{module} imports the store:\n    " + "\n  and\n    ".join(_chain(c) for c in store.values())
