"""The Ray backend: Ray places the workers, Optuna (on the study storage) samples the trials.

By default the driver keeps ``max_concurrent`` long-lived Ray actors busy, each running the local backend's
worker loop (the same claim, lock, pipeline and records) with the requested resources, and each recycled after
``max_trials_per_worker`` trials as local workers are (TensorFlow keeps memory per trained model until its
process exits). An actor imports TensorFlow and opens the study once for all its trials, instead of once per
trial. Workers are numbered and seeded under the study's lock, so a seeded search on Ray is reproducible.

With ``scheduler="asha"`` / ``"hyperband"`` (Ray Tune's single-metric early stopping), each Tune trial claims one
trial of the Optuna study in its own Ray worker process and reports per-epoch validation accuracy to Tune.
Because the records are the study's, a Ray-run study is an ordinary ``nas`` study: status, front, export and
resume work on it, and it can switch between the local and Ray backends.

Ray's ``OptunaSearch`` is not used: it keeps its own in-memory study and, with several metrics, reports a trial
stopped by a scheduler as COMPLETE with its low-fidelity accuracy. Here, when a Tune scheduler (ASHA,
HyperBand) stops a trial, the driver marks the Optuna trial PRUNED at the moment of the decision (Ray tears
the worker down within ~0.1 s, too fast for the worker to record anything), and the final epoch is never
reported to Tune, so a trial that trained to the end always records its full result.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from nas.backends.ray_folders import RAY_DIR, TOKEN, make_private_folder, remove_dead
from nas.engine import records
from nas.engine.claims import SearchStopped, claim, counts, fail_dead_trials, give_back, stop_reason, stopped
from nas.engine.progress import Live, starting
from nas.engine.schema import StudyConfig
from nas.engine.storage import claim_lock, lock_path
from nas.engine.where import Ray, ray_resources_text

__all__ = ["ray_environment", "run_ray", "start_local_ray", "stop_local_ray"]

WAIT_NOTICE_S = 30.0  # a pool worker that Ray has not started for this long: the driver says it is waiting


def ray_environment() -> None:
    """Offline, quiet settings for Ray (usage statistics off, no automatic loggers, trial folders not chdir'ed),
    and for a local instance the node address 127.0.0.1 (read once, when ``ray`` is first imported)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # a Tune trial may end without an epoch report (target already met, reused or over-budget candidate, one
    # epoch): Tune must not treat the missing metric as an error
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"


_AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN", "RAY_ADDRESS")


def start_local_ray(folder: str) -> dict[str, str | None]:
    """Start a private Ray instance on this machine whose every TCP listener (GCS, raylet, agents, workers, the
    driver) is on 127.0.0.1, with Ray's token authentication on. ``folder`` is private (mode 0700, see
    :mod:`nas.backends.ray_folders`): Ray's temporary folder is ``r`` inside it and the token ``auth_token``
    (0600) beside that, never in ``~/.ray``. Returns the environment variables it replaced, for
    :func:`stop_local_ray`.

    Ray binds its servers to the node address; it is 127.0.0.1 only if ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
    was set when ``ray`` was first imported (else Ray rewrites a loopback node address to the machine's), so the
    module constant is corrected if ``ray`` was imported earlier."""
    saved = {k: os.environ.get(k) for k in _AUTH_VARS}
    try:
        _start(folder)
    except BaseException:  # leave this process as it was: its environment, no Ray, no folder
        stop_local_ray(saved, folder)
        raise
    return saved


def _start(folder: str) -> None:
    import ray
    import ray._private.ray_constants as ray_constants
    from ray._private.authentication.authentication_token_generator import generate_new_authentication_token
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]  # _raylet.pyi is empty

    os.makedirs(folder, mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)  # Ray makes its own folder (RAY_DIR) 0777: this one it never changes
    token_path = os.path.join(folder, TOKEN)
    if not os.path.exists(token_path):
        with os.fdopen(os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(generate_new_authentication_token())
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": token_path})
    os.environ.pop("RAY_AUTH_TOKEN", None)  # a token in the environment would win over the file
    os.environ.pop("RAY_ADDRESS", None)  # never attach to another instance by accident
    Config.initialize("")  # the driver read its C++ config at import: read it again with token auth
    AuthenticationTokenLoader.instance().reset_cache()
    ray_constants.ENABLE_RAY_CLUSTER = False
    context = ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False,
                       logging_level=logging.WARNING, _temp_dir=os.path.join(folder, RAY_DIR))
    # ray.init is annotated as returning BaseContext; a local start returns a RayContext, which has address_info
    node_ip = context.address_info["node_ip_address"]  # type: ignore[attr-defined]
    if node_ip != "127.0.0.1":
        raise RuntimeError(f"Ray chose the node address {node_ip!r}, not 127.0.0.1: "
                           f"its servers would listen on every interface, so nas does not start it")


