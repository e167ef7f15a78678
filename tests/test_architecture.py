"""The engine's layering: no import cycle, and no engine module reaching into the dashboard.

The engine is every module of ``recogan_app`` but ``recogan_app.ui`` and ``recogan_app.cli``, the
two front ends built on it. Imports are read with ``ast`` wherever they stand (module level or
inside a function), because a function-level import that closes a cycle is still a cycle: it only
moves the failure from import time to the first call.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import recogan_app

PACKAGE = Path(recogan_app.__file__).parent
FRONT_ENDS = ("recogan_app.ui", "recogan_app.cli")


def _module_name(path: Path) -> str:
    parts = ("recogan_app", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
ENGINE = sorted(name for name in MODULES if not name.startswith(FRONT_ENDS))


def _imports(name: str, modules: dict[str, Path] = MODULES) -> set[str]:
    """The modules among ``modules`` that module ``name`` imports anywhere in its body.

    ``import a.b.c`` counts as an edge to ``a.b.c`` only: its parent packages run first, but a
    package's ``__init__`` re-exporting its modules would otherwise close a cycle with each of them.
    """
    path = modules[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            source = ".".join(filter(None, (base, node.module)))
            found.add(source)
            # `from package import name` imports a module when name is one
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return {module for module in found if module in modules and module != name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a closed path of module names, or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once fully explored
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = "done"
        return None

    return next((found for node in sorted(graph) if node not in state and (found := visit(node))), None)


def test_the_import_reader_sees_function_level_and_relative_imports(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    files = {"pkg/__init__.py": "", "pkg/sub/__init__.py": "", "pkg/b.py": "", "pkg/sub/c.py": "",
             "pkg/a.py": "import os\ndef f():\n    from . import b\n    from .sub.c import g\n",
             "pkg/sub/d.py": "from .. import a\nfrom . import c\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    modules = {name.removesuffix(".py").replace("/", "."): tmp_path / name for name in files}
    modules = {name.removesuffix(".__init__"): path for name, path in modules.items()}
    assert _imports("pkg.a", modules) == {"pkg", "pkg.b", "pkg.sub.c"}
    assert _imports("pkg.sub.d", modules) == {"pkg", "pkg.a", "pkg.sub", "pkg.sub.c"}
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_engine_has_no_import_cycle():
    graph = {name: {module for module in _imports(name) if module in ENGINE} for name in ENGINE}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle in the engine: " + " → ".join(cycle)


def test_no_engine_module_imports_a_front_end():
    reaching = {name: sorted(m for m in _imports(name) if m.startswith(FRONT_ENDS)) for name in ENGINE}
    assert not {name: found for name, found in reaching.items() if found}


def test_importing_the_engine_loads_no_dashboard_module():
    # one interpreter importing every engine module: if together they load no ui module, none does alone
    code = ("import importlib, sys\n"
            f"for name in {ENGINE!r}: importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m.startswith('recogan_app.ui')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
