"""Bad input to every entry point (YAML configs, the command line, the Python API) is refused before anything is
trained or stored: a ValueError (exit status 2 on the command line) whose message names the field, the rule and the
value, no traceback, nothing created (no storage file, no lock file, no folder), nothing stored changed.

Configs are written in the grouped form (``goal:``, ``strategy:``, ``run:``); a few are flat configs of earlier
versions, which are refused as clearly and, when valid, still run with a deprecation warning. Evaluator searches
(tests/engine_helpers.py) on real SQLite, journal and PostgreSQL storages, in this process or in real worker
processes; nothing trains. The last two tests are property tests: generated grouped configs and ``create_study``
group arguments, each either accepted or refused with a message naming a known key or flag.
"""

from __future__ import annotations

import atexit
import copy
import dataclasses
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from test_cli_errors import run

import nas
import search_spaces
from nas.config import EXPORT_KEYS, load_config

from engine_helpers import store_record, stored_record

EVALUATOR = "engine_helpers:evaluator_that_fails_on_wide_first_stages"
SPACE = {"name": "conv", "options": {"stages": (1, 2), "depth": (1, 1), "widths": (4, 8, 16, 32), "kernels": (3,),
                                     "hidden": (0, 0), "dropouts": (0.0,)}}
POSTGRES = os.environ.get("NAS_TEST_POSTGRES_URL")
FILTERS_RULE = ("an integer in [1, 65,536] (channels of one layer: no network needs more, and one 3x3 convolution "
                "that wide holds 38.7 billion weights)")
STUDY_RULE = "a non-blank string of at most 200 characters without control characters or '/'"


def _files(root: Path) -> list[str]:
    """Every file and folder under ``root``: what a refused command must leave as it was."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _config(tmp_path: Path, text: str, name: str = "c.yaml") -> str:
    """A YAML config file holding ``text``."""
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# a quick evaluator search in the grouped form (block style, so that the line numbers of messages are fixed)
QUICK = (f"space: conv\nevaluator: {EVALUATOR}\ngoal:\n  objectives: [accuracy, params]\nstrategy:\n  n_trials: 2\n"
         f"  sampler: random\n  seed: 0\nrun:\n  study: q\n")
# the same search as a flat config of earlier versions (read with a deprecation warning)
QUICK_FLAT = ("study: q\nspace: conv\nobjectives: [accuracy, params]\nn_trials: 2\nsampler: random\nseed: 0\n"
              f"evaluator: {EVALUATOR}\n")
DROP = object()  # in _quick(): leave the key out


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in, mapping into mapping (a ``DROP`` value removes the key)."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if value is DROP:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict) and key != "space":
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _quick(**changes: Any) -> str:
    """QUICK with ``changes`` merged in (``run={"storage": ""}`` sets run.storage), as YAML text."""
    return yaml.safe_dump(_merge(yaml.safe_load(QUICK), changes), sort_keys=False)


def _study(storage: Any, name: str = "s", n_trials: int = 2, artifacts: Any = None) -> nas.Study:
    """A finished evaluator search: ``n_trials`` trials, in this process."""
    return nas.search(SPACE, evaluator=EVALUATOR, goal=nas.Goal(objectives=("accuracy", "params")),
                      strategy=nas.Strategy(n_trials=n_trials, sampler="random", seed=0),
                      run=nas.Run(study=name, storage=storage, artifacts=artifacts), verbose=False)


def _stored(study: nas.Study) -> tuple[str, str, list[tuple[int, str]]]:
    """What a refused command must leave as it was: the stored record, its summary and every trial's state."""
    fresh = nas.load_study(study.name, study.storage_url).optuna_study
    return (json.dumps(stored_record(fresh), sort_keys=True), fresh.user_attrs["nas"],
            [(t.number, t.state.name) for t in fresh.get_trials(deepcopy=False)])


# ---------------------------------------------------------------- resume never lowers the target

def _storages() -> list[Any]:
    kinds = [pytest.param("sqlite", id="sqlite"), pytest.param("journal", id="journal")]
    kinds.append(pytest.param("postgresql", id="postgresql", marks=pytest.mark.skipif(
        POSTGRES is None, reason="NAS_TEST_POSTGRES_URL not set (.ci/run starts PostgreSQL and sets it)")))
    return kinds


@pytest.mark.parametrize("kind", _storages())
def test_resume_refuses_a_target_below_the_finished_trials(tmp_path: Path, kind: str) -> None:
    storage = {"sqlite": str(tmp_path / "r.db"), "journal": str(tmp_path / "r.journal"),
               "postgresql": POSTGRES}[kind]
    name = f"lower-{uuid.uuid4().hex[:8]}"
    study = _study(storage, name, n_trials=3, artifacts=tmp_path / "art")
    before = _stored(study)
    message = (f"`n_trials` is the target of finished trials and a resume can only raise it: it must be at least the "
               f"3 trials study {name!r} has finished, but got n_trials=2")
    with pytest.raises(ValueError) as err:
        study.resume(n_trials=2, verbose=False)
    assert str(err.value) == message
    code, out, err_text = run("resume", "--study", name, "--storage", storage, "--n-trials", "2")
    assert (code, out, err_text) == (2, "", f"nas: error: {message}\n")
    assert _stored(study) == before and nas.load_study(name, storage).n_trials == 3
    code, out, _ = run("status", "--study", name, "--storage", storage)
    assert code == 0 and "progress 3/3 finished: 3 complete" in out
    # the finished count itself is a valid target (nothing to run), and a higher one runs to it
    assert study.resume(n_trials=3, verbose=False).counts()["done"] == 3
    assert study.resume(n_trials=4, verbose=False).counts()["done"] == 4 and study.n_trials == 4
    if kind == "postgresql":
        optuna.delete_study(study_name=name, storage=storage)


# ---------------------------------------------------------------- `nas search CONFIG`

