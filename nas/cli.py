"""The ``nas`` command line: search, resume, status, front, export, worker, summary, baselines."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from nas.cost import cost, summary
from nas.spec import ArchSpec

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _load_spec(ref: str, *, input_shape: str | None, num_classes: int | None) -> ArchSpec:
    import search_spaces

    shape = tuple(int(d) for d in input_shape.split("x")) if input_shape else None
    if ref in search_spaces.baselines():
        return search_spaces.baseline(ref, input_shape=shape, num_classes=num_classes or 1000)  # type: ignore[arg-type]
    path = Path(ref)
    if path.exists():
        spec = ArchSpec.from_json(path.read_text())
        return spec if shape is None else spec.replace(input_shape=shape)
    raise ValueError(f"`spec` must be a baseline name ({', '.join(search_spaces.baselines())}) or a spec JSON file, "
                     f"but got spec={ref!r}")


def _study(args: argparse.Namespace) -> Any:
    from nas.study import load_study

    return load_study(args.study, args.storage)


def _print_front(study: Any, objectives: list[str] | None, limit: int | None) -> None:
    print(f"\nranked architectures of study {study.name!r} (rank 0 = Pareto front on "
          f"{', '.join(study._front_objectives(objectives))}; * = knee):")
    print(study.table(objectives, limit=limit))
    ref = study.reference_point(objectives)
    print(f"hypervolume {study.hypervolume(objectives=objectives):.4f} (costs divided by the reference point "
          f"{ {k: v for k, v in ref.items()} })")


def _export(study: Any, which: Any, out: str, retrain: int, limits: dict[str, float]) -> None:
    folders = study.export(which, out, retrain_epochs=retrain, **limits)
    for f in folders:
        print(f"exported {f / 'model.keras'} (+ spec.json, metrics.json)")


def cmd_search(args: argparse.Namespace) -> int:
    from nas.config import load_config, search_kwargs
    from nas.study import search

    config = load_config(args.config)
    kwargs = search_kwargs(config)
    for name in ("n_trials", "n_workers", "storage"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    if args.study:
        kwargs["study_name"] = args.study
    study = search(**kwargs)
    if kwargs.get("n_workers") == 0:
        return 0
    _print_front(study, None, args.limit)
    export = config.get("export")
    if export and not args.no_export:
        limits = {k: float(v) for k, v in export.items() if k.startswith("max_")}
        _export(study, export.get("which", "best"), export.get("path", f"exports/{study.name}"),
                int(export.get("retrain_epochs", 0)), limits)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    study = _study(args)
    resources = json.loads(args.resources) if args.resources else None
    study.resume(n_trials=args.n_trials, n_workers=args.n_workers, backend=args.backend, ray_address=args.ray_address,
                 resources_per_trial=resources, max_concurrent=args.max_concurrent, scheduler=args.scheduler)
    _print_front(study, None, args.limit)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import optuna

    from nas._storage import describe_storage, open_storage

    if args.study is None:
        url = describe_storage(args.storage)
        for s in optuna.get_all_study_summaries(open_storage(url)):
            print(f"{s.study_name:<40} {s.n_trials:>5} trials  started {s.datetime_start}")
        return 0
    study = _study(args)
    c = study.counts()
    cfg = study.config
    print(f"study {study.name!r} in {study.storage_url}")
    print(f"space {cfg['space']['space']}, objectives {', '.join(cfg['objectives'])}, sampler "
          f"{cfg['sampler']['name']}, budget {cfg['budget']['epochs']} epochs, constraints {cfg.get('constraints') or '-'}")
    print(f"progress {c['done']}/{study.n_trials} finished: {c['complete']} complete, {c['pruned']} pruned; "
          f"{c['running']} running, {c['waiting']} queued, {c['infeasible']} over budget, {c['failed']} failed")
    best = study.best()
    if best is not None:
        print(f"best so far: trial {best.number} accuracy {best.metrics['accuracy']:.4f} MACs "
              f"{best.metrics['macs']:,} params {best.metrics['params']:,}  {best.spec_str}")
    failed = [r for r in study.trials if r.status == "failed"]
    for r in failed[-5:]:
        print(f"failed trial {r.number}: {r.error}")
    return 0


def cmd_front(args: argparse.Namespace) -> int:
    study = _study(args)
    objectives = args.objectives.split(",") if args.objectives else None
    _print_front(study, objectives, args.limit)
    if args.plot:
        from nas.plot import plot_front

        path = plot_front(study, args.plot, objectives=objectives)
        print(f"wrote {path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    study = _study(args)
    limits = {k: v for k, v in (("max_macs", args.max_macs), ("max_params", args.max_params)) if v is not None}
    _export(study, args.which, args.out or f"exports/{study.name}", args.retrain_epochs, limits)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from nas._storage import describe_storage
    from nas._worker import main as worker_main

    argv = ["--study", args.study, "--storage", describe_storage(args.storage)]
    if args.max_trials:
        argv += ["--max-trials", str(args.max_trials)]
    if args.seed is not None:
        argv += ["--seed", str(args.seed)]
    return worker_main(argv)


def cmd_summary(args: argparse.Namespace) -> int:
    spec = _load_spec(args.spec, input_shape=args.input_shape, num_classes=args.classes)
    if args.json:
        print(json.dumps({**cost(spec).as_dict(), "key": spec.key()}))
    else:
        summary(spec, all_layers=args.all_layers)
    return 0


def cmd_baselines(args: argparse.Namespace) -> int:
    import search_spaces

    print(f"{'name':<18} {'input':>11} {'MACs':>16} {'params':>13}")
    for name in search_spaces.baselines():
        spec = search_spaces.baseline(name)
        c = cost(spec)
        print(f"{name:<18} {'x'.join(map(str, spec.input_shape)):>11} {c.macs:>16,} {c.params:>13,}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nas", description="Neural architecture search in Keras 3.")
    sub = parser.add_subparsers(dest="command", required=True)

    def study_args(p: argparse.ArgumentParser, required: bool = True) -> None:
        p.add_argument("--study", required=required, help="study name")
        p.add_argument("--storage", default=None, help="storage URL or file (default runs/nas.db)")

    p = sub.add_parser("search", help="run the search described by a YAML config")
    p.add_argument("config")
    p.add_argument("--study", help="override the config's study name")
    p.add_argument("--storage")
    p.add_argument("--n-trials", type=int)
    p.add_argument("--n-workers", type=int, help="local worker processes (0: only create the study, for `nas worker`s)")
    p.add_argument("--limit", type=int, default=20, help="rows of the ranked table")
    p.add_argument("--no-export", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("resume", help="continue a stored search")
    study_args(p)
    p.add_argument("--n-trials", type=int, help="new target number of finished trials")
    p.add_argument("--n-workers", type=int)
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--backend", default="local", help="local (worker processes here) or ray")
    p.add_argument("--ray-address", help="join this Ray cluster (default: start a local Ray instance)")
    p.add_argument("--resources", help='Ray resources per trial as JSON, e.g. \'{"cpu": 1, "gpu": 0.5}\'')
    p.add_argument("--max-concurrent", type=int, help="Ray: trials at once")
    p.add_argument("--scheduler", help="Ray: asha or hyperband (single-objective accuracy)")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("status", help="progress, counts by state, best so far (without --study: list studies)")
    study_args(p, required=False)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("front", help="the ranked table and Pareto front")
    study_args(p)
    p.add_argument("--objectives", help="comma-separated, e.g. accuracy,params")
    p.add_argument("--limit", type=int)
    p.add_argument("--plot", help="write accuracy vs MACs to this .png, .svg or .html file")
    p.set_defaults(func=cmd_front)

    p = sub.add_parser("export", help="write .keras models, spec.json and metrics.json")
    study_args(p)
    p.add_argument("--which", default="best", help="best | knee | front | a trial number")
    p.add_argument("--out")
    p.add_argument("--retrain-epochs", type=int, default=0)
    p.add_argument("--max-macs", type=float)
    p.add_argument("--max-params", type=float)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("worker", help="join a study as a worker (from any machine that reaches the storage)")
    study_args(p)
    p.add_argument("--max-trials", type=int, default=0, help="exit after this many trials (0: until the target)")
    p.add_argument("--seed", type=int)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("summary", help="per-layer MACs and params of a baseline or a spec JSON file")
    p.add_argument("spec")
    p.add_argument("--input-shape", help="HxWxC, e.g. 32x32x3")
    p.add_argument("--classes", type=int)
    p.add_argument("--all-layers", action="store_true")
    p.add_argument("--json", action="store_true", help="print totals as JSON")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("baselines", help="list the classic networks and their cost")
    p.set_defaults(func=cmd_baselines)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:
        print(f"nas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
