"""The Ray Tune backend: Ray schedules the training trials, Optuna (on the study storage) samples them.

Each Tune trial claims one trial of the Optuna study (the same claim, lock and records as a local worker),
trains it in its own Ray worker process with the requested resources, and reports per-epoch validation
accuracy to Tune. Because the records are the study's, a Ray-run study is an ordinary ``nas`` study: status,
front, export and resume work on it, and it can switch between the local and Ray backends.

Ray's ``OptunaSearch`` is not used: it keeps its own in-memory study and, with several metrics, reports a trial
stopped by a scheduler as COMPLETE with its low-fidelity accuracy. Here, when a Tune scheduler (ASHA,
HyperBand) stops a trial, the driver marks the Optuna trial PRUNED at the moment of the decision (Ray tears
the worker down within ~0.1 s, too fast for the worker to record anything), and the final epoch is never
reported to Tune, so a trial that trained to the end always records its full result.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optuna.trial import TrialState

from nas._storage import claim_lock, lock_path, read_config

if TYPE_CHECKING:
    from nas.study import Study

SCHEDULERS = ("asha", "hyperband")


def ray_environment() -> None:
    """Offline, quiet, loopback-only settings for a local Ray instance (see FIELD-NOTES: Ray 2.60 enables token
    auth by default; RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 binds a local instance to 127.0.0.1)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # a Tune trial may end without an epoch report (target already met, reused or over-budget candidate, one
    # epoch): Tune must not treat the missing metric as an error
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"


def check_ray_options(resources: Any, scheduler: Any, objectives: tuple[str, ...], max_concurrent: Any) -> dict[str, Any]:
    if resources is None:
        resources = {"cpu": 1}
    if not isinstance(resources, dict) or not resources:
        raise ValueError(f"`resources_per_trial` must be a dict like {{'cpu': 1, 'gpu': 0.5}}, but got {resources!r}")
    for k, v in resources.items():
        if k not in ("cpu", "gpu", "memory") and not isinstance(k, str):
            raise ValueError(f"`resources_per_trial` keys must be 'cpu', 'gpu', 'memory' or custom resource names, "
                             f"but got {k!r}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ValueError(f"`resources_per_trial[{k!r}]` must be a number >= 0, but got {v!r}")
    if scheduler is not None:
        if scheduler not in SCHEDULERS:
            raise ValueError(f"`scheduler` must be None, 'asha' or 'hyperband', but got scheduler={scheduler!r}")
        if objectives != ("accuracy",):
            raise ValueError(f"`scheduler` ({scheduler}) stops trials on one metric: it needs objectives=('accuracy',),"
                             f" but got objectives={list(objectives)!r}")
    if max_concurrent is not None and (isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int)
                                       or max_concurrent < 1):
        raise ValueError(f"`max_concurrent` must be a positive integer or None, but got max_concurrent={max_concurrent!r}")
    return {"resources": dict(resources), "scheduler": scheduler, "max_concurrent": max_concurrent}


def ray_trial(config: dict[str, Any]) -> None:
    """The Tune function: claim one Optuna trial and run it, reporting per-epoch accuracy to Tune."""
    import optuna
    from ray import tune

    from nas._quiet import import_keras
    from nas._storage import open_storage
    from nas._worker import Runner, claim, make_pruner, make_sampler

    storage_url, study_name = config["storage"], config["study"]
    storage = open_storage(storage_url)
    cfg = read_config(optuna.load_study(study_name=study_name, storage=storage))
    study = optuna.load_study(study_name=study_name, storage=storage,
                              sampler=make_sampler(cfg, random.SystemRandom().randrange(2**31)),
                              pruner=make_pruner(cfg))
    if not cfg.get("evaluator"):
        import_keras()
    runner = Runner(study, cfg)
    last = runner.budget.epochs - 1
    while True:
        trial = claim(study, cfg, lock_path(storage_url))
        if trial is None:
            return  # the target was reached by other trials
        trial.set_user_attr("ray", {"trial_id": tune.get_context().get_trial_id()})

        def hook(epoch: int, accuracy: float, trial: Any = trial) -> None:
            if epoch < last:  # the final epoch is never reported: the trial then always records its result
                tune.report({"accuracy": accuracy, "epoch": epoch + 1, "nas_trial": trial.number,
                             "nas_trial_id": trial._trial_id})

        runner.epoch_hook = hook
        runner.run(trial)
        status = study._storage.get_trial(trial._trial_id).user_attrs.get("status")
        if status != "infeasible":  # over-budget candidates cost nothing: claim the next one in this Tune trial
            return