SEARCH_CASES = [
    # (id, the config's text, extra argv, the message)
    ("storage under a file", QUICK, ("--storage", "{tmp}/regular/x.db"),
     "`storage` must be a path nas can create, but got storage='sqlite:///{tmp}/regular/x.db': '{tmp}/regular' is "
     "a file, not a folder"),
    ("storage under /proc", QUICK, ("--storage", "/proc/nas-test/x.db"),
     "`storage` must be a path nas can create, but got storage='sqlite:////proc/nas-test/x.db': nothing can be "
     "written in '/proc'"),
    ("storage a folder", QUICK, ("--storage", "{tmp}/folder"),
     "`storage` must be a file (SQLite or journal), but got storage='sqlite:///{tmp}/folder', which is a folder"),
    ("storage empty", _quick(run={"storage": ""}), (),
     "`storage` must be a file path or a storage URL, but got storage=''; leave it out for the default runs/nas.db"),
    ("storage empty flag", QUICK, ("--storage", ""),
     "`storage` must be a file path or a storage URL, but got storage=''"),
    ("study left empty", _quick(run={"study": None}), (),
     "config '{tmp}/c.yaml': `run.study` (the study name) is empty; give a name or leave the key out (nas then names "
     "the study after the space and the time)"),
    ("base spec missing", _quick(space={"name": "compound", "options": {"base": {"spec": "gone.json"}}}), (),
     "config: the compound space's `base.spec` must be a spec JSON file (as exports write), but got "
     "base.spec='gone.json' (no such file)"),
    ("export which", _quick(export={"which": "nonsense"}), (),
     "`export.which` must be a trial number, 'best', 'knee' or 'front', but got export.which='nonsense'"),
    ("export retrain_epochs", _quick(export={"retrain_epochs": "x"}), (),
     "`export.retrain_epochs` must be an integer in [0, 10,000], but got export.retrain_epochs='x'"),
    ("export retrain with an evaluator", _quick(export={"retrain_epochs": 2}), (),
     "config '{tmp}/c.yaml': `export.retrain_epochs` retrains on the study's data, but this study scores "
     "architectures with an evaluator and has none; got export.retrain_epochs=2"),
    ("export path under a file", _quick(export={"path": "regular/x"}), (),
     "`export.path` must be a path nas can create, but got export.path='regular/x': '{tmp}/regular' is a file, not "
     "a folder"),
    ("export max_macs negative", _quick(export={"max_macs": -1}), (),
     "`export.max_macs` must be a positive finite number, but got export.max_macs=-1"),
    ("export max_macs nan", _quick(export={"max_macs": float("nan")}), (),
     "`export.max_macs` must be a positive finite number, but got export.max_macs=nan"),
    ("export max_macs with front", _quick(export={"which": "front", "max_macs": 5}), (),
     "`export.max_macs` picks the best trial within it: it needs export.which='best', but got export.which='front'"),
    ("duplicate key", QUICK.replace("  seed: 0\n", "  seed: 0\n  n_trials: 50\n"), (),
     "config '{tmp}/c.yaml': `n_trials` is given twice in one mapping (lines 6 and 9); YAML would keep the last "
     "silently, so give it once"),
    ("duplicate group", QUICK + "goal: {objectives: [accuracy]}\n", (),
     "config '{tmp}/c.yaml': `goal` is given twice in one mapping (lines 3 and 11); YAML would keep the last "
     "silently, so give it once"),
    ("duplicate nested key", QUICK.replace("  seed: 0\n", "  seed: 0\n  budget: {epochs: 1, epochs: 2}\n"), (),
     "`epochs` is given twice in one mapping (line 9); YAML would keep the last silently"),
    ("blank study name", QUICK, ("--study", "   "), f"`study` must be {STUDY_RULE}, but got study='   '"),
    ("control characters in the study name", QUICK, ("--study", "a\nb"),
     f"`study` must be {STUDY_RULE}, but got study='a\\nb'"),
    ("widths of 1e9", _quick(space={"name": "conv", "options": {"widths": [8, 1000000000]}}), (),
     "conv space: `widths` must be a list of channel counts in [1, 65,536] (no layer needs more, and one 3x3 "
     "convolution that wide holds 38.7 billion weights), but got widths=[8, 1000000000]"),
    # a search that trains loads its data (a search with an evaluator has none)
    ("train_samples beyond the data", _quick(evaluator=DROP, data={"name": "digits", "train_samples": 1000000000}),
     (), "`train_samples` must be at most the 1,438 training images the data has, but got train_samples=1000000000; "
         "leave it out to use them all"),
    ("Ray resources NaN", _quick(run={"backend": {"kind": "ray", "resources": {"cpu": float("nan")}}}), (),
     "Ray: `resources['cpu']` must be a finite number >= 0, but got cpu=nan"),
    ("space options as text", _quick(space={"name": "conv", "options": "abc"}), (),
     "`space.options` must be a dict of option names to values, but got space.options='abc'"),
    ("n_trials out of range", _quick(strategy={"n_trials": 0}), (),
     "`n_trials` must be an integer in [1, 1,000,000], but got n_trials=0"),
    ("unknown field in a group", _quick(strategy={"n_trial": 5}), (),
     "strategy: unknown field 'n_trial'; known fields: n_trials, sampler, pruner, budget, seed, warm_start, "
     "sample_within_limits, max_retries, max_failures"),
    ("a group that is not a mapping", QUICK.replace("run:\n  study: q\n", "run: q\n"), (),
     "`run` must be a nas.Run or a mapping of its fields (study, storage, artifacts, backend, device), but got 'q'"),
    # a grouped config with one setting left at the top level, spelled as in earlier versions
    ("a flat setting in a grouped config", QUICK + "n_workers: 2\n", (),
     "config '{tmp}/c.yaml': `n_workers` is a flat setting of earlier versions, but this config is grouped; write it "
     "in `run.backend` ({kind: local, n_workers: ...}), but got n_workers=2"),
    # flat configs of earlier versions: refused as clearly
    ("flat: storage empty", QUICK_FLAT + "storage: ''\n", (),
     "`storage` must be a file path or a storage URL, but got storage=''; leave it out for the default runs/nas.db"),
    ("flat: study left empty", QUICK_FLAT.replace("study: q\n", "study:\n"), (),
     "config '{tmp}/c.yaml': `study` (the study name) is empty; give a name or leave the key out (nas then names "
     "the study after the space and the time)"),
    ("flat: duplicate key", QUICK_FLAT + "n_trials: 50\n", (),
     "config '{tmp}/c.yaml': `n_trials` is given twice in one mapping (lines 4 and 8); YAML would keep the last "
     "silently, so give it once"),
]
WARNED = {"flat: storage empty"}  # flat configs that load (with the deprecation warning) and are refused after
XFAIL: dict[str, str] = {}  # known regressions for the code to fix (strict xfail): none


