"""The package's layout rules (issue 18): the command line alone parses arguments, the plotting package alone
draws, and no two modules import each other.  The modules that still break a rule are listed by name, so a
new offender fails here and an old one is removed from the list once it is fixed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from betenet import paths

PACKAGE = paths.REPO_ROOT / "betenet"
#: still importing argparse outside betenet/cli/ (their commands move into the cli package later)
ARGPARSE_LEFT = {"qe/pseudo.py"}
#: still importing matplotlib outside betenet/plots/
MATPLOTLIB_LEFT: set[str] = set()


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PACKAGE.rglob("*.py")):
        rel = p.relative_to(PACKAGE).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(["betenet", *parts])] = p
    return out


def _imports(path: Path, module: str, *, top_level_only: bool = False) -> set[str]:
    """Absolute names of what ``path`` (module ``module``) imports; with ``top_level_only``, only the
    statements run at import time (not those inside functions)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
    return found


def _users(library: str) -> set[str]:
    return {str(p.relative_to(PACKAGE)) for m, p in _modules().items()
            if any(name == library or name.startswith(library + ".") for name in _imports(p, m))}


def test_only_the_command_line_parses_arguments():
    users = {u for u in _users("argparse") if not u.startswith("cli/")}
    assert users <= ARGPARSE_LEFT, f"argparse outside betenet/cli/: {sorted(users - ARGPARSE_LEFT)}"


def test_only_the_plotting_package_draws():
    users = {u for u in _users("matplotlib") if not u.startswith("plots/")}
    assert users <= MATPLOTLIB_LEFT, f"matplotlib outside betenet/plots/: {sorted(users - MATPLOTLIB_LEFT)}"


@pytest.mark.parametrize("left", [sorted(ARGPARSE_LEFT), sorted(MATPLOTLIB_LEFT)])
def test_the_lists_of_modules_left_name_real_modules(left):
    assert all((PACKAGE / name).is_file() for name in left)


def _find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` (``[a, b, …, a]``), or ``[]``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> list[str]:
        state[m] = 1
        path = path + [m]
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state and (found := visit(n, path)):
                return found
        state[m] = 2
        return []

    for m in sorted(graph):
        if m not in state and (found := visit(m, [])):
            return found
    return []


def test_find_cycle_finds_one():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_no_import_cycle_at_import_time():
    mods = _modules()
    graph = {m: {n for n in _imports(p, m, top_level_only=True) if n in mods and n != m} for m, p in mods.items()}
    # a package's __init__ runs before its submodules: an edge from a submodule to its own package is not a cycle
    graph = {m: {n for n in deps if not m.startswith(n + ".")} for m, deps in graph.items()}
    cycle = _find_cycle(graph)
    assert not cycle, f"import cycle: {' -> '.join(cycle)}"
