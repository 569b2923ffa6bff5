"""Bad input to every entry point (YAML configs, the command line, the Python API) is refused before anything is
trained or stored: a ValueError (exit status 2 on the command line) whose message names the field, the rule and the
value, no traceback, nothing created (no storage file, no lock file, no folder), nothing stored changed.

Evaluator searches (tests/engine_helpers.py) on real SQLite, journal and PostgreSQL storages, in this process or
in real worker processes; nothing trains. The last two tests are property tests: generated configs and
``create_study`` arguments, each either accepted or refused with a message naming a known key or flag.
"""

from __future__ import annotations

import atexit
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
from nas.config import EXPORT_KEYS, KEYS, load_config

EVALUATOR = "engine_helpers:evaluator_that_fails_on_wide_first_stages"
SPACE = {"space": "conv", "options": {"stages": (1, 2), "depth": (1, 1), "widths": (4, 8, 16, 32), "kernels": (3,),
                                      "hidden": (0, 0), "dropouts": (0.0,)}}
POSTGRES = os.environ.get("NAS_TEST_POSTGRES_URL")
FILTERS_RULE = ("an integer in [1, 65,536] (channels of one layer: no network needs more, and one 3x3 convolution "
                "that wide holds 38.7 billion weights)")


def _files(root: Path) -> list[str]:
    """Every file and folder under ``root``: what a refused command must leave as it was."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _config(tmp_path: Path, text: str, name: str = "c.yaml") -> str:
    """A YAML config file holding ``text``."""
    path = tmp_path / name
    path.write_text(text)
    return str(path)


QUICK = "study: q\nspace: conv\nobjectives: [accuracy, params]\nn_trials: 2\nsampler: random\nseed: 0\n" \
        f"evaluator: {EVALUATOR}\n"


def _study(storage: Any, name: str = "s", n_trials: int = 2, **kwargs: Any) -> nas.Study:
    """A finished evaluator search: ``n_trials`` trials, in this process."""
    return nas.search(SPACE, evaluator=EVALUATOR, objectives=("accuracy", "params"), n_trials=n_trials,
                      sampler="random", seed=0, storage=storage, study_name=name, verbose=False, **kwargs)


def _stored(study: nas.Study) -> tuple[str, list[tuple[int, str]]]:
    """What a refused command must leave as it was: the stored configuration and every trial's state."""
    fresh = nas.load_study(study.name, study.storage_url)
    return (fresh.optuna_study.user_attrs["nas"],
            [(t.number, t.state.name) for t in fresh.optuna_study.get_trials(deepcopy=False)])


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
    # (id, config text (QUICK plus these lines), extra argv, the message)
    ("storage under a file", "", ("--storage", "{tmp}/regular/x.db"),
     "`storage` must be a path nas can create, but got storage='sqlite:///{tmp}/regular/x.db': '{tmp}/regular' is "
     "a file, not a folder"),
    ("storage under /proc", "", ("--storage", "/proc/nas-test/x.db"),
     "`storage` must be a path nas can create, but got storage='sqlite:////proc/nas-test/x.db': nothing can be "
     "written in '/proc'"),
    ("storage a folder", "", ("--storage", "{tmp}/folder"),
     "`storage` must be a file (SQLite or journal), but got storage='sqlite:///{tmp}/folder', which is a folder"),
    ("storage empty", "storage: ''\n", (),
     "`storage` must be a file path or a storage URL, but got storage=''; leave it out for the default runs/nas.db"),
    ("storage empty flag", "", ("--storage", ""), "`storage` must be a file path or a storage URL, but got storage=''"),
    ("study left empty", "study:\n", (), "config '{tmp}/c.yaml': `study` (the study name) is required, but got "
                                         "study=None"),
    ("base spec missing", "space: {name: compound, options: {base: {spec: gone.json}}}\n", (),
     "config: the compound space's `base.spec` must be a spec JSON file (as exports write), but got "
     "base.spec='gone.json' (no such file)"),
    ("export which", "export: {which: nonsense}\n", (),
     "`export.which` must be a trial number, 'best', 'knee' or 'front', but got export.which='nonsense'"),
    ("export retrain_epochs", "export: {retrain_epochs: x}\n", (),
     "config: `export.retrain_epochs` must be an integer in [0, 10,000], but got export.retrain_epochs='x'"),
    ("export retrain with an evaluator", "export: {retrain_epochs: 2}\n", (),
     "config: `export.retrain_epochs` retrains on the study's data, but this study scores architectures with an "
     "evaluator and has none; got export.retrain_epochs=2"),
    ("export path under a file", "export: {path: regular/x}\n", (),
     "`export.path` must be a path nas can create, but got export.path='regular/x': '{tmp}/regular' is a file, not "
     "a folder"),
    ("export max_macs negative", "export: {max_macs: -1}\n", (),
     "`export.max_macs` must be a positive finite number, but got export.max_macs=-1"),
    ("export max_macs nan", "export: {max_macs: .nan}\n", (),
     "`export.max_macs` must be a positive finite number, but got export.max_macs=nan"),
    ("export max_macs with front", "export: {which: front, max_macs: 5}\n", (),
     "`export.max_macs` picks the best trial within it: it needs export.which='best', but got export.which='front'"),
    ("duplicate key", "n_trials: 50\n", (),
     "config '{tmp}/c.yaml': `n_trials` is given twice in one mapping (lines 4 and 8); YAML would keep the last "
     "silently, so give it once"),
    ("duplicate nested key", "budget: {epochs: 1, epochs: 2}\n", (),
     "`epochs` is given twice in one mapping (line 8); YAML would keep the last silently"),
    ("blank study name", "", ("--study", "   "),
     "`study_name` must be a string of at most 200 printable characters, not blank, without '/' or control "
     "characters (it is a file name and a command-line argument), but got study_name='   '"),
    ("control characters in the study name", "", ("--study", "a\nb"), "but got study_name='a\\nb'"),
    ("widths of 1e9", "space: {name: conv, options: {widths: [8, 1000000000]}}\n", (),
     "conv space: `widths` must be a list of channel counts in [1, 65,536] (no layer needs more, and one 3x3 "
     "convolution that wide holds 38.7 billion weights), but got widths=[8, 1000000000]"),
    ("train_samples beyond the data", "data: {name: digits, train_samples: 1000000000}\n", (),
     "`train_samples` must be at most the 1,438 training images the data has, but got train_samples=1000000000; "
     "leave it out to use them all"),
    ("Ray resources NaN", "backend: {kind: ray, resources: {cpu: .nan}}\n", (),
     "Ray: `resources['cpu']` must be a finite number >= 0, but got cpu=nan"),
    ("space options as text", "space: {name: conv, options: abc}\n", (),
     "config: `space.options` must be a mapping of option names to values, but got space.options='abc'"),
]


