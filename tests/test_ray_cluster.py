"""The Ray backend on a real Ray cluster of several nodes on this machine (tests/ray_cluster.py: a head and worker
nodes, each with its own raylet, on 127.0.0.1 with Ray's token authentication, each with one ``gpu_standin``
resource standing in for a GPU), joined with ``nas.Ray(address=...)``. Each node runs in a UTS namespace of its
own (hostname ``ray-node-INDEX``), so that for nas each node is a machine of its own, as on a real cluster: the
driver and the other nodes' workers cannot see its processes, only what Ray and the storage tell them.

* A worker node killed in the middle of a search: the search ends with the exact count, the trial lost with the
  node failed with Ray's reason and re-run once elsewhere, and every trial says on which node it ran.
* A request the cluster can hold but not now (an actor of the test holds the only ``gpu_standin``): the driver
  says it is waiting, with what is free, and goes on once the resource is freed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import optuna
import pytest
from ray_cluster import environment

import nas
from nas.engine.records import attrs_of

from net_helpers import is_loopback, listening_sockets, process_tree

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]  # with test_ray.py, on one xdist worker

GPU_WORKER = {"cpu": 1, "gpu_standin": 1}  # one worker per node: each node has one gpu_standin


def _lines(stream: IO[str]) -> queue.Queue[str | None]:
    """The lines of ``stream`` as they come (None at its end), read by a thread: a test waits for one with a
    deadline instead of blocking on ``readline``."""
    out: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in stream:
            out.put(line.rstrip("\n"))
        out.put(None)
    threading.Thread(target=read, daemon=True).start()
    return out


def _next(lines: queue.Queue[str | None], timeout: float, log: Path) -> str:
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no line in {timeout} s; {log}: {log.read_text()[-3000:]}") from None
    assert line is not None, f"the stream ended; {log}: {log.read_text()[-3000:]}"
    return line


@dataclasses.dataclass
class Node:
    """One running node of a test cluster: its keeper process (tests/ray_cluster.py), the keeper's replies and
    log, and its node id."""

    keeper: subprocess.Popen[str]
    replies: queue.Queue[str | None]
    log: Path
    node_id: str = ""

    def command(self, text: str, timeout: float = 60) -> str:
        assert self.keeper.stdin is not None
        self.keeper.stdin.write(text + "\n")
        self.keeper.stdin.flush()
        return _next(self.replies, timeout, self.log)


@dataclasses.dataclass
class Cluster:
    """A running test cluster: its nodes (the head first), its address and the environment a driver joins it
    with."""

    nodes: list[Node]
    address: str
    env: dict[str, str]


def _running(pids: set[int]) -> set[int]:
    """Those of ``pids`` that still run (zombies are not running)."""
    out = set()
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                out.add(pid)
        except (OSError, IndexError):
            continue
    return out


def _start_node(folder: str, index: int, resources: dict[str, float], address: str | None, env: dict[str, str],
                log: Path) -> Node:
    """Node ``index`` in a UTS namespace of its own, hostname ``ray-node-INDEX``: a machine of its own for nas."""
    with open(log, "w") as err:
        keeper = subprocess.Popen(["unshare", "--uts", "--fork", "sh", "-c",
                                   f'hostname ray-node-{index} && exec "$0" -m ray_cluster "$@"', sys.executable,
                                   folder, str(index), json.dumps(resources), *([address] if address else [])],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, env=env,
                                  start_new_session=True)
    assert keeper.stdout is not None
    return Node(keeper, _lines(keeper.stdout), log)


@contextlib.contextmanager
def ray_cluster(nodes: list[dict[str, float]], tmp_path: Path) -> Iterator[Cluster]:
    """A Ray cluster with these nodes (resources each, the head first) for the block; afterwards every node is
    stopped, and every process the cluster started is checked to be gone (then each node's process group is
    SIGKILLed anyway, and the cluster's folder deleted)."""
    if subprocess.run(["unshare", "--uts", "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("unshare --uts is not allowed here (needs root or user namespaces)")
    folder = tempfile.mkdtemp(prefix="nascl-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    with os.fdopen(os.open(os.path.join(folder, "auth_token"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(secrets.token_hex(32))
    env = {**os.environ, **environment(folder)}
    started: list[Node] = []
    tree: set[int] = set()
    try:
        address = None
        for index, resources in enumerate(nodes):  # one at a time: nodes name their files in a shared folder
            node = _start_node(folder, index, resources, address, env, tmp_path / f"node{index}.log")
            started.append(node)
            info = json.loads(_next(node.replies, 120, node.log))
            node.node_id, address = info["node_id"], info["address"]
        assert address is not None
        yield Cluster(started, address, env)
        tree = {pid for node in started for pid in process_tree(node.keeper.pid)}
        for node in reversed(started):  # the head last
            if node.keeper.poll() is None:
                assert node.command("quit") == "stopped"
                node.keeper.wait(timeout=60)
        assert _running(tree) == set()  # every process of the cluster (servers, agents, workers) is gone
    finally:
        for node in started:
            try:
                os.killpg(node.keeper.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            node.keeper.wait()
        for pid in _running(tree):  # only after a failure above: whatever left the process groups
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)


DRIVER = """\
import json, sys
import nas, nas.backends.ray, search_spaces, engine_helpers
args = json.loads(sys.argv[1])
nas.backends.ray.WAIT_NOTICE_S = args["notice_s"]
space = search_spaces.get("conv", input_shape=(8, 8, 1), widths=(4, 8, 16), stages=(1, 2))
nas.search(space, evaluator=getattr(engine_helpers, args["evaluator"]),
           strategy=nas.Strategy(n_trials=args["n_trials"], sampler="random", seed=3),
           run=nas.Run(storage=args["storage"], study="c",
                       backend=nas.Ray(address=args["address"], resources=args["resources"], max_trials_per_worker=0)),
           verbose=False)
"""


def _driver(cluster: Cluster, tmp_path: Path, **args: Any) -> tuple[subprocess.Popen[str], Path]:
    """A process that joins the cluster and runs a search on it (its standard output is piped)."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    log = tmp_path / "driver.log"
    args = {"address": cluster.address, "storage": str(tmp_path / "c.db"), "notice_s": 30.0, **args}
    with open(log, "w") as err:
        return subprocess.Popen([sys.executable, str(script), json.dumps(args)], stdout=subprocess.PIPE, stderr=err,
                                text=True, env=cluster.env, start_new_session=True), log


def _stop(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _trials(tmp_path: Path) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="c", storage=f"sqlite:///{tmp_path}/c.db").trials
    except (KeyError, ValueError):  # not created yet
        return []


def test_a_worker_node_killed_mid_search(tmp_path: Path) -> None:
    """Three nodes, one worker each (one gpu_standin per node). Once nodes 0 and 1 have finished trials and node
    2 runs one (the evaluator never ends a trial on node 2), node 2 is killed (every process of it SIGKILLed, as
    a machine that dies). The driver learns from Ray that the actor died with its node: it fails that trial at
    once with Ray's reason (without the fix it could only wait 30 s for the trial's heartbeats to go stale) and
    does not replace the worker (no live node could hold one). The search ends with the exact count: 8 trials
    done, the lost one failed, re-run once on a live node as its retry; three actors, one per node."""
    with ray_cluster([{"CPU": 1, "gpu_standin": 1}] * 3, tmp_path) as cluster:
        n0, n1, n2 = (node.node_id for node in cluster.nodes)
        # every server of the cluster listens on loopback only
        sockets = [s for node in cluster.nodes for s in listening_sockets(node.keeper.pid)]
        assert {"gcs_server", "raylet"} <= {name for _, name, _ in sockets}
        assert [address for _, _, address in sockets if not is_loopback(address)] == []
        driver, log = _driver(cluster, tmp_path, evaluator="stalls_on_node_2", n_trials=8, resources=GPU_WORKER)
        try:
            deadline = datetime.datetime.now() + datetime.timedelta(seconds=150)
            while True:
                trials = _trials(tmp_path)
                states = {n: [t.state for t in trials if (attrs_of(t).get("ray") or {}).get("node_id") == n]
                          for n in (n0, n1, n2)}
                victims = [t for t in trials if (attrs_of(t).get("ray") or {}).get("node_id") == n2]
                if victims and optuna.trial.TrialState.COMPLETE in states[n0] \
                        and optuna.trial.TrialState.COMPLETE in states[n1]:
                    break
                assert driver.poll() is None and datetime.datetime.now() < deadline, log.read_text()[-3000:]
                threading.Event().wait(0.2)
            [victim] = victims
            assert cluster.nodes[2].command("remove") == "removed"
            assert driver.wait(timeout=120) == 0, log.read_text()[-3000:]
        finally:
            _stop(driver)
    study = nas.load_study("c", tmp_path / "c.db")
    assert study.counts() == {"done": 8, "running": 0, "waiting": 0, "infeasible": 0, "failed": 1, "pruned": 0,
                              "complete": 8}
    trials = sorted(study.optuna_study.trials, key=lambda t: t.number)
    assert len(trials) == 9
    [lost] = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    actor = attrs_of(lost)["ray"]["actor_id"]
    assert lost.number == victim.number and attrs_of(lost)["ray"] == {"actor_id": actor, "node_id": n2}
    assert attrs_of(lost)["error"] == (f"its Ray worker (actor {actor}, node {n2}) died while running the trial: The "
                                        f"actor died because its node has died. Node Id: {n2}; the actor's node was "
                                        f"terminated unexpectedly: health check failed due to missing too many "
                                        f"heartbeats")
    assert lost.values is None and "accuracy" not in attrs_of(lost) and attrs_of(lost)["status"] == "failed"
    # re-run once, on a live node, with the same architecture; no other trial is a retry
    [rerun] = [t for t in trials if "retry_of" in attrs_of(t)]
    assert (attrs_of(rerun)["retry_of"], attrs_of(rerun)["retries"], rerun.state) == \
        (lost.number, 1, optuna.trial.TrialState.COMPLETE)
    assert rerun.params == lost.params and attrs_of(rerun)["ray"]["node_id"] in (n0, n1)
    # where each trial ran: every trial names its node and actor; one actor per node, node 2's ran only the lost
    # trial, and the worker that died was not replaced
    hosts = {n0: "ray-node-0", n1: "ray-node-1", n2: "ray-node-2"}
    assert [attrs_of(t)["worker"]["host"] for t in trials] == [hosts[attrs_of(t)["ray"]["node_id"]] for t in trials]
    actors: dict[str, set[str]] = {}
    for t in trials:
        actors.setdefault(attrs_of(t)["ray"]["node_id"], set()).add(attrs_of(t)["ray"]["actor_id"])
    assert {n: len(a) for n, a in actors.items()} == {n0: 1, n1: 1, n2: 1}
    assert [t.number for t in trials if attrs_of(t)["ray"]["node_id"] == n2] == [lost.number]
    assert {attrs_of(t)["ray"]["node_id"] for t in trials if t.state == optuna.trial.TrialState.COMPLETE} == {n0, n1}


WAITING = re.compile(r"nas: waiting for Ray to place 1 worker\(s\) with resources=\{'cpu': 1, 'gpu_standin': 1\}: "
                     r"not running after (\d+) s; free in the cluster now: (.*)")


def test_a_busy_cluster_is_waited_for_with_a_notice(tmp_path: Path) -> None:
    """The only gpu_standin (node 1's) is held by an actor of the test: the request can be held by the cluster,
    so it is not refused, but not now. After WAIT_NOTICE_S (3 s here) the driver says it is waiting, with what
    is free (both CPUs and the memory: the holder takes no CPU), and no trial has started; once the holder is
    killed the search goes on, on node 1, to the exact count."""
    with ray_cluster([{"CPU": 1}, {"CPU": 1, "gpu_standin": 1}], tmp_path) as cluster:
        n0, n1 = (node.node_id for node in cluster.nodes)
        assert cluster.nodes[0].command('hold {"gpu_standin": 1}') == f"held {n1}"
        driver, log = _driver(cluster, tmp_path, evaluator="slow_evaluator", n_trials=2, resources=GPU_WORKER,
                              notice_s=3.0)
        try:
            assert driver.stdout is not None
            out = _lines(driver.stdout)
            first = _next(out, 150, log)
            assert _trials(tmp_path) == []  # nothing ran meanwhile
            freed = datetime.datetime.now()
            assert cluster.nodes[0].command("free") == "freed"
            assert driver.wait(timeout=120) == 0, log.read_text()[-3000:]
            later = []
            while (line := out.get(timeout=10)) is not None:
                later.append(line)
        finally:
            _stop(driver)
    match = WAITING.fullmatch(first)
    assert match, first
    assert int(match.group(1)) >= 3 and match.group(2) == "CPU 2, memory 2.0 GB"
    # until the freed resource's worker runs, the notice may come again (every 3 s): then with node 1's CPU taken
    assert [WAITING.sub(r"\2", line) for line in later] == ["CPU 1, memory 2.0 GB"] * len(later)
    study = nas.load_study("c", tmp_path / "c.db")
    assert study.counts()["done"] == 2 and study.counts()["failed"] == 0
    trials = study.optuna_study.trials
    assert [attrs_of(t)["ray"]["node_id"] for t in trials] == [n1, n1]
    assert all(t.datetime_start > freed for t in trials)
