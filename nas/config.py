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


class _DuplicateKey(ValueError):
    """A key given twice in one YAML mapping."""


class _Loader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader, except that a key given twice in one mapping is an error: YAML keeps the last
    silently, so ``n_trials: 50`` early in a config would be overridden unseen by a forgotten ``n_trials: 5``."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` may be overridden, as YAML means
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base loader says so
                continue
            if first is not None:
                lines = f"line {line}" if first == line else f"lines {first} and {line}"
                raise _DuplicateKey(f"`{key}` is given twice in one mapping ({lines}); YAML would keep the last "
                                    f"silently, so give it once")
            seen[key] = line
        return super().construct_mapping(node, deep)


def load_config(path: str | Path) -> dict[str, Any]:
    """The settings of the YAML config at ``path``, every one of them checked that can be checked without the
    data (the rest is checked by ``nas.create_study`` before anything is stored)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"config file {str(path)!r} does not exist")
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} must be a YAML file, but it is a folder")
    try:
        config = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a SafeLoader
    except _DuplicateKey as exc:
        raise ValueError(f"config {str(path)!r}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"config {str(path)!r} is not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"config file {str(path)!r} could not be read as UTF-8 text: {exc}") from None
    if not isinstance(config, dict):
        raise ValueError(f"config {str(path)!r} must be a mapping of settings, but got {type(config).__name__}")
    unknown = sorted(set(config) - set(KEYS), key=str)
    if unknown:
        raise ValueError(f"config {str(path)!r}: unknown setting {unknown[0]!r}; known settings: {', '.join(KEYS)}")
    if config.get("study") is None:  # `study:` left empty would make a name up
        raise ValueError(f"config {str(path)!r}: `study` (the study name) is required" +
                         (", but got study=None" if "study" in config else ""))
    if config.get("export") is not None:
        _check_export(config["export"], config)
    return config


def _check_export(export: Any, config: dict[str, Any]) -> None:
    """The ``export`` block, checked completely when the config is loaded: it runs after the search, when a
    mistake would cost the whole search's time to find."""
    from nas._files import check_folder
    from nas.export import check_selection

    if not isinstance(export, dict):
        raise ValueError(f"config: `export` must be a mapping like {{which: best, path: exports/x}}, but got "
                         f"export={export!r}")
    bad = sorted(set(export) - set(EXPORT_KEYS), key=str)
    if bad:
        raise ValueError(f"config: unknown export setting {bad[0]!r}; known: {', '.join(EXPORT_KEYS)}")
    path = export.get("path", "exports")
    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"config: `export.path` must be a folder path, but got export.path={path!r}")
    check_folder(path, "export.path", path)
    epochs = export.get("retrain_epochs", 0)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 0 <= epochs <= 10_000:
        raise ValueError(f"config: `export.retrain_epochs` must be an integer in [0, 10,000], but got "
                         f"export.retrain_epochs={epochs!r}")
    if epochs and config.get("evaluator") is not None:
        raise ValueError(f"config: `export.retrain_epochs` retrains on the study's data, but this study scores "
                         f"architectures with an evaluator and has none; got export.retrain_epochs={epochs!r}")
    check_selection(export.get("which", "best"), {k: v for k, v in export.items() if k.startswith("max_")}, "export.")


def _resolve_base(base: Any) -> Any:
    """A compound space's ``base`` from a config: a baseline name as it is, ``{spec: file}`` read from the file,
    ``{study: name, storage: url, which: best|knee|N}`` from an evaluated trial of that study."""
    if not isinstance(base, dict):
        return base
    from nas.spec import ArchSpec

    if set(base) == {"spec"}:
        file = base["spec"]
        if not isinstance(file, str) or not Path(file).is_file():
            raise ValueError(f"config: the compound space's `base.spec` must be a spec JSON file (as exports write), "
                             f"but got base.spec={file!r}" + (" (no such file)" if isinstance(file, str) else ""))
        try:
            text = Path(file).read_bytes()
        except OSError as exc:
            raise ValueError(f"config: the compound space's `base.spec` file {file!r} could not be read "
                             f"({exc.strerror})") from None
        return ArchSpec.from_json(text)
    if "study" in base and not set(base) - {"study", "storage", "which"}:
        from nas.study import load_study

        study = load_study(base["study"], base.get("storage"))
        which = base.get("which", "best")
        if which == "best":
            record = study.best()
        elif which == "knee":
            record = study.knee()
        elif isinstance(which, int) and not isinstance(which, bool):
            record = {r.number: r for r in study.trials}.get(which)
        else:
            raise ValueError(f"config: the compound space's `base.which` must be best, knee or a trial number, but "
                             f"got base.which={which!r}")
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
    if not isinstance(backend, str) or backend not in BACKEND_KEYS:
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
        options = space.get("options") or {}
        if not isinstance(options, dict):
            raise ValueError(f"config: `space.options` must be a mapping of option names to values, but got "
                             f"space.options={options!r}")
        options = dict(options)
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
