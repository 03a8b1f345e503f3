"""The layout is the architecture: the core never imports Flask, the web layer, the CLI or the
bench; each package of ``geo`` imports only the packages below it; no module imports itself
back through a loop, in ``geo`` or in ``web``."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import geo
from geo.settings import PROJECT_ROOT

# Each package of the core and what it may import besides itself and the basics (settings, errors).
ALLOWED = {
    "spatial": set(),
    "atlas": {"spatial"},
    "store": {"atlas", "spatial"},
    "access": {"store", "atlas", "spatial"},
    "query": {"access", "store", "atlas", "spatial"},
    "ingest": {"query", "access", "store", "atlas", "spatial"},
    "export": {"query", "access", "store", "atlas", "spatial"},
    "demo": {"ingest", "store", "atlas", "spatial"},
    "cli": {"demo", "export", "ingest", "query", "access", "store", "atlas", "spatial"},
}
BASICS = {"geo.settings", "geo.errors", "geo"}


def _imports(path: Path, package: str) -> set[tuple[str, str]]:
    """Every import of ``path``, at the top or inside a function: (module, name) pairs with
    absolute module names ("import a.b" is ("a.b", ""))."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {(alias.name, "") for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found |= {(base, alias.name) for alias in node.names}
    return found


def _modules(root: str) -> dict[str, set[str]]:
    """Module name -> the modules of this repository it imports ("from geo.store import counts"
    imports geo.store.counts; "from geo.store import Store" imports geo.store)."""
    files = {}
    for path in sorted((PROJECT_ROOT / root).rglob("*.py")):
        name = ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        files[name.removesuffix(".__init__")] = (path, package)
    known = set(files) | {m.name for m in pkgutil.walk_packages(geo.__path__, "geo.")}
    graph = {}
    for name, (path, package) in files.items():
        targets = set()
        for module, item in _imports(path, package):
            if module.split(".")[0] not in {"geo", "web", "bench"}:
                continue
            targets.add(f"{module}.{item}" if f"{module}.{item}" in known else module)
        graph[name] = targets - {name}
    return graph


def test_geo_does_not_import_flask():
    modules = [m.name for m in pkgutil.walk_packages(geo.__path__, "geo.") if m.name != "geo.__main__"]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'flask' or m.startswith('flask.') or m.startswith('flask_'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"geo imports {out.stdout.strip()}"
    assert len(modules) > 40


def test_the_core_never_imports_the_web_layer_the_cli_or_the_bench():
    for name, targets in _modules("geo").items():
        in_cli = name == "geo.__main__" or name.startswith("geo.cli")
        outside = {t for t in targets if t.split(".")[0] == "web"
                   or (not in_cli and (t.split(".")[0] == "bench" or t.startswith("geo.cli")))}
        assert not outside, f"{name} imports {sorted(outside)}"


def test_each_package_imports_only_the_packages_below_it():
    assert {p.name for p in pkgutil.iter_modules(geo.__path__) if p.ispkg} == set(ALLOWED)
    for name, targets in _modules("geo").items():
        parts = name.split(".")
        if len(parts) < 3:  # the basics and geo/__main__
            continue
        own = parts[1]
        for target in targets:
            if ".".join(target.split(".")[:2]) in BASICS or not target.startswith("geo."):
                continue
            other = target.split(".")[1]
            assert other == own or other in ALLOWED[own], f"{name} imports {target}"


def test_every_package_says_what_it_owns():
    for package in ALLOWED:
        doc = ast.get_docstring(ast.parse((PROJECT_ROOT / "geo" / package / "__init__.py").read_text()))
        assert doc and "import" in doc.lower(), f"geo/{package} has no docstring naming what it may import"


def test_nothing_is_left_flat_in_geo():
    flat = sorted(p.name for p in (PROJECT_ROOT / "geo").glob("*.py"))
    assert flat == ["__init__.py", "__main__.py", "errors.py", "settings.py"]


@pytest.mark.parametrize("root", ["geo", "web"])
def test_no_import_loops(root):
    graph = _modules(root)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                loop = path[path.index(target):] + [target]
                pytest.fail("import loop: " + " -> ".join(loop))
            if target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
