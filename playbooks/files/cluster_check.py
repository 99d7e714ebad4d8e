# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the SSHCluster exactly as GTSfM's runner does from a cluster config, run one task on every worker, print
one JSON line per worker: host, python, dask and distributed versions, cores, memory, GPUs.

    python cluster_check.py CLUSTER_CONFIG [NUM_WORKERS] [DASHBOARD_PORT] [TIMEOUT]
"""

import json
import os
import socket
import sys

import yaml
from dask.distributed import Client, SSHCluster


def describe():
    import glob
    import platform

    import dask
    import distributed

    memory = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    memory = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "host": socket.gethostname(),
        "python": sys.executable,
        "python_version": platform.python_version(),
        "dask": dask.__version__,
        "distributed": distributed.__version__,
        "cores": os.cpu_count(),
        "memory_bytes": memory,
        "gpus": len(glob.glob("/dev/nvidia[0-9]*")),
    }


def main():
    path, n_workers = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1
    dashboard = sys.argv[3] if len(sys.argv) > 3 else ":8787"
    timeout = int(sys.argv[4]) if len(sys.argv) > 4 else 60
    with open(path) as f:
        workers = yaml.safe_load(f)["workers"]
    scheduler = workers[0]
    # As gtsfm/runner.py: [scheduler] + workers; options in scheduler_options and worker_options.
    cluster = SSHCluster(
        [scheduler] + workers,
        scheduler_options={"dashboard_address": dashboard},
        worker_options={"n_workers": n_workers, "nthreads": 1, "memory_limit": "1GB"},
    )
    try:
        client = Client(cluster)
        client.wait_for_workers(n_workers * len(workers), timeout=timeout)
        for address, info in sorted(client.run(describe).items()):
            info["worker"] = address
            print(json.dumps(info), flush=True)
        client.close()
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
