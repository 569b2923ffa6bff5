"""optuna-dashboard shows a nas study as it is, checked in a real browser (headless Chromium from Debian's
packages; `.ci/run` installs it, and the test is skipped where it is absent)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import nas

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SPACE = {"space": "conv", "options": {"stages": (1, 2), "depth": (1, 1), "widths": (4, 8, 16), "kernels": (3,),
                                      "hidden": (0, 0), "dropouts": (0.0,)}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dom(url: str, *, budget_ms: int = 15_000) -> str:
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                          f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    return out.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium; .ci/run installs it)")
def test_optuna_dashboard_shows_the_objective_names_and_the_trials(tmp_path: Path) -> None:
    storage = tmp_path / "d.db"
    study = nas.search(SPACE, "digits", goal=nas.Goal(objectives=("accuracy", "macs")), strategy=nas.Strategy(n_trials=3, sampler="random", seed=0, budget={"epochs": 2, "batch_size": 128}), run=nas.Run(storage=storage, study="dash"), verbose=False)
    n = len(study.optuna_study.trials)
    port = _free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "optuna-dashboard"), f"sqlite:///{storage}", "--host",
                               "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
            r"Objective Y:.{0,400}?>macs<", page, re.S)
        # the trial list has every trial of the study, and no other
        listed = set(re.findall(r"Trial (\d+)", _dom(f"http://127.0.0.1:{port}/dashboard/studies/1/trials")))
        assert listed == {str(t.number) for t in study.optuna_study.trials} and len(listed) == n
    finally:
        server.terminate()
        server.wait(10)
