#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: gtsfm_job
short_description: Preflight, start, watch and stop a GTSfM (or GTSfM-compatible) Dask job from the scheduler
version_added: 0.3.0
description:
  - Runs on the scheduler host (the first worker of the cluster config). Launches GTSfM's runner (C(./run ...)) or any
    program taking the same flags, with the cluster config rendered from the inventory in GTSfM's shape (scheduler
    first), the env's python first on C(PATH) and the checkout on C(PYTHONPATH).
  - B(Preflight) (every O(state), and all that check mode does), in seconds. Every host reachable from the scheduler
    the way Dask connects (asyncssh, default options, strict host keys); the env's python at the same path on every
    node; equal dask and distributed versions; each node opens TCP to the scheduler; the dashboard (and a fixed
    scheduler port) free; O(dataset_dir) present and not empty; O(output_root) writable. Each failure is one message
    naming the host and the fix.
  - B(Supervision). O(state=started) takes the cluster's lock and starts a supervisor detached from the SSH session
    (no session is held for the length of the job). The supervisor writes the log, enforces O(timeout) and
    O(startup_timeout), watches the workers per host through the scheduler, fails the job when every worker of a host
    leaves (O(fail_on_worker_loss)), and on any end ends every Dask scheduler, nanny and worker the job started on
    every node, found by the run id each of them carries in its environment (never by process name), beside its
    origin (scheduler, job root, O(holder), start time).
  - Before it starts the runner, the job ends what earlier runs of the same O(job_root) left on the nodes, and only
    runs whose records there show them ended (a final state, or a supervisor that is gone). A run of another job
    root or controller on a shared node, or one nothing records, is never ended - the preflight refuses the job
    naming it (host, run id, holder, start time, pids).
  - The lock is taken atomically and a job counts as running only while the process recorded for it (its pid, that
    pid's start time and the boot) does, so two starts at once run one job and a recycled pid is not taken for it.
  - O(state=status) reports a run (by default the last); O(state=stopped) ends the running job and waits for its
    cleanup.
  - "GTSfM's runner at HEAD (b8f24c75) fails on every plain-host cluster config (C(set(w[\"host\"] for w in
    workers)) in C(_create_dask_client)). When O(entry_point) is C(./run) and the code of C(gtsfm/runner.py), as
    Python parses it, has that call (a comment or string does not count), the job writes a copy of the runner with
    only that call fixed beside the original, removed after the run. The entry point still runs as given (GTSfM's
    C(./run) picks C(uv run python) or C(python)); when the interpreter it starts is about to run
    C(gtsfm/runner.py), the runner's C(sitecustomize) re-executes that same interpreter, with the same options,
    arguments and environment, on the copy. The log and RV(messages) say so (O(runner_workaround))."
  - "Dask's SSHCluster stops reading its remote processes' output once they have started, and a remote worker blocks
    when about 2 MiB of its logging is unread (dask issue 9033). The job's runner gets a C(sitecustomize) that reads
    that output to the end and logs it, with the host, into the job's log; the log says so (O(drain_remote_output))."