@pytest.mark.parametrize("case", [pytest.param(c[1:], id=c[0]) for c in SEARCH_CASES])
def test_search_refuses_bad_configs_before_creating_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             case: tuple[str, tuple[str, ...], str]) -> None:
    lines, extra, message = case
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NAS_STORAGE", raising=False)
    (tmp_path / "regular").write_text("a file\n")
    (tmp_path / "folder").mkdir()
    # a search that trains loads its data (a search with an evaluator has none)
    text = QUICK.replace(f"evaluator: {EVALUATOR}\n", "") if lines.startswith("data:") else QUICK
    for key in ("space", "study"):  # these cases replace the setting (the duplicate-key cases repeat one)
        text = re.sub(rf"(?m)^{key}: .*\n", "", text) if lines.startswith(f"{key}:") else text
    config = _config(tmp_path, text + lines)
    before = _files(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in ("search", config, *extra)]
    code, out, err = run(*argv)
    assert code == 2 and out == "", err
    assert err.startswith("nas: error: ") and err.count("\n") == 1, err
    assert message.replace("{tmp}", str(tmp_path)) in err, err
    assert _files(tmp_path) == before  # no storage, lock file, artefact or export folder
    assert not Path("/proc/nas-test").exists()


def test_a_config_that_is_a_folder_or_not_text(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    code, out, err = run("search", str(tmp_path / "cfg"))
    assert (code, out, err) == (2, "", f"nas: error: config file {str(tmp_path / 'cfg')!r} must be a YAML file, but "
                                       f"it is a folder\n")
    (tmp_path / "bin.yaml").write_bytes(b"study: \xff\xfe\n")
    code, _, err = run("search", str(tmp_path / "bin.yaml"))
    assert code == 2 and f"config file {str(tmp_path / 'bin.yaml')!r} could not be read as UTF-8 text" in err
    assert _files(tmp_path) == ["bin.yaml", "cfg"]


def test_a_yaml_merge_may_override_its_defaults(tmp_path: Path) -> None:
    """Only a key written twice in one mapping is refused: `<<: *defaults` followed by an override is YAML's meaning."""
    config = _config(tmp_path, "defaults: &d {epochs: 1, batch_size: 32}\n".replace("defaults", "description") +
                     QUICK + "budget: {<<: *d, epochs: 2}\n")
    assert load_config(config)["budget"] == {"epochs": 2, "batch_size": 32}


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


@pytest.mark.parametrize("case", [pytest.param(c[1:], id=c[0]) for c in COMMAND_CASES])
def test_commands_refuse_bad_flags_and_change_nothing(finished: tuple[nas.Study, Path],
                                                      case: tuple[tuple[str, ...], str]) -> None:
    study, tmp = finished
    argv, message = case
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
                     + f"max_failures: 1\nstorage: {tmp_path / 'f.db'}\n")
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
    assert nas.load_study("q", tmp_path / "f.db").config.max_failures == 1
    code, _, err = run("resume", "--study", "q", "--storage", str(tmp_path / "f.db"), "--max-failures", "100")
    assert code == 0, err
    study = nas.load_study("q", tmp_path / "f.db")
    assert study.counts()["done"] == 6 and study.config.max_failures == 100


