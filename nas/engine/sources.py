"""Deciding from source alone whether a stored import path names a marked evaluator, before importing anything.

A study stores its evaluator as an import path ``"package.module:function"``. Importing a module runs its
top-level code and that of every package above it (their ``__init__.py``), so whoever can write to a storage
could otherwise make every machine that resumes the study run the import side effects of any module
installed there. :func:`check_marked_source` therefore decides without importing anything:

1. the module's file is located the way the import system would find it, but without executing a package to
   look inside it: the top-level name through ``importlib.util.find_spec`` (which only asks the finders), each
   sub-module through ``importlib.machinery.PathFinder`` in its parent's folders;
2. the file is parsed (never run), and the named function or class must be defined at that place with a
   decorator that *resolves* to ``nas.evaluator`` through the module's own imports (``import nas`` then
   ``@nas.evaluator``, ``from nas import evaluator as mark`` then ``@mark``, or the same from ``nas.trial``),
   not merely a decorator named ``evaluator``; a name the decorator goes through that the module binds in any
   other way as well (an assignment, a ``def``, another import, ``global``) is refused as ambiguous.

Only then is the module imported (its packages' ``__init__`` included, as any import of it would), and the
imported object must carry the mark itself (``nas.trial.EVALUATOR_MARK``), which the caller checks.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import sys
from pathlib import Path

__all__ = ["check_marked_source", "module_source"]

_MARK_MODULES = ("nas", "nas.trial")  # where `evaluator` is defined and re-exported


def module_source(module_name: str, what: str) -> Path:
    """The ``.py`` file that importing ``module_name`` would run, found without importing it or any package
    above it. ``what`` names the stored value in errors."""
    parts = module_name.split(".")
    search: list[str] | None = None
    spec = None
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        loaded = sys.modules.get(name)
        if loaded is not None and getattr(loaded, "__spec__", None) is not None:
            spec = loaded.__spec__  # imported already: nothing runs by looking at it
        else:
            try:
                spec = (importlib.util.find_spec(name) if i == 0
                        else importlib.machinery.PathFinder.find_spec(name, search))
            except (ImportError, ValueError) as exc:
                raise ValueError(f"{what} cannot be imported here: {type(exc).__name__}: {exc}") from None
        if spec is None:
            raise ValueError(f"{what} cannot be imported here: no module named {name!r}")
        if i < len(parts) - 1:
            if spec.submodule_search_locations is None:
                raise ValueError(f"{what} cannot be imported here: {name!r} is a module, not a package")
            search = list(spec.submodule_search_locations)
    assert spec is not None
    if not spec.origin or not spec.origin.endswith(".py"):
        raise ValueError(f"{what}: no Python source for module {module_name!r} here (nas reads an evaluator's source "
                         f"before importing it)")
    return Path(spec.origin)


def _bindings(tree: ast.Module) -> dict[str, list[ast.AST]]:
    """Every place that binds a name in the module's own scope, by name: imports, assignments, ``def`` and
    ``class`` statements, loop and ``with`` targets, at module level (inside ``if`` / ``try`` blocks too), and
    ``global`` declarations in functions (which make their assignments module bindings)."""
    out: dict[str, list[ast.AST]] = {}

    def bind(name: str, node: ast.AST) -> None:
        out.setdefault(name, []).append(node)

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bind(alias.asname or alias.name.split(".")[0], node)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bind(node.id, node)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            bind(node.name, node)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bind(node.rest, node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            if not isinstance(node, ast.Lambda):
                bind(node.name, node)
                for d in node.decorator_list:
                    visit(d)
            for inner in ast.walk(node):  # a new scope: only its `global` declarations reach the module's
                if isinstance(inner, ast.Global):
                    for name in inner.names:
                        bind(name, inner)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)
    visit(tree)
    return out


def _resolves_to_mark(decorator: ast.expr, bindings: dict[str, list[ast.AST]]) -> bool:
    """Whether ``decorator`` is ``nas.evaluator`` through the module's one import of the name it starts with."""
    chain: list[str] = []
    node = decorator
    while isinstance(node, ast.Attribute):
        chain.insert(0, node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return False  # a call, a subscript...: not the mark itself
    places = bindings.get(node.id, [])
    if len(places) != 1 or not isinstance(places[0], (ast.Import, ast.ImportFrom)):
        return False  # unbound, or bound more than once: which object it is depends on running the module
    imp = places[0]
    alias = next(a for a in imp.names if (a.asname or a.name.split(".")[0]) == node.id)
    if isinstance(imp, ast.ImportFrom):
        if imp.level != 0 or imp.module is None:
            return False  # a relative import: not nas
        target = f"{imp.module}.{alias.name}"
    else:
        target = alias.name if alias.asname else alias.name.split(".")[0]
    full = ".".join([target, *chain])
    return any(full == f"{m}.evaluator" for m in _MARK_MODULES)


def check_marked_source(module_name: str, qualname: str, what: str) -> None:
    """Refuse (ValueError naming ``what``) unless the source of ``module_name`` defines ``qualname`` under a
    decorator that resolves to ``nas.evaluator``; nothing is imported or run (see the module docstring)."""
    path = module_source(module_name, what)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{what}: module {module_name!r} cannot be read: {exc}") from None
    body: list[ast.stmt] = tree.body
    node: ast.stmt | None = None
    for part in qualname.split("."):
        found = [n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                 and n.name == part]
        node = found[0] if len(found) == 1 else None
        if node is None:
            break
        body = node.body
    if node is None:
        raise ValueError(f"{what} is not marked with @nas.evaluator: the source of module {module_name!r} defines "
                         f"no {qualname!r} (once, at that place), so a study may not call it")
    bindings = _bindings(tree)
    assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    if not any(_resolves_to_mark(d, bindings) for d in node.decorator_list):
        raise ValueError(f"{what} is not marked with @nas.evaluator, so a study may not call it (its source must "
                         f"decorate it with nas.evaluator, imported from nas)")
