"""Run a small job on a Dask SSHCluster across the given hosts, as GTSfM's runner starts one.

Usage: python3 dask_ssh_job.py SCHEDULER WORKER [WORKER ...]
No connect_options and no known_hosts=None: asyncssh checks ~/.ssh/known_hosts
strictly, so this passes only when the mesh and the host keys are right.
Prints one line "RESULT <json>": how many workers, and the hosts the tasks ran on. Dask logs to stderr, which
ansible's script module (run on a pty) mixes into stdout: the prefix finds the line among them.
"""

import json
import socket
import sys

from dask.distributed import Client, SSHCluster


def where(dummy):
    return socket.gethostname().split(".")[0]


def main():
    hosts = sys.argv[1:]
    options = dict(worker_options={"nthreads": 1, "n_workers": 1}, scheduler_options={"dashboard_address": None})
    with SSHCluster(hosts, **options) as cluster, Client(cluster) as client:
        client.wait_for_workers(len(hosts) - 1, timeout=120)
        workers = list(client.scheduler_info()["workers"])
        ran = {w: client.submit(where, w, workers=[w], pure=False).result(timeout=60) for w in workers}
    print("RESULT " + json.dumps({"workers": len(workers), "hosts": sorted(set(ran.values()))}), flush=True)


if __name__ == "__main__":
    main()