def stop_local_ray(saved: dict[str, str | None], folder: str) -> None:
    import shutil

    import ray
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]  # _raylet.pyi is empty

    ray.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()
    shutil.rmtree(folder, ignore_errors=True)


def pool_worker(study_name: str, url: str, max_trials: int, artifacts: str) -> int:
    """What one Ray actor of the pool runs: the local worker loop, numbered and seeded under the study's lock,
    writing to the artefact folder the driver confirmed."""
    import ray

    from nas._quiet import import_keras
    from nas.engine.worker import open_worker_study, work

    study, config = open_worker_study(study_name, url, None, numbered=True, artifacts=artifacts)
    if config.evaluator is None:
        import_keras()
    context = ray.get_runtime_context()
    return work(study, config, lock_path(url), max_trials,
                tags={"ray": {"actor_id": context.get_actor_id(), "node_id": context.get_node_id()}}, echo=True)


def _actor_options(resources: dict[str, float]) -> dict[str, Any]:
    """``Ray(resources=...)`` as actor options: cpu, gpu and memory by their own names, the rest as custom."""
    named = {"cpu": "num_cpus", "gpu": "num_gpus", "memory": "memory"}
    options: dict[str, Any] = {named[k]: v for k, v in resources.items() if k in named}
    custom = {k: v for k, v in resources.items() if k not in named}
    options.setdefault("num_cpus", 0)
    if custom:
        options["resources"] = custom
    return options


_RAY_FIELDS = ("class_name:", "actor_id:", "pid:", "namespace:", "ip:", "name:")  # who died, not why


