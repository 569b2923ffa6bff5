"""Experiment configs: a YAML file is the study record (``nas.engine.schema.StudyConfig.to_dict()``), plus an
optional ``export:`` block for ``nas search``. Everything is checked when the file is read, before anything runs.

```yaml
description: a quick multi-objective search on digits
space: {name: families, options: {stages: [1, 3]}}   # or just the name; input shape and classes come from data
data: digits                     # or {name: fashion_mnist, train_samples: 5000}, {folder: path}, {npz: file}
goal:                            # what the search is for
  objectives: [accuracy, macs]
  constraints: {max_macs: 2000000}
strategy:                        # how it searches
  n_trials: 12
  sampler: evolution             # evolution | nsga2 | tpe | random | grid | {name: GridSampler, options: {...}}
  pruner: pareto                 # nas's early stopping, or Optuna's median | successive_halving | hyperband
  seed: 0
  budget: {epochs: 3, batch_size: 64, learning_rate: 0.003}
run:                             # where it runs and keeps its results
  study: digits-quick
  storage: runs/nas.db           # any file path or database URL (a password: use NAS_STORAGE instead)
  backend: {kind: local, n_workers: 2}
  device: auto
export: {which: best, path: exports/digits-quick}     # what `nas search` exports at the end
```

A compound space may take its base from an earlier study: ``options: {base: {study: NAME, storage: URL, which:
best}}`` (or ``which: knee`` / a trial number), or from a file: ``base: {spec: path/to/spec.json}``. Configs of
earlier versions (``n_trials:``, ``sampler:``, ``n_workers:`` ... at the top level) are read with a deprecation
message that shows their grouped form; in those, ``n_workers: 0`` means "create the study, run nothing".
"""

from __future__ import annotations

import dataclasses
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml

from nas.engine.schema import FLAT_KEYS, StudyConfig
from nas.validate import check_int, check_name, known_fields

__all__ = ["EXPORT_KEYS", "Loaded", "load_config"]

EXPORT_KEYS = ("which", "path", "retrain_epochs", "formats", "max_macs", "max_params", "max_flops", "max_latency")
EXPORT_FORMATS = ("keras", "tflite", "saved_model", "onnx")


@dataclasses.dataclass(frozen=True)
class Loaded:
    """A config file as read: the study record, the ``export`` block (checked; None: export nothing) and whether
    the file asks only to create the study (``n_workers: 0`` in a flat config of earlier versions)."""

    config: StudyConfig
    export: dict[str, Any] | None = None
    create_only: bool = False


class _UniqueKeys(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice in one mapping (PyYAML keeps the last one silently)."""


def _mapping(loader: _UniqueKeys, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise ValueError(f"the key {key!r} is given twice (lines {seen[key]} and {line}): each setting once")
        seen[key] = line
    return dict(loader.construct_mapping(node, deep=deep))


_UniqueKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def check_export(export: Any, where: str = "config") -> dict[str, Any]:
    """The ``export`` block, every value checked (what, where, formats, retraining, limits)."""
    if not isinstance(export, dict):
        raise ValueError(f"{where}: `export` must be a mapping like {{which: best, path: exports/x}}, but got {export!r}")
    known_fields(f"{where}: export", export, EXPORT_KEYS, what="setting")
    which = export.get("which", "best")
    if not (which in ("best", "knee", "front") or (isinstance(which, int) and not isinstance(which, bool)
                                                   and which >= 0)):
        raise ValueError(f"{where}: `export.which` must be best, knee, front or a trial number, but got which={which!r}")
    check_name("`export.path`", export.get("path", "exports"))
    check_int("export.retrain_epochs", export.get("retrain_epochs", 0), 0, 10_000)
    formats = export.get("formats", ["keras"])
    formats = [formats] if isinstance(formats, str) else formats
    if not isinstance(formats, list) or not formats or any(f not in EXPORT_FORMATS for f in formats):
        raise ValueError(f"{where}: `export.formats` must be a list of {', '.join(EXPORT_FORMATS)}, but got "
                         f"formats={export.get('formats')!r}")
    for key in ("max_macs", "max_params", "max_flops", "max_latency"):
        value = export.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value <= 0):
            raise ValueError(f"{where}: `export.{key}` must be a positive number, but got {key}={value!r}")
    return {**export, "which": which, "formats": formats}


def _resolve_base(base: Any) -> Any:
    """A compound space's ``base`` given as ``{spec: file}`` or ``{study: name, which: ...}``: the spec it names."""
    if not isinstance(base, dict):
        return base
    from nas.spec import ArchSpec

    if "spec" in base:
        path = Path(base["spec"])
        if not path.is_file():
            raise ValueError(f"config: the compound `base` spec file {str(path)!r} does not exist")
        return ArchSpec.from_json(path.read_text())
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


def load_config(path: str | Path) -> Loaded:
    """Read and check a YAML config (see the module docstring)."""
    path = Path(path)
    where = f"config {str(path)!r}"
    if not path.is_file():
        raise ValueError(f"{where} does not exist or is not a file")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeys)  # noqa: S506 - a SafeLoader that refuses duplicates
    except yaml.YAMLError as exc:
        raise ValueError(f"{where} is not valid YAML: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping of settings, but got {type(data).__name__}")
    data = dict(data)
    export = data.pop("export", None)
    export = None if export is None else check_export(export, where)
    create_only = data.get("n_workers") == 0 and "version" not in data and bool(set(data) & set(FLAT_KEYS))
    space = data.get("space")
    if isinstance(space, dict) and isinstance(space.get("options"), dict) and "base" in space["options"]:
        data["space"] = {**space, "options": {**space["options"], "base": _resolve_base(space["options"]["base"])}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FutureWarning)
        config = StudyConfig.from_dict(data, where=where)
    for w in caught:  # a flat config of earlier versions: say how to write it now
        print(f"nas: warning: {w.message}", file=sys.stderr)
    return Loaded(config=config, export=export, create_only=create_only)
