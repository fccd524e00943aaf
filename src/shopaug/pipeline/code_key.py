"""The code part of a stage's cache key: the source of every shopaug module the stage runs.

A stage names the functions and classes it calls (its roots); the modules they are defined in,
and every shopaug module those import (at the top or inside a function), are found by reading
the import statements, so the key follows the code as it is: a new module a strategy starts to
import joins the augment key by itself, and a renamed module cannot drop out of it silently (its
root would fail to import). Data folders beside a module (folders without ``__init__.py``, such
as the demo shop's vocabularies or the LLM prompts) count as source too, since they change what
the code does.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from pathlib import Path

import shopaug

ROOT = Path(shopaug.__file__).resolve().parent
#: Files read as data by the code beside them.
DATA_SUFFIXES = (".yaml", ".yml", ".json", ".txt")


def module_name(root: object) -> str:
    """The module a function, class or module object is defined in."""
    name = getattr(root, "__module__", None) or getattr(root, "__name__", None)
    if not isinstance(name, str) or not (name == "shopaug" or name.startswith("shopaug.")):
        raise ValueError(f"{root!r} is not defined in a shopaug module")
    return name


def module_file(name: str) -> Path | None:
    """``shopaug.a.b`` -> ``ROOT/a/b.py`` or ``ROOT/a/b/__init__.py``; None if neither exists."""
    parts = name.split(".")[1:]
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(name: str, path: Path) -> set[str]:
    """The shopaug modules that the module ``name`` at ``path`` imports, anywhere in its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            found.add(base)
            # ``from shopaug.augment import sequence`` imports a module, not a name
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m.startswith("shopaug") and module_file(m) is not None}


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def closure(roots: Iterable[object]) -> list[str]:
    """Every shopaug module the roots' modules import, directly or not, and the parent packages
    (whose ``__init__`` runs on import), sorted."""
    pending = [module_name(root) for root in roots]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        path = module_file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        pending.extend(parents)
        pending.extend(imported_modules(name, path) - seen)
    return sorted(seen)


def data_files(modules: Iterable[str]) -> list[Path]:
    """Files in data folders (no ``__init__.py``) inside the packages of ``modules``."""
    folders = {module_file(m).parent for m in modules if module_file(m) is not None}
    out = set()
    for folder in folders:
        for sub in folder.iterdir():
            if sub.is_dir() and not (sub / "__init__.py").exists() and sub.name != "__pycache__":
                out.update(p for p in sub.rglob("*") if p.suffix in DATA_SUFFIXES)
    return sorted(out)


def code_version(roots: Iterable[object], own: Iterable[object] = ()) -> str:
    """Hash of the package version, the source of the roots' closure, their data files, and the
    source of ``own`` modules (the pipeline's stage code, which imports everything and so is not
    followed)."""
    modules = closure(roots)
    files = [module_file(m) for m in modules] + [module_file(module_name(m)) for m in own]
    digest = hashlib.sha256(shopaug.__version__.encode())
    for path in sorted({p for p in files if p is not None}) + data_files(modules):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
