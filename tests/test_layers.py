"""The package's layout by stages (docs/architecture.md), held by its imports: a module imports
only from its own stage or the ones below, and no imports go round in a circle. Every import
counts, those inside functions too; only ``if TYPE_CHECKING:`` blocks (never run) are left out.
The moved modules' old names still import, as the same module, with one warning."""

import ast
import importlib
import sys
import warnings
from pathlib import Path

import pytest

import repap

# bottom to top: a module may import from its stage and those before it
STAGES = ["base", "data", "analysis", "sim", "model", "training", "generation", "evaluation",
          "workflows", "cli", "root"]  # fmt: skip
PACKAGE = Path(repap.__file__).parent


def stage(module: str) -> str:
    parts = module.split(".")
    if module in ("repap", "repap.__main__"):
        return "root"
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else "base"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The repap modules a file imports (``from repap.x import y`` counts as repap.x.y when
    that is a module)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking(node):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "repap")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "repap":
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    found.add(full if full in modules else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def package_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files) | {"repap._C"}
    return {name: imports_of(path, modules) - {name} for name, path in files.items()}


def upward(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    rank = {s: i for i, s in enumerate(STAGES)}
    return sorted((a, b) for a, targets in graph.items() for b in targets
                  if rank[stage(b)] > rank[stage(a)])  # fmt: skip


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            connect(v)
    return out


def test_no_import_runs_up_a_stage():
    assert upward(package_graph()) == []


def test_no_import_cycles():
    assert cycles(package_graph()) == []


def test_the_checks_catch_an_upward_import_and_a_cycle():
    graph = package_graph()
    graph["repap.data.trajectory"] = graph["repap.data.trajectory"] | {"repap.model.sampling"}
    assert ("repap.data.trajectory", "repap.model.sampling") in upward(graph)
    graph["repap.model.sampling"] = graph["repap.model.sampling"] | {"repap.model.recurrent"}
    assert any({"repap.model.recurrent", "repap.model.sampling"} <= set(c) for c in cycles(graph))
    # and the parser sees imports inside functions
    found = imports_of(PACKAGE / "model" / "recurrent.py", set(graph))
    assert "repap.model.sampling" in found  # RePAP.sample imports the sampler when called


MOVED = [("sampling", "model.sampling"), ("md", "sim.md"),
         ("network_eval", "evaluation.network_report")]  # fmt: skip


@pytest.mark.parametrize(("old", "new"), MOVED)
def test_a_moved_module_imports_under_its_old_name_with_one_warning(old, new):
    sys.modules.pop(f"repap.{old}", None)
    with pytest.warns(DeprecationWarning, match=f"repap.{old} is now repap.{new}"):
        moved = importlib.import_module(f"repap.{old}")
    assert moved is importlib.import_module(f"repap.{new}")
    assert moved.__spec__.name == f"repap.{new}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert importlib.import_module(f"repap.{old}") is moved  # once: no second warning
