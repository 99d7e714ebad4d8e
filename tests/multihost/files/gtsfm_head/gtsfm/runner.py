# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for GTSfM's runner at HEAD b8f24c75: the same flags, the same SSHCluster, the same cluster bug.

Builds the SSHCluster from --cluster_config exactly as GTSfM's runner does, then fails on plain host names exactly
where GTSfM's does (_create_dask_client). Past that line, it holds one task per worker for HOLD seconds
(--config_name hold_HOLD.yaml; hold_HOLD_chatter_MIB.yaml also writes MIB MiB to each worker's stderr) and writes
output_root/results/hosts.json (hold_HOLD_files_N.yaml: and N more files in nested directories under results/many).
"""

import argparse
import json
import os
import re
import socket
import sys
import time

import yaml
from dask.distributed import Client, SSHCluster


def hold(seconds, chatter_mib=0):
    # A chatty task: its worker's stderr is the SSH channel that SSHCluster stops reading after start-up.
    for _dummy in range(chatter_mib * 16):
        sys.stderr.write(("chatter " * 8192)[:65535] + "\n")
    sys.stderr.flush()
    end = time.time() + seconds
    while time.time() < end:
        time.sleep(0.2)
    return socket.gethostname()


class Runner:
    def __init__(self):
        p = argparse.ArgumentParser()
        for flag in (
            "--loader",
            "--dataset_dir",
            "--config_name",
            "--output_root",
            "--cluster_config",
            "--worker_memory_limit",
            "--dashboard_port",
            "--dask_tmpdir",
        ):
            p.add_argument(flag)
        p.add_argument("--num_workers", type=int, default=1)
        p.add_argument("--threads_per_worker", type=int, default=1)
        p.add_argument("--num_retry_cluster_connection", type=int, default=3)
        self.parsed_args = p.parse_args()

    def setup_ssh_cluster_with_retries(self):
        name = self.parsed_args.cluster_config
        path = name if os.path.isabs(name) else os.path.join("gtsfm", "configs", name)
        with open(path) as f:
            config = yaml.safe_load(f)
        workers = config["workers"]
        scheduler = workers[0]
        cluster = SSHCluster(
            [scheduler] + workers,
            scheduler_options={"dashboard_address": self.parsed_args.dashboard_port},
            worker_options={
                "n_workers": self.parsed_args.num_workers,
                "nthreads": self.parsed_args.threads_per_worker,
                "memory_limit": self.parsed_args.worker_memory_limit,
            },
        )
        return cluster, config

    def _create_dask_client(self):
        cluster, config = self.setup_ssh_cluster_with_retries()
        client = Client(cluster)
        workers = dict(config)["workers"]
        unique_hosts = set(w["host"] for w in workers)
        print("unique hosts:", sorted(unique_hosts), flush=True)
        return cluster, client

    def run(self):
        cluster, client = self._create_dask_client()
        m = re.match(r"hold_(\d+)(?:_chatter_(\d+))?(?:_files_(\d+))?", self.parsed_args.config_name or "")
        seconds = int(m.group(1)) if m else 0
        chatter = int(m.group(2) or 0) if m else 0
        files = int(m.group(3) or 0) if m else 0
        client.wait_for_workers(
            len(yaml.safe_load(open(self.parsed_args.cluster_config))["workers"]) * self.parsed_args.num_workers,
            timeout=60,
        )
        addresses = sorted(client.scheduler_info()["workers"])
        hosts = client.gather([client.submit(hold, seconds, chatter, workers=[a], pure=False) for a in addresses])
        results = os.path.join(self.parsed_args.output_root, "results")
        os.makedirs(results, exist_ok=True)
        with open(os.path.join(results, "hosts.json"), "w") as f:
            json.dump(sorted(hosts), f)
        for i in range(files):
            many = os.path.join(results, "many", f"d{i % 7:02d}")
            os.makedirs(many, exist_ok=True)
            with open(os.path.join(many, f"f{i:04d}.txt"), "w") as f:
                f.write(f"result {i}\n")
        print("held on", sorted(hosts), flush=True)
        client.close()
        cluster.close()


if __name__ == "__main__":
    Runner().run()