@pytest.mark.slow
def test_max_failures_in_worker_processes_prints_no_traceback(tmp_path: Path) -> None:
    """The same stop from a real `nas search` process with two worker processes."""
    space = "{name: conv, options: {stages: [1, 1], depth: [1, 1], widths: [64], kernels: [3], hidden: [0, 0]}}"
    config = _config(tmp_path, QUICK.replace("space: conv", f"space: {space}") + "max_failures: 2\nn_workers: 2\n")
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


@pytest.mark.parametrize("how", ["npz deleted", "npz unreadable", "folder moved"])
def test_resume_checks_the_data_before_starting_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        how: str) -> None:
    monkeypatch.setenv("NAS_STORAGE", str(tmp_path / "d.db"))  # `nas worker` sets it in this process: undone after
    if how.startswith("npz"):
        x = np.random.default_rng(0).random((30, 8, 8, 1)).astype(np.float32)
        study = nas.create_study(SPACE, (x, np.arange(30) % 3), n_trials=2, storage=tmp_path / "d.db",
                                 study_name="d", verbose=False)
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
        study = nas.create_study(SPACE, str(folder), n_trials=2, storage=tmp_path / "d.db", study_name="d",
                                 verbose=False)
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
    assert _stored(study) == before and _files(tmp_path) == files and before[1] == []
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
    study = nas.create_study(SPACE, evaluator=EVALUATOR, objectives=("accuracy", "params"), n_trials=2,
                             storage=tmp_path / "m.db", study_name="m", verbose=False)
    stored = json.loads(study.optuna_study.user_attrs["nas"])
    stored["sampler"] = sampler
    study.optuna_study.set_user_attr("nas", json.dumps(stored))  # what anyone who can write to the storage can do
    before, files = _stored(study), _files(tmp_path)
    for command in ("resume", "worker"):
        code, out, err = run(command, "--study", "m", "--storage", str(tmp_path / "m.db"))
        assert (code, out, err) == (2, "", f"nas: error: {message}\n"), command
    assert _stored(study) == before and _files(tmp_path) == files


# ---------------------------------------------------------------- the Python API

