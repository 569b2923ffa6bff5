"""Bad command-line input is refused with exit status 2 and a message naming the flag and the value, in-process
(no TensorFlow): nothing else is printed, nothing is created."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nas.cli import main

from engine_helpers import stored_record


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv, message", [
    (("summary", "lenet5", "--classes", "0"), "`--classes` must be an integer >= 2, but got --classes=0"),
    (("summary", "lenet5", "--input-shape", "axb"), "`--input-shape` must be HxWxC with positive integers, e.g. "
                                                    "32x32x3, but got 'axb'"),
    (("summary", "lenet5", "--input-shape", "32x32"), "but got '32x32'"),
    (("summary", "no-such-net"), "`spec` must be a baseline name"),
])
def test_bad_flags_name_the_flag_and_the_value(argv: tuple[str, ...], message: str) -> None:
    code, out, err = run(*argv)
    assert code == 2 and message in err and out == ""


def test_a_binary_spec_file_and_a_missing_study(tmp_path: Path, monkeypatch) -> None:
    binary = tmp_path / "spec.json"
    binary.write_bytes(bytes(range(256)))
    code, _, err = run("summary", str(binary))
    assert code == 2 and f"`spec` file {str(binary)!r} is not UTF-8 text" in err
    import nas
    import search_spaces

    nas.create_study(search_spaces.get("conv", input_shape=(8, 8, 1)),
                     run=nas.Run(storage=tmp_path / "s.db", study="a"),
                     evaluator="engine_helpers:evaluator_that_fails_on_wide_first_stages", verbose=False)
    monkeypatch.setenv("NAS_STORAGE", str(tmp_path / "s.db"))
    code, _, err = run("worker", "--study", "b")
    assert code == 2 and "no study 'b' in sqlite:///" in err
    code, _, err = run("status", "--study", "b")
    assert code == 2 and "no study 'b' in sqlite:///" in err and "(studies there: a)" in err


def test_ray_settings_never_switch_authentication_off(monkeypatch) -> None:
    from nas.backends.ray import ray_environment

    for name in ("RAY_AUTH_MODE", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_USAGE_STATS_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    ray_environment()
    assert "RAY_AUTH_MODE" not in os.environ  # a cluster nas joins keeps its own authentication
    assert os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0" and os.environ["RAY_USAGE_STATS_ENABLED"] == "0"


def test_a_config_names_its_evaluator_as_data(tmp_path: Path) -> None:
    """`evaluator: {name: nasbench201, options: {...}}` in YAML: stored as that name, looked up by the worker."""

    import optuna

    config = tmp_path / "nb.yaml"
    config.write_text(f"space: nasbench201\ngoal: {{objectives: [accuracy, params]}}\n"
                      f"strategy: {{n_trials: 3, sampler: random, seed: 0}}\n"
                      f"run: {{study: nb, storage: {tmp_path / 'nb.db'}}}\n"
                      "evaluator: {name: nasbench201, options: {dataset: cifar10}}\n")
    code, out, err = run("search", str(config))
    assert code == 0 and "warning" not in err, err
    assert "[  3/3]" in out and "ranked architectures of study 'nb'" in out
    study = optuna.load_study(study_name="nb", storage=f"sqlite:///{tmp_path / 'nb.db'}")
    assert stored_record(study)["evaluator"] == {"name": "nasbench201",
                                                                "options": {"dataset": "cifar10"}}
    from nas import ArchSpec
    from search_spaces.nasbench201 import Table

    table = Table("cifar10")
    assert len(study.trials) == 3
    for t in study.trials:
        assert t.user_attrs["accuracy"] == table(ArchSpec.from_json(t.system_attrs["nas:spec"]))["accuracy"]


def test_every_command_documents_every_option_and_shows_examples() -> None:
    import argparse

    from nas.cli import build_parser

    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(sub.choices) == ["baselines", "cleanup", "export", "front", "resume", "search", "status", "summary",
                                   "worker"]
    undocumented = [(name, a.dest) for name, p in sub.choices.items() for a in p._actions
                    if not isinstance(a, argparse._HelpAction) and not a.help]
    assert undocumented == []
    for name, p in sub.choices.items():
        if name != "baselines":  # no options
            assert f"nas {name}" in (p.epilog or ""), name
    assert "nas search experiments/digits_quick.yaml" in parser.format_help()
    out = subprocess.run([sys.executable, "-m", "nas.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("nas ")


def test_the_demo_banner_is_its_config_s_description_once() -> None:
    from nas.config import load_config
    from nas.demo import DEMO, banner

    assert banner(load_config(DEMO).config.description) == (
        "nas demo: A quick multi-objective search (accuracy vs MACs) over the families space on scikit-learn's "
        "embedded 8x8 digits, 3 epochs per candidate, two worker processes. About 45 s on 2 idle CPU cores, a few "
        "minutes when other jobs share them.")


def test_status_all_says_what_it_counts_and_a_cdn_plot_needs_an_html_one(tmp_path: Path) -> None:
    """`nas status` counts the finished trials (toward the target); `--all` says so and counts every trial too,
    over-budget candidates included; a plain Optuna study in the same storage is listed as one."""
    import optuna

    import nas
    import search_spaces

    storage = tmp_path / "s.db"
    big = {"n_stages": 2, "bn": True, "head_pool": "avg", "s1_width": 8, "s1_pool": None, "s2_width": 16,
           "s2_pool": None}
    space = search_spaces.get("conv", input_shape=(8, 8, 1), stages=(1, 2), depth=(1, 1), widths=(4, 8, 16),
                              kernels=(3,), hidden=(0, 0), dropouts=(0.0,))
    nas.search(space, goal=nas.Goal(constraints={"max_macs": 20_000}), run=nas.Run(storage=storage, study="counted"),
               strategy=nas.Strategy(n_trials=2, sampler="random", seed=0, warm_start=[big]),
               evaluator="engine_helpers:score_by_macs", verbose=False)
    optuna.create_study(study_name="plain", storage=f"sqlite:///{storage}").optimize(lambda t: 1.0, n_trials=2)
    code, out, err = run("status", "--all", "--storage", str(storage))
    assert code == 0 and err == ""
    lines = [line.split("  started ")[0] for line in out.splitlines()]
    assert lines == [f"{'counted':<40}   2/2 finished, 3 trials in all (0 running, 1 over budget, 0 failed)",
                     f"{'plain':<40} 2 trials (not a nas study)"]
    code, out, err = run("status", "--study", "counted", "--storage", str(storage))
    assert "progress 2/2 finished: 2 complete, 0 pruned; 0 running, 0 queued, 1 over budget, 0 failed" in out
    code, out, err = run("front", "--storage", str(storage), "--study", "counted", "--plot", str(tmp_path / "f.png"),
                         "--plot-cdn")
    assert code == 2 and out == "" and err == (f"nas: error: `--plot-cdn` makes an .html plot load plotly.js from its "
                                               f"CDN, but got --plot={tmp_path / 'f.png'}\n")