def _cases(cases: list[tuple[Any, ...]]) -> list[Any]:
    """The cases as pytest parameters named by their first item, the known regressions marked strict xfail."""
    return [pytest.param(c, id=c[0], marks=[pytest.mark.xfail(strict=True, reason=XFAIL[c[0]])] if c[0] in XFAIL
                         else []) for c in cases]


@pytest.mark.parametrize("case", _cases(SEARCH_CASES))
def test_search_refuses_bad_configs_before_creating_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             case: tuple[str, str, tuple[str, ...], str]) -> None:
    name, text, extra, message = case
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NAS_STORAGE", raising=False)
    (tmp_path / "regular").write_text("a file\n")
    (tmp_path / "folder").mkdir()
    config = _config(tmp_path, text)
    before = _files(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in ("search", config, *extra)]
    code, out, err = run(*argv)
    assert code == 2 and out == "", err
    warning, _, error = err.rpartition("nas: error: ")
    assert error.count("\n") == 1 and error.endswith("\n"), err
    assert message.replace("{tmp}", str(tmp_path)) in error, err
    # a flat config that loads says how to write it now (the text: test_a_flat_config_still_runs_...)
    assert warning.startswith(f"nas: warning: config {config!r}: flat settings ") if name in WARNED else warning == ""
    assert _files(tmp_path) == before  # no storage, lock file, artefact or export folder
    assert not Path("/proc/nas-test").exists()


def test_a_flat_config_still_runs_with_a_deprecation_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A valid flat config of earlier versions is read as its grouped form, with a warning that shows that form."""
    monkeypatch.chdir(tmp_path)
    config = _config(tmp_path, QUICK_FLAT + f"storage: {tmp_path / 'f.db'}\n")
    code, out, err = run("search", config, "--create-only")
    assert code == 0, err
    assert out == (f"nas: study 'q' in sqlite:///{tmp_path / 'f.db'}\nnas: created study 'q' and ran nothing; start "
                   f"workers with `nas worker --study q --storage URL` (or NAS_STORAGE=URL nas worker --study q)\n")
    assert err == (f"nas: warning: config {config!r}: flat settings (n_trials, objectives, sampler, seed, storage, "
                   f"study) are deprecated since nas 0.2; write them in the groups goal, strategy and run, e.g.\n"
                   f"goal:\n  objectives: [accuracy, params]\nstrategy: {{n_trials: 2, sampler: random, seed: 0}}\n"
                   f"run: {{study: q, storage: {tmp_path / 'f.db'}}}\n")
    stored = stored_record(nas.load_study("q", tmp_path / "f.db").optuna_study)
    assert (stored["goal"]["objectives"], stored["strategy"]["n_trials"], stored["strategy"]["sampler"],
            stored["strategy"]["seed"], stored["run"]["study"]) == (["accuracy", "params"], 2,
                                                                    {"name": "random", "options": {}}, 0, "q")
    # and the grouped form of the same search stores the same record (but the time it was created)
    grouped = _config(tmp_path, QUICK.replace("study: q", f"study: g\n  storage: {tmp_path / 'f.db'}"), "g.yaml")
    code, _, err = run("search", grouped, "--create-only")
    assert (code, err) == (0, "")
    again = stored_record(nas.load_study("g", tmp_path / "f.db").optuna_study)
    for record in (stored, again):
        record.pop("created")
        record["run"].pop("study")
        record["run"].pop("artifacts")
    assert again == stored


def test_a_config_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    code, out, err = run("search", str(tmp_path / "cfg"))
    assert (code, out, err) == (2, "", f"nas: error: config file {str(tmp_path / 'cfg')!r} must be a YAML file, but "
                                       f"it is a folder\n")
    assert _files(tmp_path) == ["cfg"]


def test_a_config_that_is_not_text(tmp_path: Path) -> None:
    (tmp_path / "bin.yaml").write_bytes(b"run: {study: \xff\xfe}\n")
    code, out, err = run("search", str(tmp_path / "bin.yaml"))
    assert (code, out, err) == (2, "", f"nas: error: config {str(tmp_path / 'bin.yaml')!r} could not be read as UTF-8 "
                                       f"text: 'utf-8' codec can't decode byte 0xff in position 13: invalid start "
                                       f"byte\n")
    assert _files(tmp_path) == ["bin.yaml"]


def test_a_yaml_merge_may_override_its_defaults(tmp_path: Path) -> None:
    """Only a key written twice in one mapping is refused: `<<: *defaults` followed by an override is YAML's meaning."""
    config = _config(tmp_path, QUICK.replace("  seed: 0\n", "  seed: 0\n  budget:\n    <<: &defaults {epochs: 1, "
                                                            "batch_size: 32}\n    epochs: 2\n"))
    assert load_config(config).config.strategy.budget == nas.Budget(epochs=2, batch_size=32)


# ---------------------------------------------------------------- commands on an existing study

