"""Experiment configs (YAML): the arguments of ``nas.search`` as data, checked before anything runs.

```yaml
study: digits-quick              # study name
storage: runs/nas.db             # optional (default runs/nas.db); any Optuna storage URL
data: digits                     # or {name: fashion_mnist, train_samples: 5000}, {folder: path}, {npz: file}
space: {name: conv, options: {stages: [1, 3]}}   # or just the name; input shape and classes come from data
objectives: [accuracy, macs]
n_trials: 12
sampler: evolution               # evolution | nsga2 | tpe | random | grid | {name: GridSampler, options: {...}}
seed: 0
budget: {epochs: 3, batch_size: 64, learning_rate: 0.003}
constraints: {max_macs: 2000000}
warm_start: []                   # classic networks of the space, by name
pruner: null                     # median | successive_halving | hyperband (single objective)
n_workers: 1                     # shorthand for backend: {kind: local, n_workers: 1}
export: {which: best, path: exports/digits-quick, retrain_epochs: 0}
```

The backend and the device are either one mapping each (``backend: {kind: ray, resources: {cpu: 1}}``,
``device: {kind: gpu, mixed_precision: mixed_float16}``) or the shorthand keys, which stay short:
``n_workers`` / ``max_trials_per_worker`` (local), ``backend: ray`` with ``ray_address`` /
``resources_per_trial`` / ``max_concurrent`` / ``scheduler``, ``backend: keras_tuner`` with ``tuner`` /
``tuner_options``, and ``device`` (a kind) with ``mixed_precision`` / ``jit_compile`` / ``tpu_address``. A
shorthand key of another backend than the one chosen is an error. ``n_workers: 0`` creates the study and runs
nothing (for ``nas worker`` processes started elsewhere).

A compound space may take its base from an earlier study: ``options: {base: {study: NAME, storage: URL,
which: best}}`` (or ``which: knee`` / a trial number), or from a file: ``base: {spec: path/to/spec.json}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["load_config", "search_kwargs", "creates_only", "KEYS"]

KEYS = ("study", "storage", "data", "space", "objectives", "n_trials", "sampler", "seed", "budget", "constraints",
        "warm_start", "pruner", "n_workers", "max_retries", "max_trials_per_worker", "max_failures", "artifacts", "export",
        "sample_within_limits",
        "evaluator",
        "device", "mixed_precision", "jit_compile", "tpu_address", "backend", "resources_per_trial", "ray_address",
        "max_concurrent", "scheduler", "tuner", "tuner_options",
        "description")
EXPORT_KEYS = ("which", "path", "retrain_epochs", "max_macs", "max_params", "max_flops", "max_latency")


def load_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ValueError(f"config file {str(path)!r} does not exist")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"config {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise ValueError(f"config {str(path)!r} must be a mapping of settings, but got {type(config).__name__}")
    unknown = sorted(set(config) - set(KEYS))
    if unknown:
        raise ValueError(f"config {str(path)!r}: unknown setting {unknown[0]!r}; known settings: {', '.join(KEYS)}")
    if "study" not in config:
        raise ValueError(f"config {str(path)!r}: `study` (the study name) is required")
    export = config.get("export")
    if export is not None:
        if not isinstance(export, dict):
            raise ValueError(f"config: `export` must be a mapping like {{which: best, path: exports/x}}, but got {export!r}")
        bad = sorted(set(export) - set(EXPORT_KEYS))
        if bad:
            raise ValueError(f"config: unknown export setting {bad[0]!r}; known: {', '.join(EXPORT_KEYS)}")
    return config


def _resolve_base(base: Any) -> Any:
    if not isinstance(base, dict):
        return base
    from nas.spec import ArchSpec

    if "spec" in base:
        return ArchSpec.from_json(Path(base["spec"]).read_text())
    if "study" in base:
        from nas.study import load_study

        study = load_study(base["study"], base.get("storage"))
        which = base.get("which", "best")
        if which == "best":
            record = study.best()
        elif which == "knee":
            record = study.knee()
        else:
            record = {r.number: r for r in study.trials}.get(int(which))
        if record is None or record.spec is None:
            raise ValueError(f"config: space base {base!r} found no evaluated trial")
        return record.spec
    raise ValueError(f"config: a compound `base` must be a baseline name, {{spec: file}} or {{study: name, which: "
                     f"best}}, but got {base!r}")


BACKEND_KEYS = {"local": ("n_workers", "max_trials_per_worker"),
                "ray": ("ray_address", "resources_per_trial", "max_concurrent", "scheduler"),
                "keras_tuner": ("tuner", "tuner_options")}
DEVICE_KEYS = ("mixed_precision", "jit_compile", "tpu_address")


def creates_only(config: dict[str, Any]) -> bool:
    """``n_workers: 0``: create the study, run nothing."""
    return config.get("n_workers") == 0


def _backend(config: dict[str, Any]) -> Any:
    """The backend object a config's ``backend`` and shorthand keys describe."""
    from nas.backends import backend_of

    backend = config.get("backend", "local")
    if isinstance(backend, dict):
        given = [k for keys in BACKEND_KEYS.values() for k in keys if k in config]
        if given:
            raise ValueError(f"config: `{given[0]}` is a shorthand; with `backend` given as a mapping put the option "
                             f"inside it")
        return backend_of(backend)
    if backend not in BACKEND_KEYS:
        raise ValueError(f"config: `backend` must be one of {', '.join(BACKEND_KEYS)} or a mapping {{kind: ...}}, but "
                         f"got backend={backend!r}")
    for kind, keys in BACKEND_KEYS.items():
        for k in keys:
            if kind != backend and k in config and not (k == "n_workers" and config[k] in (0, 1)):
                raise ValueError(f"config: `{k}` is an option of the {kind} backend, but the config chooses "
                                 f"backend={backend!r}")
    workers = config.get("n_workers", 1)
    options = {"local": {"n_workers": 1 if workers == 0 else workers,  # 0: create only (see creates_only)
                         "max_trials_per_worker": config.get("max_trials_per_worker", 20)},
               "ray": {"address": config.get("ray_address"), "resources": config.get("resources_per_trial") or {"cpu": 1},
                       "max_concurrent": config.get("max_concurrent"), "scheduler": config.get("scheduler")},
               "keras_tuner": {"tuner": config.get("tuner", "random"), "options": config.get("tuner_options") or {}}}
    return backend_of({"kind": backend, **options[backend]})


