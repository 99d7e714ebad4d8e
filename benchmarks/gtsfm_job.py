"""Benchmark: time until every Dask worker joined, gtsfm_job against a bare SSHCluster script, on real test beds.

    .venv/bin/python benchmarks/gtsfm_job.py [--nodes 2 4 8] [--repeat 3] [--name BED] [--keep] [--json FILE]

One bed of max(N) nodes (bed name 'gtsfmjob-bench', mesh built by site.yml --tags ssh_mesh,known_hosts); for each N
the cluster config lists its first N nodes, one worker per entry (the scheduler host runs a worker too):
  1. bare: `ssh node1 python3 -` running a script that does what GTSfM's runner does, SSHCluster([scheduler] +
     workers, ...), then Client.wait_for_workers(N); the time until it prints JOINED, from the controller's ssh
     command (what a user typing it waits) and from the script's own start (after the interpreter started);
  2. ours from ansible-playbook: the playbook calling gtsfm.cluster.gtsfm_job (state started: preflight, lock,
     supervisor, runner = the stand-in of GTSfM's runner doing the same SSHCluster) from the controller, until the
     scheduler registered the last worker (its own add-worker event time);
  3. ours from the module's start on the scheduler (preflight included, ansible's start-up and transfer not);
  4. ours from the runner's start (what the launcher adds once the runner runs), against the script's own time.
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
BARE = r"""
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
"""


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, **kw)


def ssh(bed: Path, host: str, command: str, **kw) -> subprocess.CompletedProcess:
    return sh(["ssh", "-F", str(bed / "ssh_config"), host, command], **kw)


def bare(bed: Path, hosts: list[str]) -> tuple[float, float]:
    """(seconds from the controller's ssh command, seconds from the script's own start) until every worker joined."""
    t0 = time.time()
    proc = subprocess.Popen(
        ["ssh", "-F", str(bed / "ssh_config"), "node1", "python3 - " + " ".join(hosts)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    proc.stdin.write(BARE)
    proc.stdin.close()
    for line in proc.stdout:
        if line.startswith("JOINED"):
            from_command = time.time() - t0
            in_script = float(line.split()[1])
            break
    else:
        raise SystemExit("bare: the script ended before every worker joined")
    proc.wait(60)
    return from_command, in_script


def playbook(bed: Path, book: Path, *args: str) -> list[str]:
    """ansible-playbook book on the bed's inventory and vars.yml, then args."""
    return [PLAYBOOK, "-i", str(bed / "inventory.yml"), "-e", "@" + str(bed / "vars.yml"), str(book), *args]


def ours(bed: Path, hosts: list[str], env: dict) -> dict:
    """Seconds until every worker joined, from the playbook's start, the module's start and the runner's start."""
    t0 = time.time()
    extra = {"job_workers": hosts, "job_config_name": "hold_3.yaml", "job_dashboard_port": 8798}
    sh(playbook(bed, FILES / "gtsfm_job.yml", "-e", json.dumps(extra)), env=env)
    deadline = time.time() + 300
    while time.time() < deadline:
        status = json.loads(ssh(bed, "node1", "cat ~/.cache/gtsfm.cluster/jobs/last/status.json").stdout)
        if status.get("state") in ("finished", "failed", "timeout", "stopped"):
            break
        time.sleep(0.5)
    if status.get("state") != "finished" or status.get("all_joined_after") is None:
        raise SystemExit(f"ours: the job did not finish well: {status.get('state')} {status.get('reason')}")
    # all_joined_after counts from the runner's start; the bed's containers share the controller's clock.
    joined = status["runner_started"] + status["all_joined_after"]
    timing = status.get("timing") or {}
    return {
        "end_to_end": joined - t0,
        "module": joined - timing.get("module_started", float("nan")),
        "preflight": timing.get("preflight_seconds", float("nan")),
        "runner": status["all_joined_after"],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", type=Path)
    p.add_argument("--keep", action="store_true", help="leave the bed up")
    p.add_argument("--name", default=BED, help="the bed's name (a bed of that name is reused, resized to max(N) nodes)")
    args = p.parse_args()
    env = dict(
        os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"
    )
    n_max = max(args.nodes)
    bed = Path(
        sh([str(ROOT / "scripts" / "testbed"), "up", "--nodes", str(n_max), "--name", args.name])
        .stdout.strip()
        .splitlines()[-1]
    )
    rows = []
    try:
        sh(playbook(bed, ROOT / "site.yml", "--tags", "ssh_mesh,known_hosts"), env=env)
        subprocess.run(
            f"tar -C {FILES} -cf - gtsfm_head | ssh -F {bed}/ssh_config node1 "
            "'tar -xf - && mkdir -p data/standin && echo x > data/standin/image.txt'",
            shell=True,
            check=True,
        )
        for n in args.nodes:
            hosts = [f"node{i}" for i in range(1, n + 1)]
            runs = []
            for _dummy in range(args.repeat):
                from_command, in_script = bare(bed, hosts)
                runs.append(dict(ours(bed, hosts, env), bare_command=from_command, bare_script=in_script))
            row = {"nodes": n, **{k: statistics.median(r[k] for r in runs) for k in runs[0]}}
            rows.append(row)
            print(
                f"N={n}: bare {row['bare_command']:.1f} s from ssh ({row['bare_script']:.1f} s in the script); ours "
                f"{row['end_to_end']:.1f} s from ansible-playbook ({row['end_to_end'] / row['bare_command']:.2f}x), "
                f"{row['module']:.1f} s from the module's start ({row['module'] / row['bare_command']:.2f}x; preflight "
                f"{row['preflight']:.2f} s), {row['runner']:.1f} s from the runner's start "
                f"({row['runner'] / row['bare_script']:.2f}x the script)",
                flush=True,
            )
    finally:
        if not args.keep:
            sh([str(ROOT / "scripts" / "testbed"), "down", "--name", args.name])
    print()
    print(
        "| N | bare: from `ssh node1 python3 -` | bare: in the script | ours: from ansible-playbook | ratio "
        "| ours: from the module's start (preflight) | ratio | ours: from the runner's start | ratio to the script |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['nodes']} | {row['bare_command']:.1f} s | {row['bare_script']:.1f} s | {row['end_to_end']:.1f} s "
            f"| {row['end_to_end'] / row['bare_command']:.2f}x | {row['module']:.1f} s ({row['preflight']:.2f} s) | "
            f"{row['module'] / row['bare_command']:.2f}x | {row['runner']:.1f} s | "
            f"{row['runner'] / row['bare_script']:.2f}x |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
