"""The public API's types: what a type checker is told matches what the code takes.

Goal, Strategy and Run take more than their fields hold (a sampler by name, a backend by kind, a storage path...):
the constructor a type checker sees is written under ``if TYPE_CHECKING`` beside the fields, so it must list
exactly the fields, keyword-only, with the same defaults; and a type checker run on user code accepts the
documented spellings and names what it refuses."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import nas
from nas.engine import schema, where

ROOT = Path(__file__).resolve().parent.parent


def _typed_init(module: ModuleType, name: str) -> ast.FunctionDef:
    """The ``__init__`` written under ``if TYPE_CHECKING:`` in class ``name`` of ``module``."""
    tree = ast.parse(inspect.getsource(module))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
    block = next(n for n in cls.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    return next(n for n in block.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")


@pytest.mark.parametrize("cls, module", [(nas.Goal, schema), (nas.Strategy, schema), (nas.Run, where)])
def test_the_typed_constructor_lists_every_field_with_its_default(cls: type, module: ModuleType) -> None:
    init = _typed_init(module, cls.__name__)
    assert init.args.args[0].arg == "self" and len(init.args.args) == 1 and init.args.vararg is None
    names = [a.arg for a in init.args.kwonlyargs]
    assert names == [f.name for f in dataclasses.fields(cls)]
    for f, default in zip(dataclasses.fields(cls), init.args.kw_defaults):
        assert default is not None, f.name
        if f.default is dataclasses.MISSING:  # a default_factory: written `...` in the typed constructor
            assert f.default_factory is not dataclasses.MISSING and ast.unparse(default) == "...", f.name
        else:
            assert ast.literal_eval(default) == f.default, f.name


USER_CODE = '''
from pathlib import Path

import numpy as np

import nas
from nas.engine.schema import Component


@nas.evaluator
def score(spec: nas.ArchSpec) -> dict[str, float]:
    return {"accuracy": 0.5}


def report(study: nas.Study, record: nas.TrialRecord) -> None:
    print(study.name, record.number)


strategy = nas.Strategy(n_trials=4, sampler="tpe", pruner={"name": "pareto", "options": {}}, budget={"epochs": 1},
                        warm_start="resnet18")
nas.Strategy(sampler=Component(name="random"), pruner="none", warm_start=["resnet18", {"n_stages": 1}])
goal = nas.Goal(objectives="accuracy", constraints=None)
run = nas.Run(study="s", storage=Path("s.db"), artifacts=Path("art"), backend="local", device={"kind": "cpu"})
sampler: Component | None = strategy.sampler
objectives: tuple[str, ...] = goal.objectives
backend: nas.Local | nas.Ray | nas.KerasTuner | None = None
device: nas.Device = run.device
study = nas.search("conv", (np.zeros((8, 8, 8, 1)), np.zeros(8)), goal=goal, strategy={"n_trials": 2},
                   run=nas.Run(backend=nas.Ray(max_concurrent=2)), evaluator=score, callbacks=[report])
nas.create_study({"name": "conv", "options": {}}, "digits", evaluator="engine_helpers:score_by_macs")
study = nas.load_study("s", "runs/nas.db")
study.resume(5, backend={"kind": "local", "n_workers": 2}, callbacks=report)
folders: list[Path] = study.export(3, formats="keras,onnx")
best: nas.TrialRecord | None = study.best(max_macs=1e6)
epochs_saved: int = study.epochs()["saved"]
nas.Strategy(sampler=3)
nas.Run(backend=1.5)
nas.Goal(objectives=5)
study.ranked(objectives=("accuracy", 1))
nas.search("conv", evaluator=4)
study.resume(callbacks=[print, 3])
'''


@pytest.mark.slow
def test_a_type_checker_accepts_the_documented_spellings_and_names_the_wrong_ones(tmp_path: Path) -> None:
    """mypy on user code (in a process of its own, about 10 s): every spelling the docstrings give for the
    groups, search and the Study methods type-checks, fields read back with the normalised types, and each wrong
    argument is named with the type the API takes."""
    (tmp_path / "user.py").write_text(USER_CODE)
    out = subprocess.run([sys.executable, "-m", "mypy", "--python-version", "3.11", "--ignore-missing-imports",
                          "--no-error-summary", "--hide-error-context", "--no-pretty", "--cache-dir",
                          str(tmp_path / "cache"), "user.py"], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "MYPYPATH": str(ROOT)}, timeout=300)
    lines = USER_CODE.splitlines()
    first_bad = next(i for i, line in enumerate(lines, 1) if line.startswith("nas.Strategy(sampler=3)"))
    assert out.stderr == ""
    assert out.stdout.splitlines() == [
        f'user.py:{first_bad}: error: Argument "sampler" to "Strategy" has incompatible type "int"; expected '
        f'"str | dict[str, Any] | Component | None"  [arg-type]',
        f'user.py:{first_bad + 1}: error: Argument "backend" to "Run" has incompatible type "float"; expected '
        f'"Backend | str | dict[str, Any] | None"  [arg-type]',
        f'user.py:{first_bad + 2}: error: Argument "objectives" to "Goal" has incompatible type "int"; expected '
        f'"str | list[str] | tuple[str, ...]"  [arg-type]',
        f'user.py:{first_bad + 3}: error: Argument "objectives" to "ranked" of "Study" has incompatible type '
        f'"tuple[str, int]"; expected "str | list[str] | tuple[str, ...] | None"  [arg-type]',
        f'user.py:{first_bad + 4}: error: Argument "evaluator" to "search" has incompatible type "int"; expected '
        f'"Evaluator | type[Evaluator] | HasEvaluatorRef | str | dict[str, Any] | Component | None"  [arg-type]',
        f'user.py:{first_bad + 4}: note: "int" is missing following "Evaluator" protocol member:',
        f'user.py:{first_bad + 4}: note:     __call__',
        f'user.py:{first_bad + 5}: error: List item 1 has incompatible type "int"; expected '
        f'"Callable[[Study, TrialRecord], object]"  [list-item]',
    ]
    assert out.returncode == 1
