"""One node of a Ray cluster on this machine, for tests: ``python -m ray_cluster FOLDER INDEX RESOURCES [ADDRESS]``
starts node INDEX with RESOURCES (JSON, Ray's names: ``{"CPU": 1, "gpu_standin": 1}``), the head when no ADDRESS
is given, else a worker node that joins the head at ADDRESS. It is what ``ray.cluster_utils.Cluster.add_node``
does (Ray's own test utility: each node its own raylet, object store and agents), one node per process, so that a
test can start each node in a UTS namespace of its own: each node is then a machine of its own for nas (its
workers record their hostname, and see each other's processes as on another host). Every server listens on
127.0.0.1, with Ray's token authentication on (the token ``FOLDER/auth_token``; Ray's files in ``FOLDER/ray``).

It prints one JSON line ``{"address": ..., "node_id": ...}`` when the node is up, then obeys one command per line
on its standard input, answering each with one line:

* ``remove``: SIGKILL every process of the node (raylet, object store, agents; its workers exit with their
  raylet), as a machine that dies -> ``removed``;
* ``hold {resources}``: an actor of this process's own holds these resources until ``free`` -> ``held NODE_ID``
  once it is placed (``NODE_ID``: where);
* ``free``: that actor is killed -> ``freed``;
* ``quit`` (or the end of the input): the node is stopped -> ``stopped``, and the process exits.

Tests run it in its own session (``start_new_session=True``) and SIGKILL that process group on the way out too.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

# health checks every 0.5 s, a node dead after 3 missed: a killed node is known dead in ~2 s, not ~15 s
SYSTEM_CONFIG = {"health_check_initial_delay_ms": 500, "health_check_period_ms": 500,
                 "health_check_timeout_ms": 500, "health_check_failure_threshold": 3}


def environment(folder: str) -> dict[str, str]:
    """The variables under which the cluster's processes, and a driver joining it, run: loopback only, token
    authentication with the folder's token, no usage statistics, Ray's address file in the folder (not in
    /tmp/ray, which other Ray users of this machine share)."""
    return {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": os.path.join(folder, "auth_token"), "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_TMPDIR": folder}


def _start(folder: str, index: int, resources: dict[str, float], address: str | None) -> Any:
    """Node ``index`` on 127.0.0.1 with 1 GB of memory (so that free resources read the same on any machine) and
    ``NAS_TEST_NODE=index`` in its raylet's environment, which its workers inherit (a test evaluator can tell
    which node it runs on)."""
    import ray._private.node
    import ray._private.parameter
    import ray._private.services
    import ray._private.utils

    params = ray._private.parameter.RayParams(
        node_ip_address="127.0.0.1", num_cpus=resources.get("CPU", 0), num_gpus=resources.get("GPU", 0),
        resources={k: v for k, v in resources.items() if k not in ("CPU", "GPU")}, memory=2**30,
        object_store_memory=80 * 2**20, temp_dir=os.path.join(folder, "ray"), include_dashboard=False,
        env_vars={"NAS_TEST_NODE": str(index)}, min_worker_port=0, max_worker_port=0)
    if address is None:
        params._system_config = SYSTEM_CONFIG
        node = ray._private.node.Node(params, head=True, shutdown_at_exit=True, spawn_reaper=True)
        ray._private.utils.write_ray_address(node.gcs_address)
    else:
        params.update(gcs_address=address, include_log_monitor=False, node_manager_port=0)
        params.dashboard_agent_listen_port = None
        node = ray._private.node.Node(params, head=False, shutdown_at_exit=True, spawn_reaper=True)
    ray._private.services.wait_for_node(node.gcs_address, node.plasma_store_socket_name, 60)
    return node


def main(folder: str, index: int, resources: dict[str, float], address: str | None) -> None:
    os.environ.update(environment(folder))
    os.makedirs(os.path.join(folder, "ray"), exist_ok=True)
    import ray

    node = _start(folder, index, resources, address)
    print(json.dumps({"address": node.gcs_address, "node_id": node.node_id}), flush=True)
    holder = None
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "remove":
            node.kill_all_processes(check_alive=False, allow_graceful=False, wait=True)
            print("removed", flush=True)
        elif command == "hold":
            if not ray.is_initialized():
                ray.init(address=node.gcs_address, log_to_driver=False)

            @ray.remote(num_cpus=0, resources=json.loads(argument))
            class Holder:
                def node(self) -> str:
                    return ray.get_runtime_context().get_node_id()

            holder = Holder.remote()  # type: ignore[attr-defined]
            print(f"held {ray.get(holder.node.remote())}", flush=True)
        elif command == "free":
            ray.kill(holder)
            holder = None
            print("freed", flush=True)
        elif command == "quit":
            break
    if ray.is_initialized():
        ray.shutdown()
    node.kill_all_processes(check_alive=False, allow_graceful=True, wait=True)
    print("stopped", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None)
