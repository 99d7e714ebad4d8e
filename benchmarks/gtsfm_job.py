"""Benchmark: time until every Dask worker joined, gtsfm_job against a bare SSHCluster script, on real test beds.

    .venv/bin/python benchmarks/gtsfm_job.py [--nodes 2 4 8] [--repeat 2] [--json FILE]

One bed of max(N) nodes (bed name 'gtsfmjob-bench', mesh built by site.yml --tags ssh_mesh,known_hosts); for each N
the cluster config lists its first N nodes, one worker per entry (the scheduler host runs a worker too):
  1. bare: on node1, a script that does what GTSfM's runner does, SSHCluster([scheduler] + workers, ...), then
     Client.wait_for_workers(N); the time from the script's start to all joined;
  2. ours, end to end: ansible-playbook calling gtsfm.cluster.gtsfm_job (state started: preflight, lock, cleanup of
     leftovers, supervisor, runner = the stand-in of GTSfM's runner doing the same SSHCluster) from the controller;
     the time from the playbook's start until the supervisor saw every worker joined;
  3. ours, runner only: the supervisor's own measure from the runner's start (what the launcher adds once running).
Prints the medians and the ratios ours/bare. Never asserts on time.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BED = "gtsfmjob-bench"
FILES = ROOT / "tests" / "multihost" / "files"
PLAYBOOK = str(ROOT / ".venv" / "bin" / "ansible-playbook")
BARE = r'''
import sys, time
t0 = time.time()
from dask.distributed import Client, SSHCluster
workers = sys.argv[1:]
cluster = SSHCluster([workers[0]] + workers, scheduler_options={"dashboard_address": ":8797"},
                     worker_options={"n_workers": 1, "nthreads": 1, "memory_limit": "1GB"})
client = Client(cluster)
client.wait_for_workers(len(workers), timeout=300)
print("JOINED", time.time() - t0, flush=True)
client.close()
cluster.close()
'''


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, **kw)


def ssh(bed: Path, host: str, command: str, **kw) -> subprocess.CompletedProcess:
    return sh(["ssh", "-F", str(bed / "ssh_config"), host, command], **kw)


def bare(bed: Path, hosts: list[str]) -> float:
    out = ssh(bed, "node1", "python3 - " + " ".join(hosts) + " 2>/dev/null", input=BARE).stdout
    return float(next(line.split()[1] for line in out.splitlines() if line.startswith("JOINED")))


def ours(bed: Path, hosts: list[str], env: dict) -> tuple[float, float]:
    t0 = time.time()
    extra = {"job_workers": hosts, "job_config_name": "hold_3.yaml", "job_dashboard_port": 8798}
    sh([PLAYBOOK, "-i", str(bed / "inventory.yml"), "-e", "@" + str(bed / "vars.yml"),
        str(FILES / "gtsfm_job.yml"), "-e", json.dumps(extra)], env=env)
    deadline = time.time() + 300
    while time.time() < deadline:
        status = json.loads(ssh(bed, "node1", "cat ~/.cache/gtsfm.cluster/jobs/last/status.json").stdout)
        if status.get("state") in ("finished", "failed", "timeout", "stopped"):
            break
        time.sleep(0.5)
    if status.get("state") != "finished" or status.get("all_joined_after") is None:
        raise SystemExit(f"ours: the job did not finish well: {status.get('state')} {status.get('reason')}")
    runner_only = status["all_joined_after"]
    # all_joined_after counts from the runner's start; the bed's containers share the controller's clock.
    end_to_end = status["runner_started"] + runner_only - t0
    return end_to_end, runner_only


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--json", type=Path)
    p.add_argument("--keep", action="store_true", help="leave the bed up")
    args = p.parse_args()
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}")
    n_max = max(args.nodes)
    bed = Path(sh([str(ROOT / "scripts" / "testbed"), "up", "--nodes", str(n_max), "--name", BED]).stdout
               .strip().splitlines()[-1])
    rows = []
    try:
        sh([PLAYBOOK, "-i", str(bed / "inventory.yml"), "-e", "@" + str(bed / "vars.yml"), "--tags",
            "ssh_mesh,known_hosts", str(ROOT / "site.yml")], env=env)
        subprocess.run(f"tar -C {FILES} -cf - gtsfm_head | ssh -F {bed}/ssh_config node1 "
                       "'tar -xf - && mkdir -p data/standin && echo x > data/standin/image.txt'",
                       shell=True, check=True)
        for n in args.nodes:
            hosts = [f"node{i}" for i in range(1, n + 1)]
            b, e, r = [], [], []
            for dummy in range(args.repeat):
                b.append(bare(bed, hosts))
                end_to_end, runner_only = ours(bed, hosts, env)
                e.append(end_to_end)
                r.append(runner_only)
            row = {"nodes": n, "bare_s": statistics.median(b), "ours_end_to_end_s": statistics.median(e),
                   "ours_runner_s": statistics.median(r)}
            row["ratio_end_to_end"] = row["ours_end_to_end_s"] / row["bare_s"]
            row["ratio_runner"] = row["ours_runner_s"] / row["bare_s"]
            rows.append(row)
            print(f"N={n}: bare {row['bare_s']:.1f} s, ours {row['ours_end_to_end_s']:.1f} s end to end "
                  f"({row['ratio_end_to_end']:.2f}x), {row['ours_runner_s']:.1f} s from the runner's start "
                  f"({row['ratio_runner']:.2f}x)", flush=True)
    finally:
        if not args.keep:
            sh([str(ROOT / "scripts" / "testbed"), "down", "--name", BED])
    print()
    print("| N | bare SSHCluster script | gtsfm_job, end to end (preflight, lock, cleanup, start) | ratio "
          "| gtsfm_job, from the runner's start | ratio |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['nodes']} | {row['bare_s']:.1f} s | {row['ours_end_to_end_s']:.1f} s | "
              f"{row['ratio_end_to_end']:.2f}x | {row['ours_runner_s']:.1f} s | {row['ratio_runner']:.2f}x |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
