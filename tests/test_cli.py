"""The command line on a temporary storage: search, status, front (+plot), export, resume, errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nas
import nas.engine.storage

pytestmark = pytest.mark.slow

TINY_SPACE = {"space": "conv", "options": {"stages": (1, 2), "depth": (1, 1), "widths": (4, 8), "kernels": (3,),
                                           "hidden": (0, 0), "dropouts": (0.0,)}}

CONFIG = """
data: digits
space:
  name: conv
  options: {stages: [1, 2], depth: [1, 1], widths: [4, 8], kernels: [3], hidden: [0, 0], dropouts: [0.0]}
goal: {objectives: [accuracy, macs]}
strategy: {n_trials: 3, sampler: random, seed: 2, budget: {epochs: 1, batch_size: 128}}
run: {study: cli-tiny}
export: {which: best, path: EXPORT}
"""


def nas_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def _same_predictions(folder: Path) -> None:
    """model.tflite, saved_model/ and model.onnx (run by onnxruntime) give model.keras's outputs on raw digits
    (0-16 pixels)."""
    import keras
    import numpy as np
    import tensorflow as tf

    x = (nas.load_data("digits").x_val[:50] * 16).astype(np.float32)
    expected = keras.saving.load_model(folder / "model.keras").predict(x, verbose=0)
    lite = tf.lite.Interpreter(model_path=str(folder / "model.tflite"))
    index = lite.get_input_details()[0]["index"]
    lite.resize_tensor_input(index, x.shape)
    lite.allocate_tensors()
    lite.set_tensor(index, x)
    lite.invoke()
    assert np.abs(lite.get_tensor(lite.get_output_details()[0]["index"]) - expected).max() < 1e-5
    loaded = tf.saved_model.load(str(folder / "saved_model"))  # kept referenced while it is called
    served = loaded.serve(tf.constant(x)).numpy()
    assert np.abs(served - expected).max() < 1e-5
    import onnxruntime

    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    [onnx_out] = session.run(None, {session.get_inputs()[0].name: x})
    assert onnx_out.shape == expected.shape and np.abs(onnx_out - expected).max() < 1e-5


def test_cli_end_to_end(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(CONFIG.replace("EXPORT", str(tmp_path / "exp")))
    storage = f"sqlite:///{tmp_path}/cli.db"
    out = nas_cli("search", str(cfg), "--storage", storage, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "[  3/3]" in out.stdout and "ranked architectures of study 'cli-tiny'" in out.stdout
    assert "hypervolume" in out.stdout and "exported" in out.stdout
    assert list((tmp_path / "exp" / "cli-tiny").glob("trial-*/model.keras"))  # <path>/<study>/trial-N-<key>/

    status = nas_cli("status", "--study", "cli-tiny", "--storage", storage, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "progress 3/3 finished: 3 complete" in status.stdout and "best so far: trial" in status.stdout
    listing = nas_cli("status", "--all", "--storage", storage, cwd=tmp_path)
    assert listing.stdout.split()[:3] == ["cli-tiny", "3/3", "finished,"]
    latest = nas_cli("status", "--storage", storage, cwd=tmp_path)  # no --study: the latest study
    assert latest.stdout == status.stdout and latest.stderr == ""

    for name in ("front.png", "front.html", "front.svg"):
        front = nas_cli("front", "--study", "cli-tiny", "--storage", storage, "--plot", str(tmp_path / name),
                        cwd=tmp_path)
        assert front.returncode == 0, front.stderr
        assert (tmp_path / name).stat().st_size > 500
        size = (tmp_path / name).stat().st_size
        note = (f" ({size / 1e6:.1f} MB: plotly.js is inside, so it opens offline; --plot-cdn writes a page of a few "
                f"kB that loads it from cdn.plot.ly)" if name.endswith(".html") else "")
        assert front.stdout.splitlines()[-1] == f"wrote {tmp_path / name}{note}"
    assert (tmp_path / "front.png").read_bytes()[:4] == b"\x89PNG"
    page = (tmp_path / "front.html").read_text()
    assert "<svg" in (tmp_path / "front.svg").read_text() and "<svg" not in page[:200]
    # an interactive Plotly page with plotly.js inside (offline: no script from a CDN), the trials and the front
    # (its trials in cost order, labelled with their numbers), a log cost axis
    assert "Plotly.newPlot" in page and 'src="http' not in page and len(page) > 1_000_000
    assert '"name":"trials"' in page and '"name":"Pareto front"' in page and '"type":"log"' in page
    assert '"xaxis":{"title":{"text":"MACs"},"type":"log"}' in page  # not "MACS"
    assert "accuracy vs MACs" in (tmp_path / "front.svg").read_text()
    small = nas_cli("front", "--study", "cli-tiny", "--storage", storage, "--plot", str(tmp_path / "small.html"),
                    "--plot-cdn", cwd=tmp_path)
    size = (tmp_path / "small.html").stat().st_size
    assert size < 20_000 and 'src="https://cdn.plot.ly/plotly-' in (tmp_path / "small.html").read_text()
    assert small.stdout.splitlines()[-1] == (f"wrote {tmp_path / 'small.html'} ({size / 1e3:.0f} kB: it loads "
                                             f"plotly.js from cdn.plot.ly when opened)")
    front = sorted(nas.load_study("cli-tiny", storage).pareto_front(), key=lambda r: r.metrics["macs"])
    assert '"text":' + json.dumps([str(r.number) for r in front], separators=(",", ":")) in page

    exp = nas_cli("export", "--study", "cli-tiny", "--storage", storage, "--which", "front", "--out",
                  str(tmp_path / "front"), cwd=tmp_path)
    assert exp.returncode == 0, exp.stderr
    index = json.loads((tmp_path / "front" / "cli-tiny" / "index.json").read_text())
    assert index["which"] == "front"
    assert len(index["exported"]) == len(list((tmp_path / "front" / "cli-tiny").glob("trial-*"))) >= 1
    # TensorFlow Lite and SavedModel beside model.keras, giving Keras's predictions
    exp = nas_cli("export", "--study", "cli-tiny", "--storage", storage, "--format", "keras,tflite,saved_model,onnx",
                  "--out", str(tmp_path / "lite"), cwd=tmp_path)
    assert exp.returncode == 0, exp.stderr
    [folder] = list((tmp_path / "lite" / "cli-tiny").glob("trial-*"))
    assert json.loads((folder / "metrics.json").read_text())["files"] == {
        "keras": "model.keras", "tflite": "model.tflite", "saved_model": "saved_model", "onnx": "model.onnx"}
    # each file reported as it is written (the conversions take seconds each), then the folder with all of them
    number = json.loads((folder / "metrics.json").read_text())["trial"]
    lines = exp.stdout.splitlines()
    assert [re.sub(r" \(\d+\.\d s\)$", "", line) for line in lines[:-1]] == [
        f"nas export: trial {number}: wrote {folder / name}"
        for name in ("model.keras", "model.onnx", "saved_model", "model.tflite")]
    assert lines[-1] == (f"exported {folder / 'model.keras'} (+ spec.json, metrics.json, saved_model, model.tflite, "
                         f"model.onnx)")
    _same_predictions(folder)
    bad = nas_cli("export", "--storage", storage, "--format", "torchscript", cwd=tmp_path)
    assert bad.returncode == 2 and \
        "`formats` must be among keras, saved_model, tflite, onnx, but got 'torchscript'" in bad.stderr

    bad = nas_cli("resume", "--study", "cli-tiny", "--storage", storage, "--backend", "spark", cwd=tmp_path)
    assert bad.returncode == 2 and "argument --backend: invalid choice: 'spark'" in bad.stderr
    bad = nas_cli("resume", "--study", "cli-tiny", "--storage", storage, "--scheduler", "asha", cwd=tmp_path)
    assert bad.returncode == 2 and ("`--scheduler` is a Ray option, but the study resumes on the local backend "
                                    "(add --backend ray)") in bad.stderr
    bad = nas_cli("resume", "--study", "cli-tiny", "--storage", storage, "--backend", "ray", "--resources", "{cpu: 1",
                  cwd=tmp_path)
    assert bad.returncode == 2 and "`--resources` must be JSON" in bad.stderr and "'{cpu: 1'" in bad.stderr
    bad = nas_cli("resume", "--study", "cli-tiny", "--storage", storage, "--n-workers", "-2", cwd=tmp_path)
    assert bad.returncode == 2
    assert "`n_workers` must be an integer in [1, 256] or None, but got n_workers=-2" in bad.stderr
    resumed = nas_cli("resume", "--study", "cli-tiny", "--storage", storage, "--n-trials", "4", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "[  4/4]" in resumed.stdout
    again = nas_cli("status", "--study", "cli-tiny", "--storage", storage, cwd=tmp_path)
    assert "progress 4/4 finished" in again.stdout and "backend local" in again.stdout
    # a second study: commands without --study take the one created last, and say so
    nas.create_study(TINY_SPACE, "digits", strategy=nas.Strategy(n_trials=1),
                     run=nas.Run(storage=storage, study="later"), verbose=False)
    latest = nas_cli("status", "--storage", storage, cwd=tmp_path)
    assert latest.returncode == 0 and "study 'later'" in latest.stdout and "progress 0/1 finished" in latest.stdout
    assert f"nas: study 'later', the latest of 2 in {storage}" in latest.stderr


def test_read_only_commands_never_create_a_storage(tmp_path: Path) -> None:
    typo = tmp_path / "runs" / "nsa.db"
    for args in (("status",), ("status", "--study", "x"), ("front", "--study", "x"), ("export", "--study", "x")):
        out = nas_cli(*args, "--storage", str(typo), cwd=tmp_path)
        assert out.returncode == 2 and f"there is no storage at {typo}" in out.stderr, (args, out.stderr)
    assert not typo.exists() and not typo.parent.exists()
    empty = tmp_path / "empty.db"
    nas.engine.storage.open_storage(nas.engine.storage.describe_storage(empty))  # a storage without studies
    out = nas_cli("front", "--storage", str(empty), cwd=tmp_path)
    assert out.returncode == 2 and "`--study`: there is no study in sqlite:///" in out.stderr
    assert "start one with `nas search CONFIG`" in out.stderr
    version = nas_cli("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"nas {__import__('nas').__version__}"


@pytest.mark.parametrize("text, message", [
    ("run: {study: x}\nspace: conv\nepochs: 3\n", "unknown field 'epochs'"),
    ("run: {study: x}\nspace: conv\nstrategy: {epochs: 3}\n", "strategy: unknown field 'epochs'"),
    ("run: {study: x}\nspace: {name: conv, opts: {}}\n", "space: unknown setting 'opts'"),
    ("run: {study: x}\nspace: hexagon\n", "`space` must be one of conv, residual"),
    ("run: {study: x}\nspace: conv\ngoal: {objectives: [accuracy, energy]}\n", "but got 'energy'"),
    ("run: {study: x}\nspace: conv\nstrategy: {budget: {epochs: -1}}\n",
     "budget: `epochs` must be an integer in [1, 10000], but got epochs=-1"),
    ("run: {study: x, storage: 'nosuchdb://x'}\nspace: conv\n", "`storage` could not be opened"),
    ("run: {study: x}\nspace: conv\ndata: {name: fashion_mnist}\n", "dataset-fashion-mnist"),
    ("run: {study: x}\nspace: conv\n  bad: [\n", "is not valid YAML"),
])
def test_bad_configs_exit_2_with_the_field(tmp_path: Path, text: str, message: str, monkeypatch) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    env_dir = tmp_path / "no-fashion"
    monkeypatch.setenv("NAS_FASHION_MNIST_DIR", str(env_dir))
    override = [] if "storage:" in text else ["--storage", f"sqlite:///{tmp_path}/b.db"]
    out = nas_cli("search", str(cfg), *override, "--n-trials", "1", cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr
    assert not (tmp_path / "b-artifacts").exists() or not list((tmp_path / "b-artifacts").glob("**/*.h5"))


def test_experiment_configs_are_valid() -> None:
    """Every shipped config is a grouped record (no deprecation warning) whose space can be configured."""
    import warnings

    import search_spaces
    from nas.config import load_config

    root = Path(__file__).resolve().parent.parent / "experiments"
    names = sorted(p.name for p in root.glob("*.yaml"))
    assert "digits_quick.yaml" in names and len(names) >= 6
    for path in root.glob("*.yaml"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            config = load_config(path).config
        assert config.run.study is not None and config.description
        if "compound" in path.name:
            assert config.space["options"]["base"]["study"] == "fashion-mnist-mbconv"
            continue
        shape = (8, 8, 1) if config.data == "digits" else (28, 28, 1)
        search_spaces.get(config.space["name"], input_shape=shape, **config.space["options"])