options:
  state:
    description:
      - V(started) runs the preflight, then starts the job and returns at once (or waits, O(wait)).
      - V(status) reports on O(run_id) (default the last run); fails when that run failed, timed out or was stopped.
      - V(stopped) ends the running job (every process it started, on every node) and reports it.
      - V(preflight) runs the preflight only.
    type: str
    choices: [started, status, stopped, preflight]
    default: started
  workers:
    description:
      - The cluster config's C(workers) list, in GTSfM's shape (plain host names, or mappings with C(host)); the
        first is the scheduler, where the module runs. Names as the scheduler's SSH reaches them.
    type: list
    elements: raw
    required: true
  python:
    description:
      - Absolute path of the cluster env's python, the same on every node (Dask starts the workers with the runner's
        own interpreter).
    type: path
    required: true
  chdir:
    description:
      - The GTSfM checkout (or a program shaped like it), where O(entry_point) runs; prepended to C(PYTHONPATH).
      - Required with O(state=started); the preflight skips its checks when it is not given.
    type: path
  entry_point:
    description:
      - The command that starts the runner, relative to O(chdir) or absolute; GTSfM's flags are appended.
    type: list
    elements: str
    default: ["./run"]
  loader:
    description: GTSfM's C(--loader).
    type: str
    default: colmap
  dataset_dir:
    description: C(--dataset_dir), absolute, on the scheduler. Required with O(state=started).
    type: path
  config_name:
    description: C(--config_name).
    type: str
    default: sift_front_end.yaml
  output_root:
    description: C(--output_root), absolute; results land in its C(results) directory. Required with O(state=started).
    type: path
  num_workers:
    description: C(--num_workers), Dask workers per cluster config entry.
    type: int
    default: 1
  threads_per_worker:
    description: C(--threads_per_worker).
    type: int
    default: 1
  worker_memory_limit:
    description: C(--worker_memory_limit) (GTSfM's default 32GB exceeds small nodes).
    type: str
    default: 4GB
  dashboard_port:
    description: Port of the Dask dashboard on the scheduler (C(--dashboard_port :PORT)); must be free.
    type: int
    default: 8787
  scheduler_port:
    description:
      - The scheduler's port, for the preflight. V(0) (GTSfM's runner) means any free port; the preflight then
        checks that every node reaches a port picked at random on the scheduler.
    type: int
    default: 0
  extra_args:
    description: More arguments for the runner, appended as given.
    type: list
    elements: str
    default: []
  environment:
    description: More environment variables for the runner.
    type: dict
    default: {}
  cluster_config_path:
    description: Where to write the rendered cluster config; by default C(cluster.yaml) in the run's directory.
    type: path
  job_root:
    description:
      - Directory on the scheduler for the lock (one job per cluster), the agent and one directory per run (spec,
        status, C(job.log)).
    type: path
    default: ~/.cache/gtsfm.cluster/jobs
  name:
    description: A name for the job, shown to whoever finds the cluster busy.
    type: str
    default: gtsfm
  holder:
    description: Who starts the job (for example user@controller), shown to whoever finds the cluster busy.
    type: str
    default: ""
  timeout:
    description: Seconds the job may run before it is ended and cleaned up (V(0) no limit).
    type: int
    default: 86400
  startup_timeout:
    description:
      - Seconds from start until every worker (O(num_workers) per cluster config entry) must have joined the scheduler,
        else the job fails naming the hosts without workers (V(0) no limit).
    type: int
    default: 300
  fail_on_worker_loss:
    description: End the job as failed when every worker of a host leaves while it runs (a dead node).
    type: bool
    default: true
  worker_ttl:
    description:
      - Dask's C(distributed.scheduler.worker-ttl) for the job's scheduler (passed through the runner's Dask config).
        A worker silent this long is removed, which is how a dead node shows (Dask's default is 5 minutes).
    type: str
    default: 60s
  runner_workaround:
    description:
      - Run GTSfM HEAD's runner with its cluster bug fixed in a copy, started by O(entry_point) as the original would
        be (see description); V(false) refuses such a checkout.
    type: bool
    default: true
  drain_remote_output:
    description:
      - Read the SSHCluster's remote stdout and stderr to the end and log them into the job's log (see description),
        through a C(sitecustomize.py) put first on the runner's C(PYTHONPATH); it runs the one it shadows. V(false)
        leaves Dask as it is, and a chatty job may then hang once about 2 MiB of remote output is unread.
    type: bool
    default: true
  run_id:
    description: The run O(state=status) and O(state=stopped) act on; default the last (stopped, the running one).
    type: str
  wait:
    description:
      - With O(state=started), wait for the end of the job before returning; with O(state=status), wait up to
        O(wait_seconds) for it to end.
    type: bool
    default: false
  wait_seconds:
    description: How long O(state=status) waits (when O(wait)) and O(state=stopped) waits for the cleanup.
    type: int
    default: 60
  log_lines:
    description: Lines of the log returned in RV(log_tail).
    type: int
    default: 30
notes:
  - Check mode runs the preflight only and changes nothing.
  - Needs asyncssh and distributed in the env (Dask's SSHCluster needs both). No root.
  - The remote processes' stderr goes to the runner over SSH and is read by Dask only during start-up (dask issue
    9033); keep the runner's worker logging modest for multi-hour jobs.
seealso:
  - module: gtsfm.cluster.known_hosts_block
extends_documentation_fragment:
  - gtsfm.cluster.attributes
  - ansible.builtin.action_common_attributes
"""

EXAMPLES = r"""
- name: Start GTSfM on the cluster from the scheduler
  gtsfm.cluster.gtsfm_job:
    workers: "{{ gtsfm_cluster_workers }}"
    python: /home/alice/miniforge3/envs/gtsfm-v1/bin/python
    chdir: /home/alice/gtsfm
    dataset_dir: /home/alice/data/door
    output_root: /home/alice/runs/door
    num_workers: 2
  register: job

- name: Wait for the job, reporting as it goes
  gtsfm.cluster.gtsfm_job:
    state: status
    run_id: "{{ job.run_id }}"
    workers: "{{ gtsfm_cluster_workers }}"
    python: /home/alice/miniforge3/envs/gtsfm-v1/bin/python
    chdir: /home/alice/gtsfm
    dataset_dir: /home/alice/data/door
    output_root: /home/alice/runs/door
    wait: true
    wait_seconds: 30
  register: job_status
  until: not job_status.running
  retries: 1000
  delay: 1

- name: End whatever job runs on the cluster
  gtsfm.cluster.gtsfm_job:
    state: stopped
    workers: "{{ gtsfm_cluster_workers }}"
    python: /home/alice/miniforge3/envs/gtsfm-v1/bin/python
    chdir: /home/alice/gtsfm
    dataset_dir: /home/alice/data/door
    output_root: /home/alice/runs/door
"""

RETURN = r"""
run_id:
  description: The run's id; every process it started carries it in its environment.
  returned: when a run is concerned
  type: str
  sample: 20261124T110000Z-1a2b3c
state:
  description: starting, running, finished, failed, timeout, stopped, or lost (its supervisor vanished).
  returned: when a run is concerned
  type: str
running:
  description: Whether the run is still going.
  returned: when a run is concerned
  type: bool
rc:
  description: The runner's exit status (null while running, or when it was ended by a signal).
  returned: when a run is concerned
  type: int
reason:
  description: Why the run ended other than by finishing.
  returned: when a run is concerned
  type: str
duration:
  description: Seconds from start to end (or until now).
  returned: when a run is concerned
  type: float
log:
  description: Path of the job's log on the scheduler.
  returned: when a run is concerned
  type: str
log_tail:
  description: The log's last O(log_lines) lines.
  returned: when a run is concerned
  type: list
  elements: str
last_line:
  description: The log's last line.
  returned: when a run is concerned
  type: str
workers_joined:
  description:
    - Workers that joined, per host (inventory name) - the most registered there at once - from the scheduler's own
      add-worker and remove-worker events, so a worker that joined and left between two looks still counts.
  returned: when a run is concerned
  type: list
  elements: dict
  sample: [{host: node1, count: 2}, {host: node2, count: 2}]
workers_registered:
  description: Workers registered with the scheduler now (at the job's end - none), per host.
  returned: when a run is concerned
  type: list
  elements: dict
  sample: [{host: node1, count: 2}, {host: node2, count: 1}]
expected_workers:
  description: Workers that must join (O(num_workers) per cluster config entry).
  returned: when a run is concerned
  type: int
all_joined_after:
  description: Seconds from the runner's start until every expected worker had joined (the scheduler's event time).
  returned: when every worker joined
  type: float
hosts_lost:
  description: Hosts whose workers all left while the job ran.
  returned: when a run is concerned
  type: list
  elements: str
results_archive:
  description:
    - The run's results, packed by its supervisor before the run is reported finished - every regular file and
      directory under O(output_root)/results in one archive in the run's directory, written under a temporary name
      and renamed when complete. Symlinks, devices, FIFOs and sockets are not packed (named in C(skipped)); setuid,
      setgid and group or world write bits are dropped.
  returned: when the run finished
  type: dict
  contains:
    path:
      description: Path of the archive (gzip-compressed tar) on the scheduler.
      type: str
      sample: /home/alice/.cache/gtsfm.cluster/jobs/20261124T110000Z-1a2b3c/results.tar.gz
    count:
      description: Files in the archive.
      type: int
    bytes:
      description: Their total size, in bytes.
      type: int
    archive_bytes:
      description: The archive's size, in bytes.
      type: int
    skipped:
      description: Up to 20 paths (relative to results) that were not packed, not being regular files.
      type: list
      elements: str
    skipped_count:
      description: How many were not packed.
      type: int
  version_added: 0.4.0
scheduler_address:
  description: The address the scheduler announced.
  returned: when a run is concerned
  type: str
dashboard_port:
  description: The port the scheduler's dashboard listens on, as the scheduler reports it (a move off
    O(dashboard_port) is also in RV(messages)).
  returned: when the scheduler answered
  type: int
cluster_config:
  description: The cluster config file the runner read.
  returned: when a run is concerned
  type: str
messages:
  description: What the supervisor did besides running the job (workaround applied, leftovers ended, hosts lost).
  returned: when a run is concerned
  type: list
  elements: str
cleanup_problems:
  description: Hosts where the final cleanup could not confirm that no process of the run is left.
  returned: when a run is concerned
  type: dict
preflight:
  description: What the preflight learned of each node (python, versions, addresses).
  returned: always
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gtsfm.cluster.plugins.module_utils import _gtsfm_job as job


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="started", choices=["started", "status", "stopped", "preflight"]),
            workers=dict(type="list", elements="raw", required=True),
            python=dict(type="path", required=True),
            chdir=dict(type="path"),
            entry_point=dict(type="list", elements="str", default=["./run"]),
            loader=dict(type="str", default="colmap"),
            dataset_dir=dict(type="path"),
            config_name=dict(type="str", default="sift_front_end.yaml"),
            output_root=dict(type="path"),
            num_workers=dict(type="int", default=1),
            threads_per_worker=dict(type="int", default=1),
            worker_memory_limit=dict(type="str", default="4GB"),
            dashboard_port=dict(type="int", default=8787),
            scheduler_port=dict(type="int", default=0),
            extra_args=dict(type="list", elements="str", default=[]),
            environment=dict(type="dict", default={}, no_log=True),
            cluster_config_path=dict(type="path"),
            job_root=dict(type="path", default="~/.cache/gtsfm.cluster/jobs"),
            name=dict(type="str", default="gtsfm"),
            holder=dict(type="str", default=""),
            timeout=dict(type="int", default=86400),
            startup_timeout=dict(type="int", default=300),
            fail_on_worker_loss=dict(type="bool", default=True),
            worker_ttl=dict(type="str", default="60s"),
            runner_workaround=dict(type="bool", default=True),
            drain_remote_output=dict(type="bool", default=True),
            run_id=dict(type="str"),
            wait=dict(type="bool", default=False),
            wait_seconds=dict(type="int", default=60),
            log_lines=dict(type="int", default=30),
        ),
        required_if=[("state", "started", ("chdir", "dataset_dir", "output_root"))],
        supports_check_mode=True,
    )
    p = job.plain(module.params)
    for key in ("python", "chdir", "dataset_dir", "output_root"):
        if p[key] is not None and not os.path.isabs(p[key]):
            module.fail_json(
                msg=f"{key}: {p[key]!r} is not absolute. Fix: Dask starts workers in the home directory, so every path "
                "must be absolute."
            )
    try:
        result = job.run(module, p)
    except job.JobError as exc:
        module.fail_json(msg=exc.msg, **exc.result)
    if result.pop("_failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
