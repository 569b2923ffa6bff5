"""Property tests of the engine's inputs (hypothesis): study configs as stored, search arguments, CLI arguments.
Every input either works or is refused with the engine's ValueError naming what was wrong (the CLI: exit 2 and
a message); never a traceback of another type, and a refused command never changes a stored study."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from pathlib import Path

import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nas
import search_spaces
from nas.engine.schema import StudyConfig

from engine_helpers import stored_record

EVALUATOR = "engine_helpers:evaluator_that_fails_on_wide_first_stages"
SPACE = search_spaces.get("conv", input_shape=(8, 8, 1), widths=(8, 16), stages=(1, 2))
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

junk = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True) |
                    st.text(max_size=12), lambda inner: st.lists(inner, max_size=3) |
                    st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


def _valid() -> dict:
    return json.loads(StudyConfig(space=SPACE.config(), data={"kind": "evaluator"}, evaluator=EVALUATOR,
                                  goal=nas.Goal(objectives=("accuracy", "params")),
                                  strategy=nas.Strategy(n_trials=3, sampler="tpe"),
                                  run=nas.Run(artifacts="/tmp/x")).to_json())


PATHS = sorted([(k,) for k in _valid()] + [(g, k) for g in ("goal", "strategy", "run") for k in _valid()[g]])
PREFIXES = ("study config", "`", "budget:", "device:", "component", "constraint", "goal", "strategy", "run",
            "backend", "Ray:", "KerasTuner:", "a component", "space", "data")


@SETTINGS
@given(path=st.sampled_from(PATHS), value=junk, drop=st.booleans())
def test_a_stored_config_reads_back_or_names_what_is_wrong(path: tuple[str, ...], value, drop: bool) -> None:
    data = _valid()
    where = data if len(path) == 1 else data[path[0]]
    if drop:
        del where[path[-1]]
    else:
        where[path[-1]] = value
    try:
        text = json.dumps(data)
    except ValueError:
        return
    try:
        config = StudyConfig.from_json(text)
    except ValueError as exc:
        assert str(exc).startswith(PREFIXES), str(exc)
        return
    assert StudyConfig.from_json(config.to_json()) == config


@pytest.fixture(scope="module")
def keep(tmp_path_factory) -> tuple[Path, str, str]:
    """A storage holding a finished study whose record must survive every refused command."""
    folder = tmp_path_factory.mktemp("fuzz")
    nas.search(SPACE, strategy=nas.Strategy(n_trials=2, sampler="random", seed=0, max_failures=20),
               run=nas.Run(storage=folder / "s.db", study="keep"), evaluator=EVALUATOR, verbose=False)
    study = optuna.load_study(study_name="keep", storage=f"sqlite:///{folder}/s.db")
    trials = [(t.number, t.state.name, t.values) for t in study.trials]
    return folder, json.dumps(stored_record(study)), json.dumps(trials)


def _copy_db(src: Path, dst: Path) -> None:
    """A consistent copy of a live SQLite study (its write-ahead log included)."""
    import sqlite3

    dst.unlink(missing_ok=True)
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def _unchanged(keep: tuple[Path, str, str], file: str = "s.db") -> None:
    folder, config, trials = keep
    url = f"sqlite:///{folder}/{file}"
    assert optuna.get_all_study_names(url) in (["keep"], ["keep", "made"])
    study = optuna.load_study(study_name="keep", storage=url)
    assert json.dumps(stored_record(study)) == config
    assert json.dumps([(t.number, t.state.name, t.values) for t in study.trials]) == trials


ARGS = {"objectives": junk | st.lists(st.sampled_from(["accuracy", "macs", "params", "latency", "speed"]), max_size=3),
        "n_trials": junk | st.integers(-3, 10**9), "sampler": junk | st.sampled_from(["tpe", "nsga2", "grid", "cmaes"]),
        "pruner": junk | st.sampled_from(["median", "hyperband", "nope"]), "budget": junk,
        "constraints": junk | st.dictionaries(st.sampled_from(["max_macs", "max_params", "min_acc"]), junk, max_size=2),
        "warm_start": junk, "seed": junk | st.integers(-5, 2**40),
        "backend": junk | st.sampled_from(["local", "ray", "x"]),
        "device": junk | st.sampled_from(["cpu", "npu"]), "max_retries": junk, "max_failures": junk,
        "study_name": junk}


@pytest.mark.slow
@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=st.fixed_dictionaries({}, optional=ARGS))
def test_create_study_arguments_work_or_are_refused_by_name(keep, args: dict) -> None:
    folder = keep[0]
    args = {**args, "study_name": args.get("study_name", "made")}
    if args["study_name"] == "made":
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name="made", storage=f"sqlite:///{folder}/s.db")
    groups: dict = {"goal": {}, "strategy": {}, "run": {"storage": folder / "s.db"}}
    for k, v in args.items():
        group = "goal" if k in ("objectives", "constraints") else "run" if k in ("study_name", "backend", "device") \
            else "strategy"
        groups[group]["study" if k == "study_name" else k] = v
    try:
        study = nas.create_study(SPACE, evaluator=EVALUATOR, verbose=False, **groups)
    except ValueError as exc:
        assert "`" in str(exc) or ":" in str(exc)
    else:
        # the record holds everything but where it lives (a storage URL may carry a password)
        where_not_stored = dataclasses.replace(study.config, run=dataclasses.replace(study.config.run, storage=None))
        assert StudyConfig.from_json(study.config.to_json()) == where_not_stored
        if study.name != "made":
            optuna.delete_study(study_name=study.name, storage=f"sqlite:///{folder}/s.db")
    _unchanged(keep)


WORDS = st.sampled_from(["status", "front", "summary", "resume", "export", "baselines", "worker", "search",
                         "--study", "keep", "nope", "--storage", "--n-trials", "--n-workers", "--backend", "ray",
                         "--resources", "{cpu: 1", "--scheduler", "asha", "--objectives", "accuracy,speed", "-1", "0",
                         "2", "--limit", "--input-shape", "axb", "8x8x1", "--classes", "lenet5", "--which", "knee",
                         "--max-macs", "x", "--json", "--max-concurrent", "--ray-address", "--seed", "--version"])


@pytest.mark.slow
@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(WORDS, min_size=1, max_size=6))
def test_cli_arguments_exit_0_or_2_with_a_message(keep, words: list[str]) -> None:
    from nas.cli import main

    folder = keep[0]
    if any(w in ("export", "search", "worker") for w in words) or (words[0] == "resume" and "ray" in words):
        return  # these train, export or start Ray: covered by their own tests
    _copy_db(folder / "s.db", folder / "cli.db")  # a fresh copy: a resume that is accepted may change it
    argv = words + (["--storage", str(folder / "cli.db")] if "--storage" not in words else [])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: usage errors exit 2, --version / --help exit 0
            code = exc.code
    assert code in (0, 2), (argv, code, err.getvalue())
    if code == 2:
        assert err.getvalue().strip(), argv
        _unchanged((folder, keep[1], keep[2]), "cli.db")
    _unchanged(keep)


def test_refused_resume_changes_nothing(keep, tmp_path: Path) -> None:
    _copy_db(keep[0] / "s.db", tmp_path / "s.db")
    study = nas.load_study("keep", tmp_path / "s.db")
    before = stored_record(study.optuna_study)
    for kwargs in ({"n_trials": 0}, {"backend": "spark"}, {"backend": nas.Ray(scheduler="asha")},
                   {"backend": "keras_tuner"}):
        with pytest.raises(ValueError):
            study.resume(verbose=False, **kwargs)
    assert stored_record(nas.load_study("keep", tmp_path / "s.db").optuna_study) == before
