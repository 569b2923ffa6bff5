"""The ``nas`` command line: search, resume, status, front, export, worker, summary, baselines, cleanup."""

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


def _shape(text: str | None) -> tuple[int, int, int] | None:
    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"`--input-shape` must be HxWxC with positive integers, e.g. 32x32x3, but got {text!r}")
    height, width, channels = (int(p) for p in parts)
    return height, width, channels


def _load_spec(ref: str, *, input_shape: str | None, num_classes: int | None) -> ArchSpec:
    import search_spaces

    shape = _shape(input_shape)
    if num_classes is not None and num_classes < 2:
        raise ValueError(f"`--classes` must be an integer >= 2, but got --classes={num_classes}")
    if ref in search_spaces.baselines():
        return search_spaces.baseline(ref, input_shape=shape,
                                      num_classes=1000 if num_classes is None else num_classes)
    path = Path(ref)
    if path.is_file():
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"`spec` file {ref!r} is not UTF-8 text (a spec is JSON, as written by spec.json "
                             f"exports)") from None
        spec = ArchSpec.from_json(text)
        spec = spec if shape is None else spec.replace(input_shape=shape)
        return spec if num_classes is None else spec.replace(num_classes=num_classes)
    raise ValueError(f"`spec` must be a baseline name ({', '.join(search_spaces.baselines())}) or a spec JSON file, "
                     f"but got spec={ref!r}")


def _study(args: argparse.Namespace) -> Any:
    """The study ``--study`` names, or without it the storage's most recently created one (said on stderr)."""
    from nas.study import load_study

    if args.study is None:
        args.study = _latest_study(args.storage)
    return load_study(args.study, args.storage)


def _latest_study(storage: Any) -> str:
    import optuna

    from nas.engine.storage import describe_storage, mask_url, open_storage

    url = describe_storage(storage)
    summaries = optuna.get_all_study_summaries(open_storage(url, create=False), include_best_trial=False)
    if not summaries:
        raise ValueError(f"`--study`: there is no study in {mask_url(url)}; start one with `nas search CONFIG`")
    latest = max(summaries, key=lambda s: s._study_id)  # the one created last
    if len(summaries) > 1:
        print(f"nas: study {latest.study_name!r}, the latest of {len(summaries)} in {mask_url(url)} (`nas status "
              f"--all` lists them; --study NAME picks one)", file=sys.stderr)
    return latest.study_name


def _json_arg(name: str, text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"`--{name}` must be JSON, e.g. '{{\"cpu\": 1, \"gpu\": 0.5}}', "
                         f"but got {text!r} ({exc.msg})") from None


def _resume_backend(study: Any, args: argparse.Namespace) -> Any:
    """The backend a `nas resume` asks for: the stored one, with the options given on the command line."""
    from nas.engine.where import Local, Ray, backend_of

    stored = study.backend
    kind = args.backend or stored.kind
    ray_given = {k: v for k, v in (("address", args.ray_address), ("resources", _json_arg("resources", args.resources)),
                                   ("max_concurrent", args.max_concurrent), ("scheduler", args.scheduler))
                 if v is not None}
    if kind != "ray" and ray_given:
        raise ValueError(f"`--{next(iter(ray_given)).replace('_', '-')}` is a Ray option, but the study resumes on the "
                         f"{kind} backend (add --backend ray)")
    if kind != "local" and args.n_workers is not None:
        raise ValueError(f"`--n-workers` is a local-backend option, but the study resumes on the {kind} backend")
    if kind == "local":
        base = stored if isinstance(stored, Local) else Local()
        return base.replace(n_workers=args.n_workers) if args.n_workers is not None else base
    if kind == "ray":
        ray_base = stored if isinstance(stored, Ray) else Ray()
        if ray_base.address is not None and "address" not in ray_given:
            raise ValueError(f"study {study.name!r} ran on the Ray cluster at {ray_base.address!r}: give --ray-address "
                             f"to confirm it (an address read from the storage is not followed), or --backend local")
        return ray_base.replace(**ray_given)
    return backend_of(kind) if kind != stored.kind else stored