def _xy(n: int = 30, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    return np.full((n, 4, 4), 0.5, dtype=np.float32), np.arange(n) % k


API_CASES = [
    ("space options as text", lambda: search_spaces.from_config({"space": "conv", "options": "abc"}),
     "a space config's `options` must be a dict of option names to values, but got options='abc'"),
    ("space name a list", lambda: search_spaces.from_config({"space": ["conv"]}),
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
]


@pytest.mark.parametrize("case", [pytest.param(c[1:], id=c[0]) for c in API_CASES])
def test_python_api_names_the_field_and_the_value(case: tuple[Any, str]) -> None:
    make, message = case
    with pytest.raises(ValueError) as err:
        make()
    assert message in str(err.value), str(err.value)


@pytest.mark.parametrize("name", ["   ", "", "a\nb", "tab\there", "nul\x00", "a/b", "x" * 201],
                         ids=["blank", "empty", "newline", "tab", "nul", "slash", "201 characters"])
def test_study_names_are_refused_before_anything_is_stored(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError) as err:
        nas.create_study(SPACE, evaluator=EVALUATOR, storage=tmp_path / "n.db", study_name=name, verbose=False)
    assert str(err.value) == ("`study_name` must be a string of at most 200 printable characters, not blank, without "
                              "'/' or control characters (it is a file name and a command-line argument), but got "
                              f"study_name={name!r}")
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
        nas.create_study(SPACE, evaluator=EVALUATOR, storage=storage.replace("{tmp}", str(tmp_path)), study_name="s",
                         verbose=False)
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

# the names a message may name: every config key and export key, the arguments of create_study, the fields of
# the budget, device and backends, the options of the spaces, data references, samplers, pruners and evaluators
_SPACE_OPTIONS = {o for name in search_spaces.names() if name != "compound"
                  for o in search_spaces.get(name).config()["options"]} | {"base", "spec"}
_FIELDS = {f for cls in (nas.Budget, nas.Device, nas.Local, nas.Ray, nas.KerasTuner) for f in cls.__dataclass_fields__}
KNOWN = (set(KEYS) | set(EXPORT_KEYS) | set(inspect.signature(nas.create_study).parameters) | _SPACE_OPTIONS
         | _FIELDS | {"kind", "name", "options", "path", "val_fraction", "train_samples", "val_samples", "image_size",
                      "population_size", "tournament_size", "candidates", "n_startup_trials", "min_epochs",
                      "reduction_factor", "rule", "calibrate", "dataset", "which"})
FLAGS = {"--study", "--storage", "--n-trials", "--n-workers", "--create-only"}


def _names_a_known_field(message: str) -> bool:
    """The message names a known key or flag: in backticks (`n_trials`, `export.which`, `sampler.population_size`,
    `resources['cpu']`, `--seed`), or as the unknown setting it refuses beside the list of known ones."""
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
VALUES: dict[str, list[Any]] = {
    "study": ["s", "   ", "", "a\nb", "a/b", 5, None, "x" * 201],
    "storage": ["{tmp}/s.db", "{tmp}/s.journal", "", "{tmp}", str(TMP / "regular" / "x.db"), "/proc/nas-x/s.db", 5,
                ["s.db"], "foo://bar"],
    "space": ["conv", TINY, "nasbench201", "nope", {"name": "conv", "options": "abc"}, {"name": ["conv"]},
              {"options": {}}, {"name": "conv", "extra": 1}, {"name": "conv", "options": {"widths": [8, 10**9]}},
              {"name": "compound", "options": {"base": {"spec": "gone.json"}}}, {"name": "compound"}, 5],
    "objectives": [["accuracy", "params"], ["accuracy"], "accuracy", [], ["foo"], ["accuracy", "accuracy"], 5],
    "n_trials": [2, 0, -1, 10**9, "5", 2.5, None, True],
    "sampler": ["random", "tpe", "evolution", "nsga2", "grid", "nope", 5, {"name": "os.system"},
                {"name": "GridSampler", "options": {"search_space": [1]}}, {"name": "tpe", "options": "x"},
                {"name": "tpe", "options": {"n_startup_trials": "x"}}, {"name": "RandomSampler", "options": {"x": 1}},
                {"name": "nsga2", "options": {"population_size": 1}}],
    "seed": [0, 7, -1, 2**40, "x", 1.5, None],
    "budget": [{"epochs": 1}, {"epochs": 0}, {"epochs": "x"}, {"foo": 1}, [1], {"batch_size": 10**9},
               {"learning_rate": float("nan")}, {"augment": "nope"}],
    "constraints": [{"max_macs": 10**9}, {"max_macs": -1}, {"max_foo": 1}, {"max_params": float("inf")}, "x",
                    {"max_macs": 1}],
    "warm_start": [[], ["nope"], [{"s1_width": 8}], "x", [5], [{"nope": 1}]],
    "pruner": [None, "pareto", "median", {"name": "pareto", "options": {"rule": "x"}}, 5, "nope"],
    "n_workers": [1, 0, 2, -1, 1000, "x"],
    "max_retries": [2, -1, 101, "x"],
    "max_trials_per_worker": [20, -1, "x"],
    "max_failures": [5, 0, "x", None],
    "artifacts": ["{tmp}/art", "", str(TMP / "regular" / "art"), 5],
    "export": [{"which": "best"}, {"which": "nonsense"}, {"retrain_epochs": "x"}, {"path": str(TMP / "regular" / "x")},
               {"max_macs": -1}, [1], {"foo": 1}, {"which": "knee", "max_params": 5}, {"which": 3}],
    "sample_within_limits": [True, False, "yes", 1],
    "evaluator": ["engine_helpers:score_by_macs", "engine_helpers:score_by_macs", "os:system", "nope", 5,
                  {"name": "nasbench201", "options": {"dataset": "cifar10"}},
                  {"name": "nasbench201", "options": {"dataset": "x"}}],
    "device": ["auto", "cpu", "quantum", {"kind": "cpu"}, {"kind": "cpu", "foo": 1}, 5],
    "mixed_precision": ["mixed_float16", "x", 5],
    "jit_compile": [True, "auto", "x"],
    "tpu_address": ["x", 5],
    "backend": ["local", "ray", "keras_tuner", {"kind": "local", "n_workers": 2}, {"kind": "ray", "resources":
                {"cpu": float("nan")}}, "nope", 5, {"kind": "ray", "resources": {"cpu": 1}, "max_concurrent": 0}],
    "resources_per_trial": [{"cpu": 1}, {"cpu": -1}, "x"],
    "ray_address": ["auto", "", 5],
    "max_concurrent": [2, 0, "x"],
    "scheduler": ["asha", "nope"],
    "tuner": ["random", "hyperband", "nope"],
    "tuner_options": [{}, {"max_epochs": "x"}, "x"],
    "description": ["a search", 5],
    "data": ["digits", {"name": "digits", "train_samples": 10**9}, {"name": "digits", "val_samples": 50},
             {"npz": "gone.npz"}, {"folder": "gone"}, 5, "nope", {"name": "digits", "bogus": 1}],
}


@st.composite
def configs(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A config of a few keys, each a valid or invalid value, wrong types and nested junk; and how it is mutated."""
    config: dict[str, Any] = {"study": "s", "space": TINY, "objectives": ["accuracy", "params"], "n_trials": 2,
                              "sampler": "random", "seed": 0, "evaluator": "engine_helpers:score_by_macs"}
    for key in draw(st.lists(st.sampled_from(sorted(VALUES)), max_size=4, unique=True)):
        config[key] = draw(st.sampled_from(VALUES[key]) | JUNK if key != "evaluator" else st.sampled_from(VALUES[key]))
    if "evaluator" in config and draw(st.integers(0, 5)) == 0:
        del config["evaluator"]  # now the data is loaded (digits, small)
        config.setdefault("data", "digits")
        if config.get("device") in ("gpu", "tpu"):
            config["device"] = "cpu"  # probing absent hardware imports TensorFlow: not here
    if draw(st.integers(0, 9)) == 0:
        config[draw(WORDS.filter(bool))] = draw(JUNK)  # an unknown key
        return config, draw(st.sampled_from(["none"] * 6 + ["duplicate"]))
    return config, draw(st.sampled_from(["none"] * 6 + ["duplicate", "text"]))  # text: the unknown key `study:`


def _fresh() -> Path:
    """An empty folder of its own for one example."""
    return Path(tempfile.mkdtemp(dir=TMP))


@CONFIGS
@given(configs())
def test_generated_configs_are_accepted_or_refused_naming_a_field(generated: tuple[dict[str, Any], str]) -> None:
    """`nas search CONFIG --create-only`: exit 0 with the study stored, or exit 2 naming a known key or flag and
    nothing created."""
    config, how = generated
    folder = _fresh()
    config = json.loads(json.dumps(config).replace("{tmp}", str(folder)))
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    if how == "duplicate":
        text += "study: again\n"
    elif how == "text":
        text = re.sub(r"^study:", "study::", text)  # the key `study:`
    path = folder / "c.yaml"
    path.write_text(text)
    argv = ["search", str(path), "--create-only"]
    if "storage" not in config:
        argv += ["--storage", str(folder / "s.db")]
    cwd = os.getcwd()
    os.chdir(folder)  # anything relative lands here, where it is seen
    try:
        code, out, err = run(*argv)
    finally:
        os.chdir(cwd)
    if code == 0:
        assert how == "none" and out.splitlines()[-1].startswith(
            f"nas: created study {config['study']!r} and ran nothing"), (out, err)
        storage = config.get("storage", folder / "s.db") or folder / "runs" / "nas.db"  # null: the default
        assert nas.load_study(config["study"], storage).config.n_trials == config["n_trials"]
        return
    assert code == 2 and out == "" and err.startswith("nas: error: ") and "Traceback" not in err, (code, out, err)
    assert _names_a_known_field(err), err
    assert sorted(p.name for p in folder.iterdir()) == ["c.yaml"], (err, list(folder.iterdir()))
    if how == "duplicate":
        assert "`study` is given twice in one mapping" in err, err
    if how == "text":
        assert "unknown setting 'study:'" in err, err


ARGUMENTS: dict[str, list[Any]] = {
    "objectives": VALUES["objectives"] + [("accuracy", "latency"), object()],
    "n_trials": VALUES["n_trials"] + [np.int64(3), float("nan")],
    "sampler": VALUES["sampler"] + [optuna.samplers.RandomSampler(), optuna.samplers.TPESampler(), object()],
    "pruner": VALUES["pruner"] + [optuna.pruners.MedianPruner(), object()],
    "budget": VALUES["budget"] + [nas.Budget(epochs=1), object()],
    "constraints": VALUES["constraints"] + [{"max_macs": float("nan")}, None],
    "warm_start": VALUES["warm_start"] + [("vgg16",), None],
    "seed": VALUES["seed"] + [np.int32(3)],
    "backend": VALUES["backend"] + [nas.Local(n_workers=2), object()],
    "device": VALUES["device"] + [nas.Device(kind="cpu"), object()],
    "study_name": VALUES["study"],
    "artifacts": VALUES["artifacts"],
    "max_retries": VALUES["max_retries"] + [None],
    "max_failures": VALUES["max_failures"] + [float("inf")],
    "sample_within_limits": VALUES["sample_within_limits"] + [None],
    "evaluator": VALUES["evaluator"],
    "space": VALUES["space"][:3] + [{"space": "conv", "options": "abc"}, {"space": "conv", "options": {"x": 1}},
                                    search_spaces.get("conv", input_shape=(8, 8, 1)), object(), None],
}


@CONFIGS
@given(st.dictionaries(st.sampled_from(sorted(ARGUMENTS)), st.just(None), max_size=4), st.data())
def test_create_study_arguments_are_accepted_or_refused_naming_the_argument(chosen: dict[str, Any],
                                                                            data: st.DataObject) -> None:
    """`nas.create_study(**kwargs)` with generated arguments: a stored study, or a ValueError naming an argument, and
    then nothing created."""
    folder = _fresh()
    kwargs: dict[str, Any] = {"space": {"space": "conv", "options": TINY["options"]}, "n_trials": 2,
                              "objectives": ("accuracy", "params"), "sampler": "random", "study_name": "s",
                              "evaluator": "engine_helpers:score_by_macs", "storage": folder / "s.db", "verbose": False}
    for key in chosen:
        value = data.draw(st.sampled_from(ARGUMENTS[key]) | (JUNK if key != "evaluator" else st.nothing()), label=key)
        kwargs[key] = json.loads(json.dumps(value).replace("{tmp}", str(folder))) if isinstance(
            value, (str, list, dict)) else value
    try:
        study = nas.create_study(**kwargs)
    except ValueError as exc:
        assert _names_a_known_field(str(exc)), str(exc)
        assert sorted(p.name for p in folder.iterdir()) == [], (str(exc), list(folder.iterdir()))
        return
    assert nas.load_study(study.name, study.storage_url).config == study.config
