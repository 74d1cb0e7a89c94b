"""The import graph: the log core knows no domain, and every import resolves in this tree."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("eventlog", "projections", "pipelines")
# ``eventlog/generate.py`` only re-exports the Order generator from its old address.
NOT_CORE = {Path("eventlog/generate.py")}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, at any depth (function-level ones too)."""
    return [(line, module) for line, module, _ in _import_names(path)]


def _import_names(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name imported from it or None) of every import in a file."""
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module, alias.name) for alias in node.names]
    return found


@functools.cache
def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def _top_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _core_modules() -> list[Path]:
    files = sorted((ROOT / "eventlog").rglob("*.py"))
    return [
        f
        for f in files
        if "orders" not in f.relative_to(ROOT).parts and f.relative_to(ROOT) not in NOT_CORE
    ]


def test_the_log_core_imports_no_domain() -> None:
    core = _core_modules()
    assert (
        ROOT / "eventlog" / "log.py" in core and ROOT / "eventlog" / "tails" / "sqlite.py" in core
    )
    offenders = [
        f"{f.relative_to(ROOT)}:{line} imports {module}"
        for f in core
        for line, module in _imports(f)
        if module == "eventlog.orders" or module.startswith("eventlog.orders.")
    ]
    assert offenders == []


def _resolves(module: str, name: str | None = None) -> bool:
    """Whether ``import module`` (or ``from module import name``) finds it in this tree."""
    found = _module_file(module)
    if found is None:
        return False
    if name is None or name == "*" or _module_file(f"{module}.{name}") is not None:
        return True
    return name in _top_level_names(found)


def test_every_import_of_our_packages_resolves_in_this_tree() -> None:
    """A module that was moved or removed must not be found elsewhere on the path (an
    installed copy of the project would otherwise answer for it)."""
    files = [f for pkg in (*PACKAGES, "tests", "benchmarks") for f in (ROOT / pkg).rglob("*.py")]
    missing = [
        f"{f.relative_to(ROOT)}:{line} imports {module}{'.' + name if name else ''}"
        for f in files
        for line, module, name in _import_names(f)
        if module.split(".")[0] in PACKAGES and not _resolves(module, name)
    ]
    assert missing == []


def test_the_import_check_would_see_a_domain_import(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    from eventlog.orders.events import REGISTRY\n")
    assert (2, "eventlog.orders.events") in _imports(sample)
    assert not _resolves("eventlog", "catalog") and not _resolves("eventlog.log", "Nope")
    assert _resolves("eventlog.tails", "sqlite") and _resolves("eventlog.log", "EventLog")