def _print_front(study: Any, objectives: list[str] | None, limit: int | None) -> None:
    print(f"\nranked architectures of study {study.name!r} (rank 0 = Pareto front on "
          f"{', '.join(study.front_objectives(objectives))}; * = knee):")
    print(study.table(objectives, limit=limit))
    ref = study.reference_point(objectives)
    print(f"hypervolume {study.hypervolume(objectives=objectives):.4f} (costs divided by the reference point "
          f"{ {k: v for k, v in ref.items()} })")


def _export(study: Any, which: Any, out: str, retrain: int, limits: dict[str, float],
            formats: Any = ("keras",)) -> None:
    from nas.export import FORMATS

    folders = study.export(which, out, retrain_epochs=retrain, formats=formats, verbose=True, **limits)
    for f in folders:
        files = json.loads((f / "metrics.json").read_text())["files"]
        extra = "".join(f", {files[kind]}" for kind in FORMATS if kind != "keras" and kind in files)
        print(f"exported {f / 'model.keras'} (+ spec.json, metrics.json{extra})")


def cmd_search(args: argparse.Namespace) -> int:
    from nas.config import load_config, resolve_base
    from nas.engine.where import Local
    from nas.study import create_study

    loaded = load_config(args.config)
    config = resolve_base(loaded.config)
    create_only = args.create_only or loaded.create_only or args.n_workers == 0
    run, strategy = config.run, config.strategy
    if args.n_workers not in (None, 0):
        if not isinstance(run.backend, Local):
            raise ValueError(f"`--n-workers` is a local-backend option, but the config runs on {run.backend.kind!r}")
        run = run.replace(backend=run.backend.replace(n_workers=args.n_workers))
    if args.storage is not None:
        run = run.replace(storage=args.storage)
    if args.study:
        run = run.replace(study=args.study)
    if args.n_trials is not None:
        strategy = strategy.replace(n_trials=args.n_trials)
    study = create_study(config.space, config.data, goal=config.goal, strategy=strategy, run=run,
                         evaluator=config.evaluator, description=config.description)
    if create_only:
        print(f"nas: created study {study.name!r} and ran nothing; start workers with `nas worker --study "
              f"{study.name} --storage URL` (or NAS_STORAGE=URL nas worker --study {study.name})")
        return 0
    study.resume(backend=run.backend)
    _print_front(study, None, args.limit)
    export = loaded.export
    if export and not args.no_export:
        limits = {k: float(v) for k, v in export.items() if k.startswith("max_")}
        _export(study, export["which"], export.get("path", "exports"), int(export.get("retrain_epochs", 0)), limits,
                export["formats"])
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    study = _study(args)
    study.resume(n_trials=args.n_trials, backend=_resume_backend(study, args), artifacts=args.artifacts,
                 max_failures=args.max_failures)
    _print_front(study, None, args.limit)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import optuna

    from nas.engine.storage import describe_storage, mask_url, open_storage

    if args.all:
        url = describe_storage(args.storage)
        storage = open_storage(url, create=False)
        summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
        if not summaries:
            print(f"no studies in {mask_url(url)}")
        for s in summaries:
            print(f"{s.study_name:<40} {_finished(optuna.load_study(study_name=s.study_name, storage=storage))}  "
                  f"started {s.datetime_start:%Y-%m-%d %H:%M:%S}")
        return 0
    study = _study(args)
    c = study.counts()
    cfg = study.config
    print(f"study {study.name!r} in {mask_url(study.storage_url)}")
    budget = "evaluator, nothing trained" if cfg.evaluator is not None else f"budget {cfg.budget.epochs} epochs"
    if cfg.evaluator is None and cfg.budget.inherit_epochs:
        budget += f" (children from their parent's weights: {cfg.budget.inherit_epochs} epochs)"
    print(f"space {cfg.space['name']}, objectives {', '.join(cfg.objectives)}, sampler "
          f"{cfg.strategy.sampler.name if cfg.strategy.sampler else '-'}, backend {cfg.run.backend.kind}, {budget}, "
          f"constraints {cfg.constraints or '-'}")
    print(f"progress {c['done']}/{study.n_trials} finished: {c['complete']} complete, {c['pruned']} pruned; "
          f"{c['running']} running, {c['waiting']} queued, {c['infeasible']} over budget, {c['failed']} failed")
    spent = study.epochs()
    if cfg.evaluator is None:
        saved = f", {spent['saved']} saved by early stopping ({100 * spent['saved'] / spent['full']:.0f}%)" \
            if spent["saved"] and spent["full"] else ""
        stops = ", ".join(f"{n} after {e}" for e, n in spent["stopped_at"].items())
        print(f"epochs {spent['trained']} trained{saved}" + (f"; stopped trials by epochs trained: {stops}"
                                                               if stops else ""))
    placed = study.devices()
    if placed:
        print("trained on " + "; ".join(f"{where}: {n} trial{'s' if n > 1 else ''}" for where, n in placed.items()))
    best = study.best()
    if best is not None:
        print(f"best so far: trial {best.number} accuracy {best.metrics['accuracy']:.4f} MACs "
              f"{best.metrics['macs']:,} params {best.metrics['params']:,}  {best.spec_str}")
    failed = [r for r in study.trials if r.status == "failed"]
    for r in failed[-5:]:
        print(f"failed trial {r.number}: {r.error}")
    return 0