@pytest.fixture()
def finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[nas.Study, Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAS_STORAGE", str(tmp_path / "s.db"))  # `nas worker` sets it in this process: undone after
    (tmp_path / "regular").write_text("a file\n")
    return _study(tmp_path / "s.db", "s", n_trials=2), tmp_path


COMMAND_CASES = [
    ("plot into a missing folder", ("front", "--plot", "nodir/f.png"),
     "`plot` must be a file in an existing folder, but got plot='nodir/f.png' (there is no folder 'nodir')"),
    ("export under a file", ("export", "--out", "regular/x"),
     "`path` must be a path nas can create, but got path='regular/x': '{tmp}/regular' is a file, not a folder"),
    ("export under /proc", ("export", "--out", "/proc/nas-test"),
     "`path` must be a path nas can create, but got path='/proc/nas-test': nothing can be written in '/proc' (No such "
     "file or directory)"),
    ("export max-macs negative", ("export", "--max-macs", "-1"),
     "`max_macs` must be a positive finite number, but got max_macs=-1.0"),
    ("export max-macs nan", ("export", "--max-macs", "nan"),
     "`max_macs` must be a positive finite number, but got max_macs=nan"),
    ("export max-params with knee", ("export", "--which", "knee", "--max-params", "5"),
     "`max_params` picks the best trial within it: it needs which='best', but got which='knee'"),
    ("export which not a number", ("export", "--which", "²"),
     "`which` must be a trial number, 'best', 'knee' or 'front', but got which='²'"),
    ("worker seed", ("worker", "--seed", "-1"),
     "`--seed` must be an integer in [0, 2,147,483,647], but got --seed=-1"),
    ("worker max-trials", ("worker", "--max-trials", "-1"), "`--max-trials` must be an integer >= 0, but got "
                                                            "--max-trials=-1"),
    ("resume max-failures", ("resume", "--max-failures", "0"),
     "`max_failures` must be an integer in [1, 1,000,000], but got max_failures=0"),
]


@pytest.mark.parametrize("case", _cases(COMMAND_CASES))
def test_commands_refuse_bad_flags_and_change_nothing(finished: tuple[nas.Study, Path],
                                                      case: tuple[str, tuple[str, ...], str]) -> None:
    study, tmp = finished
    _, argv, message = case
    before, files = _stored(study), _files(tmp)
    code, out, err = run(argv[0], "--study", "s", "--storage", str(tmp / "s.db"), *argv[1:])
    assert code == 2 and err == f"nas: error: {message.replace('{tmp}', str(tmp))}\n", err
    assert out == ""
    assert _stored(study) == before and _files(tmp) == files
    assert not Path("/proc/nas-test").exists()


# ---------------------------------------------------------------- max_failures: the reason, no traceback

def test_max_failures_stops_with_the_reason_and_how_to_continue(tmp_path: Path) -> None:
    space = "{name: conv, options: {stages: [1, 1], depth: [1, 1], widths: [8, 64], kernels: [3], hidden: [0, 0]}}"
    config = _config(tmp_path, QUICK.replace("space: conv", f"space: {space}").replace("n_trials: 2", "n_trials: 6")
                     .replace("  seed: 0\n", "  seed: 0\n  max_failures: 1\n")
                     .replace("  study: q\n", f"  study: q\n  storage: {tmp_path / 'f.db'}\n"))
    code, out, err = run("search", config)
    assert code == 1 and "Traceback" not in err
    study = nas.load_study("q", tmp_path / "f.db")
    c = study.counts()
    assert c["failed"] == 1 and c["done"] < 6
    assert err == ("nas: stopped: 1 trials failed (limit max_failures=1); fix the cause, then continue with "
                   "`nas resume --study q --max-failures N` (Python: study.resume(max_failures=N)) with N above the 1 "
                   "failed trials\n")
    code, _, err = run("resume", "--study", "q", "--storage", str(tmp_path / "f.db"), "--max-failures", "1")
    assert (code, err) == (2, "nas: error: `max_failures` must be above the 1 failed trials of study 'q' (failed "
                              "trials stay failed, so the search would stop at once), but got max_failures=1\n")
    assert nas.load_study("q", tmp_path / "f.db").config.strategy.max_failures == 1
    code, _, err = run("resume", "--study", "q", "--storage", str(tmp_path / "f.db"), "--max-failures", "100")
    assert code == 0, err
    study = nas.load_study("q", tmp_path / "f.db")
    assert study.counts()["done"] == 6 and study.config.strategy.max_failures == 100


@pytest.mark.slow
def test_max_failures_in_worker_processes_prints_no_traceback(tmp_path: Path) -> None:
    """The same stop from a real `nas search` process with two worker processes."""
    space = "{name: conv, options: {stages: [1, 1], depth: [1, 1], widths: [64], kernels: [3], hidden: [0, 0]}}"
    config = _config(tmp_path, QUICK.replace("space: conv", f"space: {space}")
                     .replace("  seed: 0\n", "  seed: 0\n  max_failures: 2\n")
                     + "  backend: {kind: local, n_workers: 2}\n")
    out = subprocess.run([sys.executable, "-m", "nas.cli", "search", config, "--storage", str(tmp_path / "w.db")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    # both workers may have failed a trial when the supervisor counts: 2 or 3 failures, all of this reason
    stop = re.fullmatch(r"nas: stopped: ([23]) trials failed \(limit max_failures=2\); the last errors: "
                        r"RuntimeError: refusing first stage of 64 filters"
                        r"( \| RuntimeError: refusing first stage of 64 filters)+; "
                        r"fix the cause, then continue with `nas resume --study q --max-failures N` "
                        r"\(Python: study.resume\(max_failures=N\)\) with N above the ([23]) failed trials\n",
                        out.stderr)
    assert stop is not None and stop.group(1) == stop.group(3), out.stderr
    assert "nas: stopped; continue with" not in out.stdout  # a plain resume would stop again at once
    c = nas.load_study("q", tmp_path / "w.db").counts()
    assert c["failed"] >= int(stop.group(1)) and c["running"] == 0 and c["done"] == 0


# ---------------------------------------------------------------- data moved or deleted before a resume

def _png_folder(root: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


@pytest.mark.parametrize("case", _cases([("npz deleted",), ("npz unreadable",), ("folder moved",),
                                         ("folder path moved",)]))
def test_resume_checks_the_data_before_starting_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        case: tuple[str]) -> None:
    """The data of a study moved or deleted before a resume: one clear error, no worker started (the folder given
    as {folder: path}, as a YAML config writes it, or as its path, as the README shows for Python)."""
    how = case[0]
    monkeypatch.setenv("NAS_STORAGE", str(tmp_path / "d.db"))  # `nas worker` sets it in this process: undone after
    where = nas.Run(study="d", storage=tmp_path / "d.db")
    if how.startswith("npz"):
        x = np.random.default_rng(0).random((30, 8, 8, 1)).astype(np.float32)
        study = nas.create_study(SPACE, (x, np.arange(30) % 3), strategy=nas.Strategy(n_trials=2), run=where,
                                 verbose=False)
        npz = Path(study.config.data["path"])
        if how == "npz deleted":
            npz.unlink()
            reason = f"`data` .npz file {str(npz)!r} does not exist or is not a file"
        else:
            npz.write_bytes(npz.read_bytes()[:100])  # cut short, as by a full disk
            reason = (f"`data` .npz file {str(npz)!r} must be a numpy .npz archive, but it could not be read "
                      f"(BadZipFile)")
    else:
        folder = _png_folder(tmp_path / "images")
        data = {"folder": str(folder)} if how == "folder moved" else str(folder)
        study = nas.create_study(SPACE, data, strategy=nas.Strategy(n_trials=2), run=where, verbose=False)
        folder.rename(tmp_path / "moved")
        reason = f"`data` folder {str(folder)!r} does not exist or is not a folder"
    before, files = _stored(study), _files(tmp_path)
    message = f"study 'd' cannot resume: its `data` cannot be loaded here: {reason}"
    with pytest.raises(ValueError) as err:
        study.resume(verbose=False)
    assert str(err.value) == message
    code, out, err_text = run("resume", "--study", "d", "--storage", str(tmp_path / "d.db"))
    assert (code, out, err_text) == (2, "", f"nas: error: {message}\n")
    # no worker was started (none wrote a log), no trial was made
    assert _stored(study) == before and _files(tmp_path) == files and before[2] == []
    code, _, err_text = run("worker", "--study", "d", "--storage", str(tmp_path / "d.db"))
    assert (code, err_text) == (2, f"nas: error: {reason}\n")


# ---------------------------------------------------------------- a stored sampler edited into nonsense

@pytest.mark.parametrize("sampler, message", [
    ({"name": "GridSampler", "options": {"search_space": [1, 2]}},
     "`sampler` GridSampler with options {'search_space': [1, 2]}: AttributeError: 'list' object has no attribute "
     "'items'"),
    ({"name": "tpe", "options": {"n_startup_trials": "x"}},
     "`sampler.n_startup_trials` must be an integer >= 1, but got sampler.n_startup_trials='x'"),
    ({"name": "nsga2", "options": {"population_size": 1}},
     "`sampler.population_size` must be an integer >= 2, but got sampler.population_size=1"),
], ids=["GridSampler with a list", "tpe with text", "nsga2 population of 1"])
def test_a_malformed_stored_sampler_is_refused_before_workers_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    sampler: dict[str, Any], message: str) -> None:
    monkeypatch.setenv("NAS_STORAGE", str(tmp_path / "m.db"))  # `nas worker` sets it in this process: undone after
    study = nas.create_study(SPACE, evaluator=EVALUATOR, goal=nas.Goal(objectives=("accuracy", "params")),
                             strategy=nas.Strategy(n_trials=2), run=nas.Run(study="m", storage=tmp_path / "m.db"),
                             verbose=False)
    stored = stored_record(study.optuna_study)
    stored["strategy"]["sampler"] = sampler
    store_record(study.optuna_study, stored)  # what anyone who can write to the storage can do
    before, files = _stored(study), _files(tmp_path)
    for command in ("resume", "worker"):
        code, out, err = run(command, "--study", "m", "--storage", str(tmp_path / "m.db"))
        assert (code, out, err) == (2, "", f"nas: error: {message}\n"), command
    assert _stored(study) == before and _files(tmp_path) == files


# ---------------------------------------------------------------- the Python API

def _xy(n: int = 30, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    return np.full((n, 4, 4), 0.5, dtype=np.float32), np.arange(n) % k


API_CASES = [
    ("space options as text", lambda: search_spaces.from_config({"name": "conv", "options": "abc"}),
     "a space config's `options` must be a dict of option names to values, but got options='abc'"),
    ("space name a list", lambda: search_spaces.from_config({"name": ["conv"]}),
     "`space` must be one of conv, residual, inception, mbconv, families, compound, nasbench201, but got "
     "space=['conv']"),
    ("widths of 1e9", lambda: search_spaces.get("mbconv", widths=(16, 10**9)),
     "mbconv space: `widths` must be a list of channel counts in [1, 65,536]"),
    ("head widths of 1e9", lambda: search_spaces.get("families", head_widths=(0, 10**9)), "`head_widths` must be a "
                                                                                          "list of channel counts in "
                                                                                          "[0, 65,536]"),
    ("inception branch of 1e9", lambda: search_spaces.get("inception", b1=(10**9,)), "`b1` must be a list of channel"),
    ("ArchSpec filters", lambda: nas.ArchSpec(input_shape=(8, 8, 1), num_classes=2,
                                              stages=(nas.Conv(filters=99_999_999_999),)),
     f"`filters` must be {FILTERS_RULE}, but got filters=99999999999"),
    ("spec JSON filters", lambda: nas.ArchSpec.from_json(json.dumps({"input_shape": [8, 8, 1], "num_classes": 2,
                                                                     "stages": ["mbconv_c65537"]})),
     "`filters` must be an integer in [1, 65,536]"),
    ("head hidden units", lambda: nas.Head(hidden=(65_537,)), "`head.hidden` must be an integer in [1, 65,536]"),
    ("inception branch", lambda: nas.Inception(b1=70_000), "`b1` must be an integer in [0, 65,536]"),
    ("validation missing classes", lambda: nas.load_data((*_xy(), *_xy(4, 2))),
     "`y_val` must hold every class of `y_train` (0..2), but label 2 is missing from validation"),
    ("boolean images", lambda: nas.load_data((np.zeros((30, 4, 4), bool), np.arange(30) % 3)),
     "`x` must be a numeric array of images (uint8 0-255, or floats in [0, 1]), but got dtype bool; for 0/1 images "
     "pass x.astype(np.uint8) * 255 or x.astype(np.float32)"),
    ("train_samples 1e9", lambda: nas.load_data("digits", train_samples=10**9),
     "`train_samples` must be at most the 1,438 training images the data has, but got train_samples=1000000000"),
    ("val_samples beyond", lambda: nas.load_data(_xy(), val_samples=7),
     "`val_samples` must be at most the 6 validation images the data has, but got val_samples=7"),
    ("Ray NaN", lambda: nas.Ray(resources={"cpu": float("nan")}),
     "Ray: `resources['cpu']` must be a finite number >= 0, but got cpu=nan"),
    ("Ray inf", lambda: nas.Ray(resources={"gpu": float("inf")}), "but got gpu=inf"),
    ("n_trials of a strategy", lambda: nas.Strategy(n_trials=-1),
     "`n_trials` must be an integer in [1, 1,000,000], but got n_trials=-1"),
    ("a goal that is not a mapping", lambda: nas.create_study(SPACE, evaluator=EVALUATOR, goal=["accuracy"]),
     "`goal` must be a nas.Goal or a mapping of its fields (objectives, constraints), but got ['accuracy']"),
    ("an unknown field of a group", lambda: nas.create_study(SPACE, evaluator=EVALUATOR, run={"study_name": "s"}),
     "run: unknown field 'study_name'; known fields: study, storage, artifacts, backend, device"),
]


@pytest.mark.parametrize("case", _cases(API_CASES))
def test_python_api_names_the_field_and_the_value(case: tuple[str, Any, str]) -> None:
    _, make, message = case
    with pytest.raises(ValueError) as err:
        make()
    assert message in str(err.value), str(err.value)


@pytest.mark.parametrize("name", ["   ", "", "a\nb", "tab\there", "nul\x00", "a/b", "x" * 201],
                         ids=["blank", "empty", "newline", "tab", "nul", "slash", "201 characters"])
@pytest.mark.parametrize("form", ["Run", "dict"])
def test_study_names_are_refused_before_anything_is_stored(tmp_path: Path, name: str, form: str) -> None:
    with pytest.raises(ValueError) as err:
        where = {"study": name, "storage": tmp_path / "n.db"}
        nas.create_study(SPACE, evaluator=EVALUATOR, run=nas.Run(**where) if form == "Run" else where, verbose=False)
    assert str(err.value) == f"`study` must be {STUDY_RULE}, but got study={name!r}"
    assert _files(tmp_path) == []


@pytest.mark.parametrize("storage, message", [
    ("", "`storage` must be a file path or a storage URL, but got storage=''"),
    ("  ", "`storage` must be a file path or a storage URL, but got storage='  '"),
    ("{tmp}/regular/s.db", "`storage` must be a path nas can create, but got storage='sqlite:///{tmp}/regular/s.db': "
                           "'{tmp}/regular' is a file, not a folder"),
    ("{tmp}/regular/deeper/s.journal", "but got storage='journal:///{tmp}/regular/deeper/s.journal': '{tmp}/regular' "
                                       "is a file, not a folder"),
    ("/proc/nas-test/s.db", "nothing can be written in '/proc'"),
], ids=["empty", "blank", "under a file", "deeper under a file", "under /proc"])
def test_create_study_refuses_storages_it_cannot_create(tmp_path: Path, storage: str, message: str) -> None:
    (tmp_path / "regular").write_text("a file\n")
    with pytest.raises(ValueError) as err:
        nas.create_study(SPACE, evaluator=EVALUATOR, run=nas.Run(study="s", storage=storage.replace("{tmp}", str(
            tmp_path))), verbose=False)
    assert message.replace("{tmp}", str(tmp_path)) in str(err.value), str(err.value)
    assert _files(tmp_path) == ["regular"] and not Path("/proc/nas-test").exists()


def test_best_and_plot_check_their_arguments(tmp_path: Path) -> None:
    study = _study(tmp_path / "b.db", "b")
    for value in (-1, 0, float("nan"), float("inf"), "5", True):
        with pytest.raises(ValueError) as err:
            study.best(max_macs=value)
        assert str(err.value) == f"`max_macs` must be a positive finite number, but got max_macs={value!r}"
    from nas.plot import plot_front

    with pytest.raises(ValueError, match=r"^`plot` must end in .png, .svg or .html, but got plot='f.pdf'$"):
        plot_front(study, "f.pdf")
    (tmp_path / "dir.svg").mkdir()
    with pytest.raises(ValueError) as err:
        plot_front(study, tmp_path / "dir.svg")
    folder = str(tmp_path / "dir.svg")
    assert str(err.value) == f"`plot` must be a file in an existing folder, but got plot={folder!r} (it is a folder)"
    assert plot_front(study, tmp_path / "f.svg").read_text().startswith("<svg")


# ---------------------------------------------------------------- property tests: generated configs

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "nas-hypothesis")  # its caches, out of the work tree
TMP = Path(tempfile.mkdtemp(prefix="nas-bad-inputs-"))
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
(TMP / "regular").write_text("a file\n")
EXAMPLES = int(os.environ.get("NAS_FUZZ_EXAMPLES", "60"))
CONFIGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                   derandomize=os.environ.get("NAS_FUZZ_RANDOM") != "1",
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
GROUPS: dict[str, Any] = {"goal": nas.Goal, "strategy": nas.Strategy, "run": nas.Run}

# the names a message may name: the record's settings and the fields of its groups, the export keys, the arguments
# of create_study, the fields of the budget, device and backends, the options of the spaces, data references,
# samplers, pruners and evaluators
_SPACE_OPTIONS = {o for name in search_spaces.names() if name != "compound"
                  for o in search_spaces.get(name).config()["options"]} | {"base", "spec"}
_FIELDS = {f.name for cls in (nas.StudyConfig, *GROUPS.values(), nas.Budget, nas.Device, nas.Local, nas.Ray,
                              nas.KerasTuner) for f in dataclasses.fields(cls)}
KNOWN = (_FIELDS | set(EXPORT_KEYS) | set(inspect.signature(nas.create_study).parameters) | _SPACE_OPTIONS
         | {"export", "kind", "name", "options", "path", "val_fraction", "train_samples", "val_samples", "image_size",
            "population_size", "tournament_size", "candidates", "exploit", "init", "n_startup_trials", "min_epochs",
            "reduction_factor", "rule", "calibrate", "reach", "dataset", "which"})
FLAGS = {"--study", "--storage", "--n-trials", "--n-workers", "--create-only"}


def _names_a_known_field(message: str) -> bool:
    """The message names a known key or flag: in backticks (`n_trials`, `run.study`, `export.which`,
    `sampler.population_size`, `resources['cpu']`, `--seed`), or as the unknown setting it refuses beside the list of
    known ones."""
    for name in re.findall(r"`([^`]+)`", message):
        base = re.split(r"[\[=( ]", name.removeprefix("--"))[0]
        if name in FLAGS or base.split(".")[-1] in KNOWN or base.split(".")[0] in KNOWN:
            return True
    return bool(re.search(r"unknown (setting|export setting|space setting|option|key|field) '[^']*'", message))


WORDS = st.sampled_from(["", "   ", "x", "nope", "a\nb", "conv", "best", "digits", "1e9", "-1", "nan"])
JUNK = st.recursive(st.none() | st.booleans() | st.integers(-2, 10**10) | st.floats(allow_infinity=False) | WORDS,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(WORDS, inner, max_size=3),
                    max_leaves=6)
TINY = {"name": "conv", "options": {"stages": [1, 1], "depth": [1, 1], "widths": [4, 8], "kernels": [3],
                                    "hidden": [0, 0]}}
# (where a value goes in the record: a top-level setting or a group's field, its values); the options of a backend
# or a device go into a mapping of that kind, e.g. `n_workers` -> run.backend = {kind: local, n_workers: ...}
VALUES: dict[str, tuple[tuple[str, ...], list[Any]]] = {
    "study": (("run", "study"), ["s", "   ", "", "a\nb", "a/b", 5, None, "x" * 201]),
    "storage": (("run", "storage"), ["{tmp}/s.db", "{tmp}/s.journal", "", "{tmp}", str(TMP / "regular" / "x.db"),
                                     "/proc/nas-x/s.db", 5, ["s.db"], "foo://bar"]),
    "space": (("space",), ["conv", TINY, "nasbench201", "nope", {"name": "conv", "options": "abc"},
                           {"name": ["conv"]}, {"options": {}}, {"name": "conv", "extra": 1},
                           {"name": "conv", "options": {"widths": [8, 10**9]}},
                           {"name": "compound", "options": {"base": {"spec": "gone.json"}}}, {"name": "compound"}, 5]),
    "objectives": (("goal", "objectives"), [["accuracy", "params"], ["accuracy"], "accuracy", [], ["foo"],
                                            ["accuracy", "accuracy"], 5]),
    "n_trials": (("strategy", "n_trials"), [2, 0, -1, 10**9, "5", 2.5, None, True]),
    "sampler": (("strategy", "sampler"), ["random", "tpe", "evolution", "nsga2", "grid", "nope", 5,
                                          {"name": "os.system"}, {"name": "GridSampler", "options": {"search_space":
                                                                                                     [1]}},
                                          {"name": "tpe", "options": "x"},
                                          {"name": "tpe", "options": {"n_startup_trials": "x"}},
                                          {"name": "RandomSampler", "options": {"x": 1}},
                                          {"name": "nsga2", "options": {"population_size": 1}}]),
    "seed": (("strategy", "seed"), [0, 7, -1, 2**40, "x", 1.5, None]),
    "budget": (("strategy", "budget"), [{"epochs": 1}, {"epochs": 0}, {"epochs": "x"}, {"foo": 1}, [1],
                                        {"batch_size": 10**9}, {"learning_rate": float("nan")}, {"augment": "nope"}]),
    "constraints": (("goal", "constraints"), [{"max_macs": 10**9}, {"max_macs": -1}, {"max_foo": 1},
                                              {"max_params": float("inf")}, "x", {"max_macs": 1}]),
    "warm_start": (("strategy", "warm_start"), [[], ["nope"], [{"s1_width": 8}], "x", [5], [{"nope": 1}]]),
    "pruner": (("strategy", "pruner"), [None, "pareto", "median", {"name": "pareto", "options": {"rule": "x"}}, 5,
                                        "nope"]),
    "n_workers": (("run", "backend", "local", "n_workers"), [1, 0, 2, -1, 1000, "x"]),
    "max_retries": (("strategy", "max_retries"), [2, -1, 101, "x"]),
    "max_trials_per_worker": (("run", "backend", "local", "max_trials_per_worker"), [20, -1, "x"]),
    "max_failures": (("strategy", "max_failures"), [5, 0, "x", None]),
    "artifacts": (("run", "artifacts"), ["{tmp}/art", "", str(TMP / "regular" / "art"), 5]),
    "export": (("export",), [{"which": "best"}, {"which": "nonsense"}, {"retrain_epochs": "x"},
                             {"path": str(TMP / "regular" / "x")}, {"max_macs": -1}, [1], {"foo": 1},
                             {"which": "knee", "max_params": 5}, {"which": 3}]),
    "sample_within_limits": (("strategy", "sample_within_limits"), [True, False, "yes", 1]),
    "evaluator": (("evaluator",), ["engine_helpers:score_by_macs", "engine_helpers:score_by_macs", "os:system",
                                   "nope", 5, {"name": "nasbench201", "options": {"dataset": "cifar10"}},
                                   {"name": "nasbench201", "options": {"dataset": "x"}}]),
    "device": (("run", "device"), ["auto", "cpu", "quantum", {"kind": "cpu"}, {"kind": "cpu", "foo": 1}, 5]),
    "mixed_precision": (("run", "device", "auto", "mixed_precision"), ["mixed_float16", "x", 5]),
    "jit_compile": (("run", "device", "auto", "jit_compile"), [True, "auto", "x"]),
    "tpu_address": (("run", "device", "auto", "tpu_address"), ["x", 5]),
    "backend": (("run", "backend"), ["local", "ray", "keras_tuner", {"kind": "local", "n_workers": 2},
                                     {"kind": "ray", "resources": {"cpu": float("nan")}}, "nope", 5,
                                     {"kind": "ray", "resources": {"cpu": 1}, "max_concurrent": 0}]),
    "resources": (("run", "backend", "ray", "resources"), [{"cpu": 1}, {"cpu": -1}, "x"]),
    "address": (("run", "backend", "ray", "address"), ["auto", "", 5]),
    "max_concurrent": (("run", "backend", "ray", "max_concurrent"), [2, 0, "x"]),
    "scheduler": (("run", "backend", "ray", "scheduler"), ["asha", "nope"]),
    "tuner": (("run", "backend", "keras_tuner", "tuner"), ["random", "hyperband", "nope"]),
    "tuner_options": (("run", "backend", "keras_tuner", "options"), [{}, {"max_epochs": "x"}, "x"]),
    "description": (("description",), ["a search", 5]),
    "data": (("data",), ["digits", {"name": "digits", "train_samples": 10**9}, {"name": "digits", "val_samples": 50},
                         {"npz": "gone.npz"}, {"folder": "gone"}, 5, "nope", {"name": "digits", "bogus": 1}]),
    # a whole group that is not a mapping
    "goal": (("goal",), [5, "x", [1], True]),
    "strategy": (("strategy",), [5, "x", [1], True]),
    "run": (("run",), [5, "x", [1], True]),
}


def _put(config: dict[str, Any], where: tuple[str, ...], value: Any) -> None:
    """Set ``value`` at ``where`` in a config (see VALUES); nothing when the group there is not a mapping."""
    if len(where) == 1:
        config[where[0]] = value
        return
    group = config.get(where[0])
    if not isinstance(group, dict):
        return
    if len(where) == 2:
        group[where[1]] = value
        return
    _, key, kind, option = where  # an option of a backend or a device of this kind
    current = group.get(key)
    if not isinstance(current, dict) or current.get("kind") != kind:
        current = {"kind": kind}
    group[key] = {**current, option: value}


@st.composite
def configs(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A grouped config with a few settings, each a valid or invalid value, wrong types and nested junk; and how
    its text is mutated."""
    config: dict[str, Any] = {"space": TINY, "evaluator": "engine_helpers:score_by_macs",
                              "goal": {"objectives": ["accuracy", "params"]},
                              "strategy": {"n_trials": 2, "sampler": "random", "seed": 0}, "run": {"study": "s"}}
    for key in draw(st.lists(st.sampled_from(sorted(VALUES)), max_size=4, unique=True)):
        path, values = VALUES[key]
        junk = JUNK if key not in ("evaluator", *GROUPS) else st.nothing()  # a group of None or {}: its defaults
        _put(config, path, draw(st.sampled_from(values) | junk))
    if "evaluator" in config and draw(st.integers(0, 5)) == 0:
        del config["evaluator"]  # now the data is loaded (digits, small)
        config.setdefault("data", "digits")
        where = config["run"]
        if isinstance(where, dict) and where.get("device") in ("gpu", "tpu"):
            where["device"] = "cpu"  # probing absent hardware imports TensorFlow: not here
    if draw(st.integers(0, 9)) == 0:  # an unknown key, at the top level or in a group
        group = draw(st.sampled_from(["", "goal", "strategy", "run"]))
        target = config if not group or not isinstance(config[group], dict) else config[group]
        target[draw(WORDS.filter(bool))] = draw(JUNK)
        return config, draw(st.sampled_from(["none"] * 6 + ["duplicate"]))
    return config, draw(st.sampled_from(["none"] * 6 + ["duplicate", "text"]))  # text: the unknown key `run:`


def _fresh() -> Path:
    """An empty folder of its own for one example."""
    return Path(tempfile.mkdtemp(dir=TMP))


def _in(folder: Path, value: Any) -> Any:
    """``value`` with its ``{tmp}`` placeholders pointing into ``folder``."""
    if not isinstance(value, (str, list, dict)):
        return value
    return json.loads(json.dumps(value).replace("{tmp}", str(folder)))


@CONFIGS
@given(configs())
def test_generated_configs_are_accepted_or_refused_naming_a_field(generated: tuple[dict[str, Any], str]) -> None:
    """`nas search CONFIG --create-only`: exit 0 with the study stored, or exit 2 naming a known key or flag and
    nothing created."""
    config, how = generated
    folder = _fresh()
    config = _in(folder, config)
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    if how == "duplicate":
        text += "run: {study: again}\n"
    elif how == "text":
        text = re.sub(r"(?m)^run:", "run::", text)  # the key `run:`
    path = folder / "c.yaml"
    path.write_text(text)
    argv = ["search", str(path), "--create-only"]
    run_group = config["run"]
    if not isinstance(run_group, dict) or "storage" not in run_group:
        argv += ["--storage", str(folder / "s.db")]
    cwd = os.getcwd()
    os.chdir(folder)  # anything relative lands here, where it is seen
    try:
        code, out, err = run(*argv)
    finally:
        os.chdir(cwd)
    if code == 0:
        assert how == "none" and out.splitlines()[-1].startswith(
            f"nas: created study {run_group['study']!r} and ran nothing"), (out, err)
        storage = run_group.get("storage", folder / "s.db") or folder / "runs" / "nas.db"  # null: the default
        n_trials = config["strategy"].get("n_trials", 20)
        assert nas.load_study(run_group["study"], storage).config.n_trials == n_trials
        return
    assert code == 2 and out == "" and err.startswith("nas: error: ") and "Traceback" not in err, (code, out, err)
    assert _names_a_known_field(err), err
    assert sorted(p.name for p in folder.iterdir()) == ["c.yaml"], (err, list(folder.iterdir()))
    if how == "duplicate":
        assert "`run` is given twice in one mapping" in err, err
    if how == "text":
        assert "unknown field 'run:'" in err, err


ARGUMENTS: dict[str, tuple[tuple[str, ...], list[Any]]] = {
    key: (VALUES[key][0], VALUES[key][1] + extra) for key, extra in {
        "objectives": [("accuracy", "latency"), object()],
        "n_trials": [np.int64(3), float("nan")],
        "sampler": [optuna.samplers.RandomSampler(), optuna.samplers.TPESampler(), object()],
        "pruner": [optuna.pruners.MedianPruner(), object()],
        "budget": [nas.Budget(epochs=1), object()],
        "constraints": [{"max_macs": float("nan")}, None],
        "warm_start": [("vgg16",), None],
        "seed": [np.int32(3)],
        "backend": [nas.Local(n_workers=2), object()],
        "device": [nas.Device(kind="cpu"), object()],
        "study": [],
        "artifacts": [],
        "max_retries": [None],
        "max_failures": [float("inf")],
        "sample_within_limits": [None],
        "evaluator": [],
        "goal": [object()],
        "strategy": [object()],
        "run": [object()],
    }.items()}
ARGUMENTS["space"] = (("space",), VALUES["space"][1][:3] + [
    {"name": "conv", "options": "abc"}, {"name": "conv", "options": {"x": 1}}, {"space": "conv", "options": {}},
    search_spaces.get("conv", input_shape=(8, 8, 1)), object(), None])


@CONFIGS
@given(st.lists(st.sampled_from(sorted(ARGUMENTS)), max_size=4, unique=True), st.data())
def test_create_study_arguments_are_accepted_or_refused_naming_the_argument(chosen: list[str],
                                                                            data: st.DataObject) -> None:
    """`nas.create_study(space, goal=, strategy=, run=, evaluator=)` with generated values, each group given as its
    object or as a mapping: a stored study, or a ValueError naming an argument, and then nothing created."""
    folder = _fresh()
    config: dict[str, Any] = {"space": {"name": "conv", "options": TINY["options"]},
                              "evaluator": "engine_helpers:score_by_macs",
                              "goal": {"objectives": ("accuracy", "params")},
                              "strategy": {"n_trials": 2, "sampler": "random"},
                              "run": {"study": "s", "storage": folder / "s.db"}}
    for key in chosen:
        where, values = ARGUMENTS[key]
        junk = JUNK if key not in ("evaluator", *GROUPS) else st.nothing()  # run=None: the default storage, not here
        value = data.draw(st.sampled_from(values) | junk, label=key)
        _put(config, where, _in(folder, value))
    as_objects = {g: data.draw(st.booleans(), label=f"{g} as nas.{GROUPS[g].__name__}") for g in GROUPS}
    space = config.pop("space")
    try:
        for group, cls in GROUPS.items():
            if as_objects[group] and isinstance(config[group], dict):
                config[group] = cls(**config[group])
        study = nas.create_study(space, **config, verbose=False)
    except ValueError as exc:
        assert _names_a_known_field(str(exc)), str(exc)
        assert sorted(p.name for p in folder.iterdir()) == [], (str(exc), list(folder.iterdir()))
        return
    assert nas.load_study(study.name, study.storage_url).config == study.config