def _device(config: dict[str, Any]) -> Any:
    from nas.devices import Device

    device = config.get("device", "auto")
    extra = {k: config[k] for k in DEVICE_KEYS if k in config}
    if isinstance(device, dict):
        if extra:
            raise ValueError(f"config: `{next(iter(extra))}` is a shorthand; with `device` given as a mapping put it "
                             f"inside it")
        return Device.of(device)
    return Device.of({"kind": device, **extra})


def search_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """``nas.search`` keyword arguments from a loaded config."""
    shorthand = {k for keys in BACKEND_KEYS.values() for k in keys} | set(DEVICE_KEYS)
    kwargs = {k: v for k, v in config.items()
              if k not in ("study", "export", "description", "space", "data", "backend", "device") and k not in shorthand}
    kwargs["study_name"] = config["study"]
    kwargs["backend"] = _backend(config)
    kwargs["device"] = _device(config)
    space = config.get("space")
    if space is None:
        raise ValueError("config: `space` is required (a space name or {name: ..., options: {...}})")
    if isinstance(space, dict):
        if "name" not in space:
            raise ValueError(f"config: `space` must be a name or {{name: ..., options: {{...}}}}, but got {space!r}")
        bad = sorted(set(space) - {"name", "options"})
        if bad:
            raise ValueError(f"config: unknown space setting {bad[0]!r}; known: name, options")
        options = dict(space.get("options") or {})
        if "base" in options:
            options["base"] = _resolve_base(options["base"])
        kwargs["space"] = {"space": space["name"], "options": options}
    else:
        kwargs["space"] = space
    data = config.get("data", "digits")
    if isinstance(data, dict):
        if "folder" in data:
            data = {"kind": "folder", "path": data["folder"], **{k: v for k, v in data.items() if k != "folder"}}
        elif "npz" in data:
            data = {"kind": "npz", "path": data["npz"]}
        elif "name" in data:
            data = {"kind": "name", **data}
        else:
            raise ValueError(f"config: `data` must be a name or {{name: ...}}, {{folder: ...}} or {{npz: ...}}, "
                             f"but got {data!r}")
    kwargs["data"] = data
    return kwargs