def _finished(study: Any) -> str:
    """``3/12 finished, 5 trials in all (1 running, 1 over budget, 0 failed)``: what `nas status` counts (trained
    or stopped trials, toward the target) and every trial of an Optuna study, ``nas`` or not."""
    from nas.engine.claims import counts
    from nas.engine.schema import is_nas_study, read_config

    trials = study.get_trials(deepcopy=False)
    c, n = counts(trials), len(trials)
    rest = f"{n} trials in all ({c['running']} running, {c['infeasible']} over budget, {c['failed']} failed)"
    if not is_nas_study(study):
        return f"{n} trials (not a nas study)"
    try:
        target = read_config(study).n_trials
    except ValueError as exc:
        return f"{c['done']} finished, {rest}; its nas record cannot be read: {exc}"
    return f"{c['done']:>3}/{target} finished, {rest}"


def cmd_front(args: argparse.Namespace) -> int:
    if args.plot_cdn and not (args.plot or "").endswith(".html"):
        raise ValueError(f"`--plot-cdn` makes an .html plot load plotly.js from its CDN, but got --plot={args.plot}")
    if args.plot:
        from nas.plot import check_plot_path

        check_plot_path(args.plot)  # before the table is printed
    study = _study(args)
    objectives = args.objectives.split(",") if args.objectives else None
    _print_front(study, objectives, args.limit)
    if args.plot:
        from nas.plot import plot_front

        path = plot_front(study, args.plot, objectives=objectives, cdn=args.plot_cdn)
        note = ""
        if path.suffix == ".html":
            size = path.stat().st_size
            note = (f" ({size / 1e3:.0f} kB: it loads plotly.js from cdn.plot.ly when opened)" if args.plot_cdn else
                    f" ({size / 1e6:.1f} MB: plotly.js is inside, so it opens offline; --plot-cdn writes a page of "
                    f"a few kB that loads it from cdn.plot.ly)")
        print(f"wrote {path}{note}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    study = _study(args)
    limits = {k: v for k, v in (("max_macs", args.max_macs), ("max_params", args.max_params)) if v is not None}
    _export(study, args.which, args.out or "exports", args.retrain_epochs, limits, args.format)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from nas.engine.storage import describe_storage
    from nas.engine.worker import STORAGE_ENV, worker_main

    os.environ[STORAGE_ENV] = describe_storage(args.storage)  # the URL stays off every command line
    argv = ["--study", args.study]
    if args.max_trials != 0:
        argv += ["--max-trials", str(args.max_trials)]
    if args.seed is not None:
        argv += ["--seed", str(args.seed)]
    if args.artifacts is not None:
        argv += ["--artifacts", args.artifacts]
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


def cmd_cleanup(args: argparse.Namespace) -> int:
    from nas.backends.ray_folders import remove_dead

    removed, live = remove_dead()
    for r in removed:
        print(r.line())
    if not removed:
        print("nas: nothing to remove: no local Ray instance of a dead driver")
    if live:
        print(f"nas: left alone: {live} local Ray instance(s) in use")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from nas import __version__

    raw = argparse.RawDescriptionHelpFormatter

    def command(name: str, text: str, *examples: str, note: str = "") -> argparse.ArgumentParser:
        """A subcommand whose ``--help`` ends with its examples (and ``note``)."""
        epilog = "examples:\n" + "".join(f"  {e}\n" for e in examples) + (f"\n{note}" if note else "")
        return sub.add_parser(name, help=text, formatter_class=raw, epilog=epilog)
    parser = argparse.ArgumentParser(
        prog="nas", description="Neural architecture search in Keras 3.", formatter_class=raw,
        epilog="examples:\n  nas search experiments/digits_quick.yaml\n  nas status\n"
               "  nas front --plot front.html\n  nas export --which front --format keras,tflite,onnx\n"
               "  nas worker --study NAME --storage postgresql://host/db\n\n"
               "`nas COMMAND --help` shows a command's options. Storage: --storage or the NAS_STORAGE "
               "environment variable, else runs/nas.db; commands that only read never create one.")
    parser.add_argument("--version", action="version", version=f"nas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    storage_help = "storage URL or file (default: the NAS_STORAGE environment variable, else runs/nas.db)"
    artifacts_help = ("the study's artefact folder, to confirm it when it is not the default for the storage "
                      "(or set NAS_ARTIFACTS)")

    def study_args(p: argparse.ArgumentParser, required: bool = False) -> None:
        p.add_argument("--study", required=required,
                       help="study name" + ("" if required else " (default: the latest study in the storage)"))
        p.add_argument("--storage", default=os.environ.get("NAS_STORAGE"), help=storage_help)

    p = command("search", "run the search described by a YAML config",
                "nas search experiments/digits_quick.yaml",
                "nas search experiments/fashion_mnist_mbconv.yaml --n-trials 50 --n-workers 2",
                "nas search cfg.yaml --storage postgresql://host/db --create-only   # then `nas worker`s",
                note="The config keys are described in docs/guides/configs.md (`make docs` builds the site); "
                     "a study name already in the storage is an error: continue it with `nas resume`.")
    p.add_argument("config", help="YAML file (see experiments/)")
    p.add_argument("--study", help="override the config's study name")
    p.add_argument("--storage", default=os.environ.get("NAS_STORAGE"), help=storage_help)
    p.add_argument("--n-trials", type=int, help="override the config's n_trials (finished trials to reach)")
    p.add_argument("--n-workers", type=int, help="local worker processes (0: only create the study, for `nas worker`s)")
    p.add_argument("--create-only", action="store_true", help="create the study and run nothing (for `nas worker`s)")
    p.add_argument("--limit", type=int, default=20, help="rows of the ranked table")
    p.add_argument("--no-export", action="store_true", help="skip the config's export step")
    p.set_defaults(func=cmd_search)

    p = command("resume", "continue a stored search",
                "nas resume                          # the latest study, to its target",
                "nas resume --study digits-mbconv --n-trials 50",
                "nas resume --backend ray --resources '{\"cpu\": 1}' --max-concurrent 2")
    study_args(p)
    p.add_argument("--n-trials", type=int, help="new target number of finished trials (at least those finished)")
    p.add_argument("--n-workers", type=int, help="local worker processes (default: the stored backend's)")
    p.add_argument("--max-failures", type=int,
                   help="new limit of failed trials (above those failed): continues a search stopped by the limit")
    p.add_argument("--limit", type=int, default=20, help="rows of the ranked table (default 20)")
    p.add_argument("--backend", choices=("local", "ray", "keras_tuner"),
                   help="default: the backend the study was made with")
    p.add_argument("--ray-address", help="join this Ray cluster (default: start a local Ray instance)")
    p.add_argument("--resources", help='Ray resources per trial as JSON, e.g. \'{"cpu": 1, "gpu": 0.5}\'')
    p.add_argument("--max-concurrent", type=int, help="Ray: trials at once")
    p.add_argument("--scheduler", choices=("asha", "hyperband"), help="Ray: single-objective accuracy searches")
    p.add_argument("--artifacts", help=artifacts_help)
    p.set_defaults(func=cmd_resume)

    p = command("status", "progress, counts by state, epochs, best so far, last failures",
                "nas status", "nas status --all", "nas status --study NAME --storage runs/other.db")
    study_args(p)
    p.add_argument("--all", action="store_true", help="list the studies in the storage instead")
    p.set_defaults(func=cmd_status)

    p = command("front", "the ranked table and Pareto front",
                "nas front", "nas front --objectives accuracy,params --limit 10",
                "nas front --plot front.html     # interactive (Plotly); .png and .svg too")
    study_args(p)
    p.add_argument("--objectives", help="rank on these instead of the study's, comma-separated, e.g. accuracy,params")
    p.add_argument("--limit", type=int, help="rows to print (default: all)")
    p.add_argument("--plot", help="write accuracy vs MACs to this .png, .svg or .html file")
    p.add_argument("--plot-cdn", action="store_true",
                   help="an .html plot of a few kB that loads plotly.js from cdn.plot.ly (default: inside, 4.8 MB)")
    p.set_defaults(func=cmd_front)

    p = command("export", "write .keras models, spec.json and metrics.json",
                "nas export                                   # the best, to exports/",
                "nas export --which front --out exports/front",
                "nas export --which knee --format keras,tflite,onnx",
                "nas export --max-macs 500000                 # the best within 500k MACs",
                "nas export --which 12 --retrain-epochs 10    # trial 12, retrained on train+val")
    study_args(p)
    p.add_argument("--which", default="best", help="best | knee | front | a trial number")
    p.add_argument("--out", help="folder (default: exports); models go to OUT/STUDY/trial-N-KEY/")
    p.add_argument("--format", default="keras",
                   help="comma-separated: keras (always), saved_model, tflite, onnx; e.g. --format keras,tflite,onnx")
    p.add_argument("--retrain-epochs", type=int, default=0,
                   help="retrain each model from scratch on train + validation for this many epochs first")
    p.add_argument("--max-macs", type=float, help="only trials within this many MACs")
    p.add_argument("--max-params", type=float, help="only trials within this many params")
    p.set_defaults(func=cmd_export)

    p = command("worker", "join a study as a worker (from any machine that reaches the storage)",
                "NAS_STORAGE=postgresql://nas@db/nas nas worker --study fashion-mbconv",
                note="Put a database password in NAS_STORAGE, not on the command line.")
    study_args(p, required=True)
    p.add_argument("--max-trials", type=int, default=0, help="exit after this many trials (0: until the target)")
    p.add_argument("--seed", type=int, help="this worker's sampler seed (default: derived from the study's)")
    p.add_argument("--artifacts", help=artifacts_help)
    p.set_defaults(func=cmd_worker)

    p = command("summary", "per-layer MACs and params of a baseline or a spec JSON file",
                "nas summary resnet50", "nas summary mobilenet_v2 --input-shape 96x96x3 --classes 10",
                "nas summary exports/x/trial-3-ab12/spec.json --json")
    p.add_argument("spec", help="a baseline name (see `nas baselines`) or a spec.json file")
    p.add_argument("--input-shape", help="HxWxC, e.g. 32x32x3")
    p.add_argument("--classes", type=int, help="number of classes of the baseline's head")
    p.add_argument("--all-layers", action="store_true", help="every layer, not only those with MACs or params")
    p.add_argument("--json", action="store_true", help="print totals as JSON")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("baselines", help="list the classic networks and their cost")
    p.set_defaults(func=cmd_baselines)

    p = command("cleanup", "stop the local Ray instances of dead drivers and delete their folders", "nas cleanup",
                note="A driver killed with SIGKILL leaves its Ray processes running for a minute or more and its "
                     "folder /tmp/nasray-* (with Ray's token) behind. The Ray backend removes them when it next "
                     "starts a local instance; this command does it now. Only this user's instances whose driver "
                     "process is gone are touched.")
    p.set_defaults(func=cmd_cleanup)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:
        print(f"nas: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        from nas.engine.claims import SearchStopped  # here: `nas summary` and the like do not import the engine

        if not isinstance(exc, SearchStopped):
            raise
        print(f"nas: stopped: {exc}", file=sys.stderr)  # not a bug: the reason and how to go on, no traceback
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `nas baselines | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
