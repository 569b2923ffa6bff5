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
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml

from nas.engine.schema import FLAT_KEYS, StudyConfig
from nas.validate import check_int, check_name, known_fields

__all__ = ["EXPORT_KEYS", "Loaded", "check_export", "load_config", "resolve_base"]

EXPORT_KEYS = ("which", "path", "retrain_epochs", "formats", "max_macs", "max_params", "max_flops", "max_latency")
EXPORT_FORMATS = ("keras", "tflite", "saved_model", "onnx")


@dataclasses.dataclass(frozen=True)
class Loaded:
    """A config file as read: the study record, the ``export`` block (checked; None: export nothing) and whether
    the file asks only to create the study (``n_workers: 0`` in a flat config of earlier versions)."""

    config: StudyConfig
    export: dict[str, Any] | None = None
    create_only: bool = False


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


def check_export(export: Any, has_data: bool = True, where: str = "config") -> dict[str, Any]:
    """The ``export`` block, checked completely when the config is loaded (it runs after the search, when a
    mistake would cost the whole search's time to find): which trials, where, formats, retraining, limits."""
    from nas._files import check_folder
    from nas.export import check_selection

    if not isinstance(export, dict):
        raise ValueError(f"{where}: `export` must be a mapping like {{which: best, path: exports/x}}, but got "
                         f"export={export!r}")
    known_fields(f"{where}: export", export, EXPORT_KEYS, what="setting")
    path = export.get("path", "exports")
    check_name("`export.path`", path)
    check_folder(path, "export.path", path)
    epochs = check_int("export.retrain_epochs", export.get("retrain_epochs", 0), 0, 10_000)
    if epochs and not has_data:
        raise ValueError(f"{where}: `export.retrain_epochs` retrains on the study's data, but this study scores "
                         f"architectures with an evaluator and has none; got export.retrain_epochs={epochs!r}")
    formats = export.get("formats", ["keras"])
    formats = [formats] if isinstance(formats, str) else formats
    if not isinstance(formats, list) or not formats or any(f not in EXPORT_FORMATS for f in formats):
        raise ValueError(f"{where}: `export.formats` must be a list of {', '.join(EXPORT_FORMATS)}, but got "
                         f"export.formats={export.get('formats')!r}")
    which = export.get("which", "best")
    check_selection(which, {k: v for k, v in export.items() if k.startswith("max_")}, "export.")
    return {**export, "which": which, "formats": formats}


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


def resolve_base(config: StudyConfig) -> StudyConfig:
    """The record with a compound space's ``base`` given as ``{spec: file}`` or ``{study: ..., which: ...}``
    replaced by the spec it names (read when the search is created, not when the config is read: the base study
    may be made later by another config)."""
    space = config.space
    if not (isinstance(space, dict) and isinstance(space.get("options"), dict) and "base" in space["options"]):
        return config
    return config.replace(space={**space, "options": {**space["options"],
                                                      "base": _resolve_base(space["options"]["base"])}})


def load_config(path: str | Path) -> Loaded:
    """Read and check a YAML config (see the module docstring)."""
    path = Path(path)
    where = f"config {str(path)!r}"
    if not path.exists():
        raise ValueError(f"config file {str(path)!r} does not exist")
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} must be a YAML file, but it is a folder")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a SafeLoader
    except _DuplicateKey as exc:
        raise ValueError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{where} is not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where} could not be read as UTF-8 text: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping of settings, but got {type(data).__name__}")
    data = dict(data)
    export = data.pop("export", None)
    run = data.get("run")
    for given, key in ((run, "study"), (data, "study")):
        if isinstance(given, dict) and key in given and given[key] is None:  # `study:` left empty: no name made up
            shown = "run.study" if given is run else "study"
            raise ValueError(f"{where}: `{shown}` (the study name) is empty; give a name or leave the key out (nas "
                             f"then names the study after the space and the time)")
    create_only = data.get("n_workers") == 0 and "version" not in data and bool(set(data) & set(FLAT_KEYS))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FutureWarning)
        config = StudyConfig.from_dict(data, where=where)
    for w in caught:  # a flat config of earlier versions: say how to write it now
        print(f"nas: warning: {w.message}", file=sys.stderr)
    if export is not None:
        export = check_export(export, has_data=config.evaluator is None, where=where)
    return Loaded(config=config, export=export, create_only=create_only)