def _marking_scheduler(kind: str, epochs: int, storage_url: str) -> Any:
    """An ASHA / HyperBand scheduler that marks the Optuna trial PRUNED when it stops a Tune trial."""
    from ray.tune.schedulers import ASHAScheduler, HyperBandScheduler, TrialScheduler

    from nas._storage import open_storage

    base = ASHAScheduler if kind == "asha" else HyperBandScheduler
    storage = open_storage(storage_url)

    class Marking(base):  # type: ignore[misc, valid-type]
        pruned: list[int] = []

        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
            if "nas_trial_id" not in result:  # no epoch report in this result: nothing to decide on
                return TrialScheduler.CONTINUE
            decision = super().on_trial_result(tune_controller, trial, result)
            if decision == TrialScheduler.STOP and "nas_trial_id" in result and result["epoch"] < epochs:
                try:
                    storage.set_trial_user_attr(result["nas_trial_id"], "status", "pruned")
                    storage.set_trial_user_attr(result["nas_trial_id"], "pruned_by", f"ray {kind} after epoch "
                                                f"{result['epoch']}")
                    if storage.set_trial_state_values(result["nas_trial_id"], state=TrialState.PRUNED):
                        self.pruned.append(result["nas_trial"])
                except Exception:
                    pass  # finished meanwhile
            return decision

    if kind == "asha":
        return Marking(metric="accuracy", mode="max", time_attr="epoch", max_t=epochs, grace_period=1,
                       reduction_factor=3)
    return Marking(metric="accuracy", mode="max", time_attr="epoch", max_t=epochs, reduction_factor=3)


def run_ray(study: Study, *, options: dict[str, Any], ray_address: str | None, verbose: bool) -> None:
    import ray
    from ray import tune

    from nas._recovery import fail_dead_trials
    from nas._supervise import FINISHED, report_finished
    from nas._worker import counts, failure_cap

    ray_environment()
    ost = study.optuna_study
    config = read_config(ost)
    target = int(config["n_trials"])
    started_here = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if ray_address:
            kwargs["address"] = ray_address
        else:
            # a short private folder: Ray's socket paths must stay under 107 bytes
            kwargs["_temp_dir"] = tempfile.mkdtemp(prefix="nasray-", dir="/tmp")
        ray.init(**kwargs)
        started_here = True
    try:
        with claim_lock(lock_path(study.storage_url)):
            fail_dead_trials(ost)
        resources = {k: v for k, v in options["resources"].items()}
        trainable = tune.with_resources(ray_trial, resources)
        reported = {t.number for t in ost.get_trials(deepcopy=False, states=FINISHED)}
        rounds = 0
        while True:
            c = counts(ost.get_trials(deepcopy=False))
            if c["done"] >= target:
                break
            if c["failed"] >= failure_cap(config):
                raise RuntimeError(f"{c['failed']} trials failed (limit max_failures={failure_cap(config)})")
            rounds += 1
            if rounds > 10:
                raise RuntimeError("Ray rounds made no progress: see the trials' errors with `nas status`")
            need = target - c["done"]
            scheduler = (_marking_scheduler(options["scheduler"], int(config["budget"]["epochs"]), study.storage_url)
                         if options.get("scheduler") else None)
            max_concurrent = options.get("max_concurrent") or (2 if not ray_address else None)
            tuner = tune.Tuner(
                trainable,
                param_space={"study": study.name, "storage": study.storage_url},
                tune_config=tune.TuneConfig(num_samples=need, max_concurrent_trials=max_concurrent,
                                            scheduler=scheduler, reuse_actors=False),
                run_config=tune.RunConfig(name=f"{study.name}-{int(time.time())}",
                                          storage_path=str(Path(config["artifacts"]).resolve() / "ray"),
                                          failure_config=tune.FailureConfig(max_failures=int(config.get("max_retries", 2))),
                                          verbose=0),
            )
            tuner.fit()
            with claim_lock(lock_path(study.storage_url)):
                fail_dead_trials(ost)
            report_finished(ost.get_trials(deepcopy=False), reported, target, verbose)
    finally:
        if started_here:
            ray.shutdown()
