"""A stored evaluator path never makes nas import anything that is not a marked evaluator.

Someone who can write to a study's storage can rewrite its evaluator to any import path. Importing a module runs
its top-level code and its packages' ``__init__``; so nas decides from the source alone (nas.engine.sources)
and refuses before any import. Each crafted module below writes a file when imported: no file may appear.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import nas
import search_spaces
from nas.engine.components import make_evaluator
from nas.engine.schema import Component
from nas.engine.sources import check_marked_source
from nas.engine.storage import describe_storage

from engine_helpers import store_record, stored_record

SPACE = search_spaces.get("conv", input_shape=(8, 8, 1), num_classes=10, stages=(1, 2), depth=(1, 1),
                          widths=(8, 16))
MARKED = "engine_helpers:score_by_macs"

# module sources, each importable as `crafted_<name>`; `{marker}` is the file that importing it writes
CRAFTED = {
    # a look-alike decorator merely named `evaluator`
    "lookalike": "open({marker!r}, 'w').close()\n"
                 "def evaluator(f):\n    return f\n\n"
                 "@evaluator\ndef fn(spec):\n    return {{'accuracy': 1.0}}\n",
    # nas's mark imported, then the name rebound
    "rebound": "open({marker!r}, 'w').close()\n"
               "from nas import evaluator\n"
               "evaluator = lambda f: f\n\n"
               "@evaluator\ndef fn(spec):\n    return {{'accuracy': 1.0}}\n",
    # another module imported under the name `nas`
    "alias": "open({marker!r}, 'w').close()\n"
             "import json as nas\n\n"
             "@nas.evaluator\ndef fn(spec):\n    return {{'accuracy': 1.0}}\n",
    # `nas` rebound by a later assignment inside a function's `global`
    "global": "open({marker!r}, 'w').close()\n"
              "import nas\n\n"
              "def swap():\n    global nas\n    nas = None\n\n"
              "@nas.evaluator\ndef fn(spec):\n    return {{'accuracy': 1.0}}\n",
    # the function is not decorated at all, the mark applied by a call (runs only when imported)
    "called": "open({marker!r}, 'w').close()\n"
              "import nas\n\n"
              "def fn(spec):\n    return {{'accuracy': 1.0}}\n\n"
              "fn = nas.evaluator(fn)\n",
}


def _write_package(root: Path, marker: Path) -> None:
    """``crafted_pkg`` (its ``__init__`` writes ``marker``) with an unmarked module ``mod`` and a module
    ``marked`` whose function carries the real mark; plus one top-level module per entry of CRAFTED."""
    pkg = root / "crafted_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (pkg / "mod.py").write_text("def fn(spec):\n    return {'accuracy': 1.0}\n")
    (pkg / "marked.py").write_text("from nas import evaluator as mark\n\n"
                                   "@mark\ndef fn(spec):\n    return {'accuracy': 1.0}\n")
    for name, source in CRAFTED.items():
        (root / f"crafted_{name}.py").write_text(source.format(marker=str(marker)))


@pytest.mark.parametrize("path", ["crafted_pkg.mod:fn", "crafted_pkg.nothere:fn", "crafted_pkg:fn",
                                  *(f"crafted_{name}:fn" for name in CRAFTED)])
def test_no_crafted_path_is_imported(tmp_path: Path, monkeypatch, path: str) -> None:
    marker = tmp_path / "imported"
    _write_package(tmp_path, marker)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match=r"is not marked with @nas\.evaluator|no module named 'crafted_pkg\.nothere'"):
        make_evaluator(Component(name=path))
    assert not marker.exists()
    assert not any(m.startswith("crafted_") for m in sys.modules)


def test_a_marked_evaluator_in_a_package_is_imported_with_its_package(tmp_path: Path, monkeypatch) -> None:
    """Once the source shows the mark, the import is allowed, and runs the package's __init__ as any import
    would."""
    marker = tmp_path / "imported"
    _write_package(tmp_path, marker)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        fn = make_evaluator(Component(name="crafted_pkg.marked:fn"))
        assert fn(None) == {"accuracy": 1.0} and marker.exists()
    finally:
        for name in [m for m in sys.modules if m.startswith("crafted_")]:
            del sys.modules[name]


@pytest.mark.parametrize("source, marked", [
    ("import nas\n@nas.evaluator\ndef fn(s): pass\n", True),
    ("import nas.trial\n@nas.trial.evaluator\ndef fn(s): pass\n", True),
    ("import nas as n\n@n.evaluator\ndef fn(s): pass\n", True),
    ("from nas.trial import evaluator\n@evaluator\ndef fn(s): pass\n", True),
    ("from nas import evaluator\ndef f(evaluator=1): return evaluator\n@evaluator\ndef fn(s): pass\n", True),
    ("from nas import evaluator\n@evaluator()\ndef fn(s): pass\n", False),
    ("from .nas import evaluator\n@evaluator\ndef fn(s): pass\n", False),
    ("from nas import evaluator\nfor evaluator in []: pass\n@evaluator\ndef fn(s): pass\n", False),
    ("from nas import evaluator\ntry:\n    pass\nexcept Exception as evaluator:\n    pass\n"
     "@evaluator\ndef fn(s): pass\n", False),
    ("from nas import evaluator\n@evaluator\ndef fn(s): pass\n@evaluator\ndef fn(s): pass\n", False),  # two fn
    ("from nas import cost as evaluator\n@evaluator\ndef fn(s): pass\n", False),
])
def test_the_decorator_is_resolved_by_its_import(tmp_path: Path, monkeypatch, source: str, marked: bool) -> None:
    (tmp_path / "resolve_me.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    if marked:
        check_marked_source("resolve_me", "fn", "`evaluator`")
    else:
        with pytest.raises(ValueError, match=r"is not marked with @nas\.evaluator"):
            check_marked_source("resolve_me", "fn", "`evaluator`")
    assert "resolve_me" not in sys.modules


def test_a_method_of_a_marked_class_path(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "nested_me.py").write_text("from nas import evaluator as e\n"
                                           "class C:\n    @e\n    def fn(self, s): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    check_marked_source("nested_me", "C.fn", "`evaluator`")
    with pytest.raises(ValueError, match="defines no 'D.fn'"):
        check_marked_source("nested_me", "D.fn", "`evaluator`")
    assert "nested_me" not in sys.modules


@pytest.mark.parametrize("path", ["crafted_pkg.mod:fn", "crafted_lookalike:fn"])
def test_resume_and_worker_refuse_a_crafted_study_without_importing(tmp_path: Path, path: str) -> None:
    """The issue's two crafted studies, through the real `nas resume` and `nas worker` commands."""
    marker = tmp_path / "imported"
    _write_package(tmp_path, marker)
    study = nas.create_study(SPACE, strategy=nas.Strategy(n_trials=2),
                             run=nas.Run(storage=tmp_path / "c.db", study="c"), evaluator=MARKED, verbose=False)
    data = stored_record(study.optuna_study)
    data["evaluator"] = {"name": path, "options": {}}
    store_record(study.optuna_study, data)  # what someone with write access to the storage could do
    url = describe_storage(tmp_path / "c.db")
    env = {**os.environ, "NAS_STORAGE": url,
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    for argv in (["resume", "--study", "c"], ["worker", "--study", "c"]):
        out = subprocess.run([sys.executable, "-m", "nas.cli", *argv], capture_output=True, text=True, timeout=120,
                             env=env, cwd=tmp_path)
        assert out.returncode == 2, out.stderr
        assert f"`evaluator` '{path}' is not marked with @nas.evaluator" in out.stderr
        assert "Traceback" not in out.stderr
        assert not marker.exists()
    assert nas.load_study("c", url).counts()["done"] == 0
