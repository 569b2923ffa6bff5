"""Experiment configs (YAML): the arguments of ``nas.search`` as data, checked before anything runs.

```yaml
study: digits-quick              # study name
storage: runs/nas.db             # optional (default runs/nas.db); any Optuna storage URL
data: digits                     # or {name: fashion_mnist, train_samples: 5000}, {folder: path}, {npz: file}
space: {name: conv, options: {stages: [1, 3]}}   # or just the name; input shape and classes come from data
objectives: [accuracy, macs]
n_trials: 12
sampler: nsga2                   # nsga2 | tpe | random
seed: 0
budget: {epochs: 3, batch_size: 64, learning_rate: 0.003}
constraints: {max_macs: 2000000}
warm_start: []                   # classic networks of the space, by name
pruner: null                     # median | successive_halving | hyperband (single objective)
n_workers: 1
export: {which: best, path: exports/digits-quick, retrain_epochs: 0}
```

A compound space may take its base from an earlier study: ``options: {base: {study: NAME, storage: URL,
which: best}}`` (or ``which: knee`` / a trial number), or from a file: ``base: {spec: path/to/spec.json}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["load_config", "search_kwargs", "KEYS"]

KEYS = ("study", "storage", "data", "space", "objectives", "n_trials", "sampler", "seed", "budget", "constraints",
        "warm_start", "pruner", "n_workers", "max_retries", "max_trials_per_worker", "max_failures", "artifacts", "export",
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


def search_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """``nas.search`` keyword arguments from a loaded config."""
    kwargs = {k: v for k, v in config.items() if k not in ("study", "export", "description", "space", "data")}
    kwargs["study_name"] = config["study"]
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
