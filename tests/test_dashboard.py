"""optuna-dashboard shows a nas study as it is: through its own server code, in this process, and in a real
browser (headless Chromium from Debian's packages; `.ci/run` installs it, and that test is skipped where it is
absent). Over-budget candidates (stored COMPLETE with accuracy 0 and their cost) are infeasible there, never
zero-accuracy networks on the front: nas stores constraint values in Optuna's list form, which optuna-dashboard
0.21 reads (it ignores the per-constraint keys that ``Trial.set_constraint`` writes)."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import numpy as np
import optuna
import pytest

import nas
import search_spaces
from nas.ranking import non_dominated_ranks

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OPTIONS = {"stages": (1, 2), "depth": (1, 1), "widths": (4, 8, 16), "kernels": (3,), "hidden": (0, 0),
           "dropouts": (0.0,)}
# on 8x8 digits, within max_macs=6000: 2,944 MACs / 702 params and 5,888 MACs / 1,394 params
FITS = [{"n_stages": 1, "bn": True, "head_pool": "flatten", "s1_width": w, "s1_pool": "max"} for w in (4, 8)]
# over it: 11,560 MACs but 262 params (by its values alone, accuracy 0 and the fewest params, it is on the front)
# and 78,496 MACs / 1,490 params (dominated)
OVER = [{"n_stages": 2, "bn": True, "head_pool": "avg", "s1_width": 4, "s1_pool": None, "s2_width": 4,
         "s2_pool": None},
        {"n_stages": 2, "bn": True, "head_pool": "avg", "s1_width": 8, "s1_pool": None, "s2_width": 16,
         "s2_pool": None}]
GOAL = nas.Goal(objectives=("accuracy", "params"), constraints={"max_macs": 6000})


def _over_budget_study(tmp_path: Path, *, train: bool) -> nas.Study:
    """Two candidates within the MACs limit and two over it (enqueued first: they are claimed first), trained
    on digits or scored by an evaluator."""
    space = {"name": "conv", "options": OPTIONS}
    evaluator = None
    if not train:
        from engine_helpers import score_by_macs

        space, evaluator = search_spaces.get("conv", input_shape=(8, 8, 1), num_classes=10, **OPTIONS), score_by_macs
    study = nas.search(space, "digits", goal=GOAL, evaluator=evaluator,
                       strategy=nas.Strategy(n_trials=2, sampler="random", seed=0, sample_within_limits=False,
                                             warm_start=OVER + FITS, budget={"epochs": 2, "batch_size": 128}),
                       run=nas.Run(storage=tmp_path / "d.db", study="dash"), verbose=False)
    statuses = [r.status for r in study.trials]
    assert statuses == ["infeasible", "infeasible", "ok", "ok"], statuses
    assert [r.metrics["macs"] for r in study.trials] == [11_560, 78_496, 2_944, 5_888]
    return study


def _get(app: Any, path: str) -> Any:
    """A GET request to a WSGI app in this process: the JSON it answers."""
    env: dict[str, Any] = {}
    setup_testing_defaults(env)
    env.update(PATH_INFO=path, REQUEST_METHOD="GET")
    status: list[str] = []
    body = b"".join(app(env, lambda s, headers, exc_info=None: status.append(s)))
    assert status == ["200 OK"], (status, body[:500])
    return json.loads(body)


def test_the_dashboard_s_own_server_code_serves_over_budget_candidates_as_infeasible(tmp_path: Path) -> None:
    """optuna-dashboard's API, run in-process on a real study: each trial's ``constraints`` list is what the
    browser code splits on (every value <= 0: feasible), and its Pareto-front plot (Optuna's
    ``plot_pareto_front``, served by the dashboard) puts the over-budget candidates in the infeasible trace and
    only the feasible front in the best-trial trace, although by their values one of them is on the front."""
    from optuna_dashboard import wsgi

    study = _over_budget_study(tmp_path, train=False)
    over = [r.number for r in study.trials if r.status == "infeasible"]
    assert over == [0, 1]
    plain = optuna.load_study(study_name="dash", storage=f"sqlite:///{tmp_path / 'd.db'}")
    values = np.array([t.values for t in plain.trials])
    by_values = [t.number for t, rank in zip(plain.trials, non_dominated_ranks(values, ["maximize", "minimize"]))
                 if rank == 0]
    assert 0 in by_values  # without its constraint value trial 0 (accuracy 0, fewest params) is on the front
    app = wsgi(f"sqlite:///{tmp_path / 'd.db'}")
    detail = _get(app, "/api/studies/1")
    assert [t["constraints"] for t in detail["trials"]] == [t.system_attrs["constraints"] for t in plain.trials]
    assert [t["number"] for t in detail["trials"] if not all(v <= 0 for v in t["constraints"])] == over
    plot = _get(app, "/api/studies/1/plot/pareto_front")

    def numbers(kind: str) -> list[int]:
        traces = [d for d in plot["data"] if d.get("hovertemplate") == f"%{{text}}<extra>{kind}</extra>"]
        return sorted(int(re.search(r'"number": (\d+)', text).group(1)) for d in traces for text in d["text"])
    assert numbers("Infeasible Trial") == over
    assert numbers("Best Trial") == sorted(t.number for t in plain.best_trials) == [2, 3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dom(url: str, *, budget_ms: int = 15_000) -> str:
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                          f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    return out.stdout


def _plot(page: str, element_id: str) -> list[list[str]]:
    """The plotly traces drawn in the element ``element_id`` of a dumped page, in drawing order: each the fill
    colours of its markers (or bars)."""
    start = page.index(f'id="{element_id}"')
    ends = [i for i in (page.find(' id="graph-', start + 1), page.find(' id="plot-', start + 1)) if i > 0]
    section = page[start:min(ends, default=len(page))]
    return [re.findall(r'class="point"[^>]*?fill: (rgb\([^)]*\))', trace)
            for trace in re.split(r'<g class="trace ', section)[1:]]


GREY = "rgb(204, 204, 204)"  # the dashboard's colour of infeasible trials (#cccccc, light theme)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium; .ci/run installs it)")
def test_optuna_dashboard_shows_the_objectives_the_trials_and_over_budget_candidates_as_infeasible(
        tmp_path: Path) -> None:
    study = _over_budget_study(tmp_path, train=True)
    n = len(study.optuna_study.trials)
    front = sorted(t.number for t in study.optuna_study.best_trials)  # trials 2 and 3, or one of them
    port = _free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "optuna-dashboard"), f"sqlite:///{tmp_path / 'd.db'}",
                               "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2).read()
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError(server.stderr.read().decode()[-2000:] if server.poll() is not None else "no answer")
        page = _dom(f"http://127.0.0.1:{port}/dashboard/studies/1")
        assert "dash (id=1)" in page
        # the objective names nas sets (study.set_metric_names) label the Pareto front plot's axes
        assert "Objective X:" in page and "Objective 0" not in page
        assert re.search(r"Objective X:.{0,400}?>accuracy<", page, re.S) and re.search(
            r"Objective Y:.{0,400}?>params<", page, re.S)
        # the Pareto front plot: the two over-budget candidates grey (infeasible), then the trained ones, those
        # off the front (if any) and last the front, coloured by trial number
        pareto = [trace for trace in _plot(page, "graph-pareto-front") if trace]
        assert pareto[0] == [GREY, GREY] and sum(len(t) for t in pareto[1:]) == 2 and len(pareto[-1]) == len(front)
        assert GREY not in pareto[1] + pareto[-1]
        # the history plot draws them grey too, and the timeline has an "Infeasible" bar trace beside "Complete"
        history = [trace for trace in _plot(page, "plot-history") if trace]
        assert history[0] == [GREY, GREY] and len(history[1]) == 2 and GREY not in history[1]
        timeline = page[page.index('id="graph-timeline"'):]
        assert re.findall(r'class="legendtext"[^>]*>([^<]*)<', timeline)[:2] == ["Complete", "Infeasible"]
        # the trial list has every trial of the study, and no other
        listed = set(re.findall(r"Trial (\d+)", _dom(f"http://127.0.0.1:{port}/dashboard/studies/1/trials")))
        assert listed == {str(t.number) for t in study.optuna_study.trials} and len(listed) == n
    finally:
        server.terminate()
        server.wait(10)