def death_cause(exc: BaseException) -> str:
    """Why a Ray actor's task ended in error, on one line: Ray's explanation without the fields that only
    identify the actor (``The actor died because its node has died. Node Id: ...; the actor's node was
    terminated unexpectedly: ...``); for an error raised in the actor's code, the error's own line."""
    from ray.exceptions import RayTaskError

    text = str(getattr(exc, "error_msg", None) or exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(exc, RayTaskError):  # raised in the actor's loop: the error's line, after Ray's traceback
        return (lines[-1] if lines else type(exc).__name__)[:2000]
    cause = [line for line in lines[1:] if not line.startswith(_RAY_FIELDS)]
    return "; ".join(cause or lines[:1] or [type(exc).__name__])[:2000]


def _fail_trials_of(study: optuna.Study, url: str, actor_id: str, exc: BaseException, max_retries: int) -> None:
    """Fail (and re-enqueue) the RUNNING trials that the dead pool actor ``actor_id`` claimed (their ``ray`` tag,
    written at the claim), with Ray's account of its death. The driver learns of it from Ray within seconds on
    any node; without this, a trial of an actor on another machine waited for its heartbeats to go stale (30 s,
    and only on a storage with heartbeats), and its failure did not say that the node died."""
    with claim_lock(lock_path(url)):
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            tag = records.attr(t, "ray") or {}
            if tag.get("actor_id") == actor_id:
                give_back(study, t._trial_id, f"its Ray worker (actor {actor_id}, node {tag.get('node_id')}) died "
                                              f"while running the trial: {death_cause(exc)}", max_retries)


def _run_pool(study: optuna.Study, url: str, config: StudyConfig, backend: Ray, live: Live) -> None:
    """Keep ``max_concurrent`` pool actors busy until the target is met; an actor that finishes its
    ``max_trials_per_worker`` trials is replaced, one that dies (its process or its node) has its trial failed
    with Ray's reason and re-enqueued. On a cluster the default ``max_concurrent`` is what the live nodes hold
    (:meth:`Ray.capacity`), counted again when an actor dies: a dead node's worker is not replaced by one that
    no node could place."""
    import ray

    @ray.remote(max_restarts=0)
    class Worker:
        def running(self) -> bool:
            """Answers as soon as the actor runs: placed on a node, its process started."""
            return True

        def run(self, study_name: str, url: str, max_trials: int, artifacts: str) -> int:
            return pool_worker(study_name, url, max_trials, artifacts)

    target = config.n_trials

    def concurrency_now() -> int:
        if backend.max_concurrent is not None:
            return backend.max_concurrent
        return 2 if not backend.address else max(1, backend.capacity(ray.nodes()))

    concurrency = concurrency_now()
    options = _actor_options(dict(backend.resources))
    running: dict[Any, Any] = {}
    if live.verbose:
        n, loads = starting(concurrency, counts(study.get_trials(deepcopy=False))["done"], target,
                            config.evaluator is not None)
        print(f"nas: starting {n} Ray worker{'s' if n > 1 else ''} with resources {dict(backend.resources)} "
              f"({loads}); their output goes to Ray's logs", flush=True)
    placing: dict[Any, float] = {}  # an actor's `running` call -> when the actor was asked for, until it answers
    crashes = 0
    told = 0.0
    try:
        while True:
            with claim_lock(lock_path(url)):
                fail_dead_trials(study)
            trials = study.get_trials(deepcopy=False)
            c = counts(trials)
            if live.update(trials):
                crashes = 0
            reason = stop_reason(c, config)
            if reason is not None:
                raise stopped(reason, c, config, study.study_name)
            if c["done"] >= target and not running:
                return
            while len(running) < concurrency and len(running) < target - c["done"]:
                # ray.remote is annotated as returning the class itself, not Ray's ActorClass with .options
                actor = Worker.options(**options).remote()  # type: ignore[attr-defined]
                placing[actor.running.remote()] = time.time()  # called first: actor calls run in order
                running[actor.run.remote(study.study_name, url, backend.max_trials_per_worker,
                                         config.artifacts)] = actor
            if placing:
                for ref in ray.wait(list(placing), num_returns=len(placing), timeout=0)[0]:
                    del placing[ref]  # running (or dead: its `run` call says so)
            waited = time.time() - min(placing.values(), default=time.time())
            if waited > WAIT_NOTICE_S and time.time() - told > WAIT_NOTICE_S:
                # satisfiable (checked at the start) but not placed: a busy cluster, or a node that died; say so
                # instead of silence, whenever in the search it happens
                told = time.time()
                free = ray_resources_text(ray.available_resources()) or "nothing"
                print(f"nas: waiting for Ray to place {len(placing)} worker(s) with resources={backend.resources}: "
                      f"not running after {waited:.0f} s; free in the cluster now: {free}", flush=True)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            for ref in ready:
                actor = running.pop(ref)
                ray.kill(actor)  # done, or dead (an error in its loop: gone before its trials are failed)
                try:
                    code = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    _fail_trials_of(study, url, actor._actor_id.hex(), exc, config.strategy.max_retries)
                    concurrency = concurrency_now()
                    crashes += 1
                    if crashes >= 3:
                        raise SearchStopped(f"3 Ray workers in a row died before finishing a trial; the last: "
                                            f"{type(exc).__name__}: {str(exc)[:2000]}") from None
                else:
                    if code == 130:
                        raise KeyboardInterrupt
    finally:
        for actor in running.values():
            ray.kill(actor)
        if running:
            time.sleep(0.5)  # the actors' processes are gone before their trials are looked at
            with claim_lock(lock_path(url)):
                fail_dead_trials(study, reason_for={})


def ray_trial(tune_config: dict[str, Any], storage: str = "", artifacts: str = "") -> None:
    """The Tune function: claim one Optuna trial and run it, reporting per-epoch accuracy to Tune. The storage
    URL comes through Ray's object store (``tune.with_parameters``), never through Tune's stored trial config;
    so does the artefact folder the driver confirmed."""
    from ray import tune

    from nas._quiet import import_keras
    from nas.engine.runner import Runner
    from nas.engine.worker import open_worker_study

    url = storage
    lock = lock_path(url)
    study, config = open_worker_study(tune_config["study"], url, None, numbered=True, artifacts=artifacts)
    if config.evaluator is None:
        import_keras()
    runner = Runner(study, config)
    runner.echo = True  # to the Tune trial's log
    last = config.budget.epochs - 1
    while True:
        trial = claim(study, config, lock)
        if trial is None:
            return  # the target was reached by other trials
        records.write(trial, {"ray": {"trial_id": tune.get_context().get_trial_id()}})

        def hook(epoch: int, accuracy: float, trial: Any = trial) -> None:
            if epoch < last:  # the final epoch is never reported: the trial then always records its result
                tune.report({"accuracy": accuracy, "epoch": epoch + 1, "nas_trial": trial.number,
                             "nas_trial_id": trial._trial_id})

        runner.epoch_hook = hook
        runner.run(trial)
        status = study._storage.get_trial(trial._trial_id).user_attrs.get("status")
        if status != "infeasible":  # over-budget candidates cost nothing: claim the next one in this Tune trial
            return


def _marking_scheduler(kind: str, epochs: int, url: str) -> Any:
    """An ASHA / HyperBand scheduler that marks the Optuna trial PRUNED when it stops a Tune trial."""
    from ray.tune.schedulers import ASHAScheduler, HyperBandScheduler, TrialScheduler

    from nas.engine.storage import open_storage

    base = ASHAScheduler if kind == "asha" else HyperBandScheduler
    storage = open_storage(url)

    class Marking(base):  # type: ignore[misc, valid-type]  # a base chosen at run time: mypy cannot check it
        pruned: list[int] = []

        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
            if "nas_trial_id" not in result:  # no epoch report in this result: nothing to decide on
                return TrialScheduler.CONTINUE
            decision = super().on_trial_result(tune_controller, trial, result)
            if decision == TrialScheduler.STOP and "nas_trial_id" in result and result["epoch"] < epochs:
                try:
                    records.set_attrs(storage, result["nas_trial_id"], {
                        "status": "pruned", "pruned_by": f"ray {kind} after epoch {result['epoch']}"})
                    if storage.set_trial_state_values(result["nas_trial_id"], state=TrialState.PRUNED):
                        self.pruned.append(result["nas_trial"])
                except Exception:
                    pass  # finished meanwhile
            return decision

    if kind == "asha":
        return Marking(metric="accuracy", mode="max", time_attr="epoch", max_t=epochs, grace_period=1,
                       reduction_factor=3)
    return Marking(metric="accuracy", mode="max", time_attr="epoch", max_t=epochs, reduction_factor=3)


def _following(study: optuna.Study, live: Live, every: float = 0.5) -> Any:
    """A Tune callback that prints the search's progress (:class:`nas.engine.progress.Live`) from the storage
    while Tune runs its trials, at most every ``every`` seconds of Tune's event loop."""
    from ray.tune import Callback

    class Following(Callback):
        last = 0.0

        def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
            if time.time() - self.last >= every:
                self.last = time.time()
                live.update(study.get_trials(deepcopy=False))
    return Following()


def _signal_handlers() -> dict[int, Any]:
    """This process's SIGINT and SIGTERM handlers (main thread only: elsewhere they cannot be set back)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}


def run_ray(study: optuna.Study, url: str, config: StudyConfig, *, verbose: bool) -> None:
    backend = config.run.backend
    assert isinstance(backend, Ray)
    ray_environment()  # before the first `import ray`
    import ray
    from ray import tune

    target = config.n_trials
    local: tuple[dict[str, str | None], str] | None = None
    joined = False
    handlers: dict[int, Any] = {}  # ray.init installs its own SIGTERM handler in the driver: set back after
    if not ray.is_initialized():
        handlers = _signal_handlers()
        if backend.address:  # the cluster's own authentication settings stay as the user set them
            ray.init(address=backend.address, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
            joined = True
        else:
            removed, _ = remove_dead()  # what drivers killed earlier left running
            for r in removed:
                print(r.line(), file=sys.stderr, flush=True)
            folder = str(make_private_folder())
            local = (start_local_ray(folder), folder)
    live = Live(study.get_trials(deepcopy=False), target, verbose)
    try:
        problem = backend.unsatisfiable(ray.nodes())
        if problem is not None:  # Ray would wait for it forever, in silence
            raise ValueError(problem)
        if verbose:
            c = counts(study.get_trials(deepcopy=False))
            where = f"the Ray cluster at {backend.address}" if backend.address else "a private local Ray instance"
            print(f"nas: {c['done']}/{target} trials finished; running on {where}", flush=True)
        if backend.scheduler is None:
            _run_pool(study, url, config, backend, live)
            if verbose:
                print(live.summary(study.get_trials(deepcopy=False)), flush=True)
            return
        with claim_lock(lock_path(url)):
            fail_dead_trials(study)
        trainable = tune.with_resources(tune.with_parameters(ray_trial, storage=url, artifacts=config.artifacts),
                                        dict(backend.resources))
        rounds = 0
        while True:
            c = counts(study.get_trials(deepcopy=False))
            if c["done"] >= target:
                break
            reason = stop_reason(c, config)
            if reason is not None:
                raise stopped(reason, c, config, study.study_name)
            rounds += 1
            if rounds > 10:
                raise RuntimeError("Ray rounds made no progress: see the trials' errors with `nas status`")
            scheduler = (_marking_scheduler(backend.scheduler, config.budget.epochs, url)
                         if backend.scheduler else None)
            max_concurrent = backend.max_concurrent or (2 if not backend.address else None)
            tuner = tune.Tuner(
                trainable,
                param_space={"study": study.study_name},
                tune_config=tune.TuneConfig(num_samples=target - c["done"], max_concurrent_trials=max_concurrent,
                                            scheduler=scheduler, reuse_actors=False),
                run_config=tune.RunConfig(name=f"{study.study_name}-{int(time.time())}",
                                          storage_path=str(Path(config.artifacts).resolve() / "ray"),
                                          failure_config=tune.FailureConfig(max_failures=config.strategy.max_retries),
                                          callbacks=[_following(study, live)], verbose=0),
            )
            tuner.fit()
            with claim_lock(lock_path(url)):
                fail_dead_trials(study)
            live.update(study.get_trials(deepcopy=False))
        if verbose:
            print(live.summary(study.get_trials(deepcopy=False)), flush=True)
    finally:
        if local is not None:
            stop_local_ray(*local)
        elif joined:
            ray.shutdown()
        for signum, handler in handlers.items():
            if handler is not None:
                signal.signal(signum, handler)
