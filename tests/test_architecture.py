"""How the code is put together: no reach-ins to the core's privates, no import cycles, modules of a readable size."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ecomsim", "agents", "generators")
MAX_LINES = 400
# the one exception, and why (its docstring says it in full): numba's cache misses edits to inlined
# functions that live in another file, so every kernel and row function stays in one file
LONG_MODULES = {"ecomsim/sim/kernels.py"}


def _sources(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (ROOT / top).rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_no_module_outside_the_simulator_reaches_into_the_core() -> None:
    """The core's state is read through ``core.state`` / ``core.session`` (``ecomsim.sim.state``), never privates."""
    pattern = re.compile(r"\bcore\._\w|\._state\b")
    offenders = []
    for path in _sources(*PACKAGES, "scripts", "tests"):
        rel = _rel(path)
        if rel.startswith("ecomsim/sim/") or rel == "tests/test_architecture.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, "reach-ins into the core:\n" + "\n".join(offenders)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_level_imports(path: Path, package: str) -> set[str]:
    """Modules imported when ``path`` is imported (its top-level statements; ``if TYPE_CHECKING:`` skipped)."""
    names: set[str] = set()
    me = _module_name(path)
    pkg = me if path.name == "__init__.py" else me.rpartition(".")[0]

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
                names.add(base)
                names.update(f"{base}.{a.name}" for a in node.names)  # a submodule, when it is one
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                visit(node.body + node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body])

    visit(ast.parse(path.read_text()).body)
    return {n for n in names if n == package or n.startswith(package + ".")}


def _graph(package: str) -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in _sources(package)}
    return {m: {d for d in _module_level_imports(p, package) if d in modules and d != m} for m, p in modules.items()}


def test_ecomsim_has_no_import_cycles() -> None:
    graph = _graph("ecomsim")
    assert len(graph) > 20  # the walk found the package
    done: set[str] = set()

    def walk(node: str, path: list[str]) -> None:
        if node in path:
            cycle = path[path.index(node):] + [node]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if node in done:
            return
        for dep in sorted(graph[node]):
            walk(dep, path + [node])
        done.add(node)

    for module in sorted(graph):
        walk(module, [])


def test_ecomsim_imports_neither_agents_nor_generators_at_module_level() -> None:
    """Imports point one way: ``agents -> ecomsim`` and ``generators -> ecomsim`` (generators load lazily)."""
    for path in _sources("ecomsim"):
        outward = {m for top in ("agents", "generators", "scripts") for m in _module_level_imports(path, top)}
        assert not outward, f"{_rel(path)} imports {sorted(outward)} at module level"


def test_modules_stay_readable_in_size() -> None:
    long = {_rel(p): n for p in _sources(*PACKAGES, "scripts") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert set(long) <= LONG_MODULES, f"modules over {MAX_LINES} lines: {long}"
    for rel in LONG_MODULES:
        doc = ast.get_docstring(ast.parse((ROOT / rel).read_text())) or ""
        assert "One file" in doc and "cache" in doc, f"{rel} must say in its docstring why it is one long file"
