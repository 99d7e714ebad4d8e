# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of gtsfm.cluster.gtsfm_job (private to this collection): plain functions over plain data.

The module runs on the scheduler. It writes the job agent (_gtsfm_job_agent.py) into the job root and runs it with the
cluster env's python: for the preflight, and detached as the supervisor of a started job.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import inspect
import json
import os
import re
import secrets
import signal
import subprocess
import tempfile
import time

# ansible-core 2.21's sanity asks for AnsibleModule.run_command; these are plain functions (no AnsibleModule at
# hand), and the supervisor they start must outlive the module in its own session.
# pylint: disable=ansible-bad-function

from ansible_collections.gtsfm.cluster.plugins.module_utils import _gtsfm_job_agent as agent
from ansible_collections.gtsfm.cluster.plugins.module_utils import _gtsfm_job_hook as hook

# GTSfM's runner at HEAD b8f24c75 (_create_dask_client): breaks every plain-host cluster config.
HEAD_BUG = re.compile(r'set\(\s*w\["host"\]\s+for\s+w\s+in\s+workers\s*\)')
HEAD_FIX = 'set(w["host"] if isinstance(w, dict) else w for w in workers)'
PATCHED_NAME = ".runner.gtsfm_job_patched.py"
FINAL_STATES = ("finished", "failed", "timeout", "stopped")


class JobError(Exception):
    """A failure the module reports as one message (fail_json)."""

    def __init__(self, msg, **result):
        super(JobError, self).__init__(msg)
        self.msg = msg
        self.result = result


def plain(value):
    """Plain Python data (str, int, float, bool, None, list, dict) from whatever Ansible handed over."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)


def worker_hosts(workers):
    """The host of each cluster config entry (plain names or GTSfM's mappings), validated.

    Raises JobError naming the entry and the fix.
    """
    hosts = []
    if not isinstance(workers, list) or not workers:
        raise JobError("workers: empty. Fix: list the cluster's hosts, scheduler first (GTSfM's cluster.yaml shape).")
    for i, entry in enumerate(workers):
        if isinstance(entry, dict):
            host = entry.get("host")
            if "gpus" in entry:
                raise JobError("workers[%d] (%r): has 'gpus', which makes GTSfM's runner start a single-machine "
                               "LocalCUDACluster, not an SSHCluster. Fix: remove gpus for a multi-host CPU run." % (
                                   i, entry))
        else:
            host = entry
        if not isinstance(host, str) or not host.strip() or any(c.isspace() for c in host) or "'" in host:
            raise JobError("workers[%d] (%r): not a host name. Fix: a plain host name, or a mapping with 'host'." % (
                i, entry))
        if "gpus" in host:
            raise JobError("workers[%d] (%r): GTSfM's runner tests 'gpus' in each entry as a substring, so this host "
                           "name sends it down the single-machine GPU path. Fix: use another name for this host (an "
                           "alias in ~/.ssh/config)." % (i, host))
        hosts.append(host)
    return hosts


def render_cluster_config(workers, source):
    """GTSfM's cluster.yaml text for workers (scheduler first). JSON scalars are YAML, so no YAML library is needed."""
    lines = ["# Written by gtsfm.cluster.gtsfm_job from %s. GTSfM's shape; the first worker is the scheduler." % source,
             "workers:"]
    for entry in plain(workers):
        if isinstance(entry, dict):
            lines.append("  - {%s}" % ", ".join("%s: %s" % (json.dumps(k), json.dumps(v)) for k, v in entry.items()))
        else:
            lines.append("  - %s" % json.dumps(entry))
    return "\n".join(lines) + "\n"


def runner_command(p, cluster_config_path):
    """The runner's argument list: entry point plus GTSfM's flags, every path absolute."""
    cmd = list(p["entry_point"])
    flags = [
        ("--loader", p["loader"]), ("--dataset_dir", p["dataset_dir"]), ("--config_name", p["config_name"]),
        ("--cluster_config", cluster_config_path), ("--num_workers", p["num_workers"]),
        ("--threads_per_worker", p["threads_per_worker"]), ("--worker_memory_limit", p["worker_memory_limit"]),
        ("--dashboard_port", ":%d" % p["dashboard_port"]), ("--output_root", p["output_root"]),
    ]
    for flag, value in flags:
        if value is not None:
            cmd += [flag, str(value)]
    return cmd + [str(a) for a in p["extra_args"]]


def head_bug(chdir, entry_point):
    """(line number, runner path) when the checkout's gtsfm/runner.py has GTSfM HEAD's cluster bug, else None."""
    if not chdir:
        return None
    runner = os.path.join(chdir, "gtsfm", "runner.py")
    if entry_point[:1] != ["./run"] or not os.path.isfile(runner):
        return None
    with open(runner) as f:
        for number, line in enumerate(f, 1):
            if HEAD_BUG.search(line):
                return number, runner
    return None


def write_patched_runner(runner):
    """A copy of runner beside it with the one bad line fixed; its path."""
    with open(runner) as f:
        text = f.read()
    path = os.path.join(os.path.dirname(runner), PATCHED_NAME)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(HEAD_BUG.sub(HEAD_FIX, text))
    os.replace(tmp, path)
    return path


def write_drain_hook(job_dir):
    """The directory holding the runner's sitecustomize.py (the drain hook, see _gtsfm_job_hook)."""
    where = os.path.join(job_dir, "hook")
    os.makedirs(where, mode=0o700, exist_ok=True)
    text = inspect.getsource(hook) + "\n\ninstall(os.path.dirname(os.path.abspath(__file__)))\n"
    with open(os.path.join(where, "sitecustomize.py"), "w") as f:
        f.write(text)
    return where


def agent_source():
    """The agent's source text, to be run detached with the env's python."""
    return inspect.getsource(agent)


class Jobs(object):
    """The job root on the scheduler: agent.py, the lock, one directory per run."""

    def __init__(self, root, python):
        self.root = root
        self.python = python
        self.lock = os.path.join(root, "lock")
        self.agent = os.path.join(root, "agent.py")

    def ensure_agent(self):
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        text = agent_source()
        try:
            with open(self.agent) as f:
                if f.read() == text:
                    return
        except OSError:
            pass
        tmp = self.agent + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.agent)

    def call(self, *args, **kwargs):
        """Run the agent with the env's python; its JSON answer. agent= a copy elsewhere (check mode writes none)."""
        script = kwargs.get("agent")
        if not script:
            self.ensure_agent()
            script = self.agent
        proc = subprocess.run([self.python, script] + list(args), capture_output=True, text=True,
                              timeout=kwargs.get("timeout", 120), check=False)
        try:
            return json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise JobError("%s could not run the job agent (rc %s): %s. Fix: python must be the cluster env's "
                           "interpreter, with dask, distributed and asyncssh." % (
                               self.python, proc.returncode, (proc.stderr or proc.stdout).strip()[-500:]))

    def holder(self):
        """(run id, its status) of the lock's holder, or (None, None)."""
        try:
            run_id = os.readlink(self.lock)
        except OSError:
            return None, None
        return run_id, agent.read_json(os.path.join(self.root, run_id, "status.json"), {})

    def alive(self, status):
        pid = (status or {}).get("pid")
        if not pid:
            return False
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                return b"supervise" in f.read()
        except OSError:
            return True

    def status(self, run_id):
        return agent.read_json(os.path.join(self.root, run_id, "status.json"), {})

    def last(self):
        try:
            return os.readlink(os.path.join(self.root, "last"))
        except OSError:
            return None


def preflight(p, jobs, hosts):
    """Run the agent's preflight and the local checks; (errors, report)."""
    errors = []
    if p["dataset_dir"] is None:
        pass
    elif not os.path.isdir(p["dataset_dir"]):
        errors.append("%s: dataset_dir %s does not exist. Fix: stage the dataset to the scheduler first." % (
            p["scheduler_name"], p["dataset_dir"]))
    elif not os.listdir(p["dataset_dir"]):
        errors.append("%s: dataset_dir %s is empty. Fix: stage the dataset to the scheduler first." % (
            p["scheduler_name"], p["dataset_dir"]))
    probe = p["output_root"]
    while probe and not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if probe and (not os.access(probe, os.W_OK | os.X_OK) or not os.path.isdir(probe)):
        errors.append("%s: output_root %s is not writable (%s is not a writable directory). Fix: choose a path the "
                      "user can write." % (p["scheduler_name"], p["output_root"], probe))
    if p["chdir"] is None:
        pass
    elif not os.path.isdir(p["chdir"]):
        errors.append("%s: chdir %s does not exist. Fix: point chdir at the GTSfM checkout." % (
            p["scheduler_name"], p["chdir"]))
    elif p["entry_point"][0].startswith("./") and not os.access(os.path.join(p["chdir"], p["entry_point"][0]), os.X_OK):
        errors.append("%s: entry point %s is not an executable in %s. Fix: set chdir to the checkout, or "
                      "entry_point." % (p["scheduler_name"], p["entry_point"][0], p["chdir"]))
    if not (os.path.isfile(p["python"]) and os.access(p["python"], os.X_OK)):
        errors.append("%s: python %s is not an executable. Fix: the cluster env's python, at the same path on "
                      "every node." % (p["scheduler_name"], p["python"]))
        return errors, {}
    bug = head_bug(p["chdir"], p["entry_point"])
    if bug and not p["runner_workaround"]:
        errors.append("%s: %s line %d has GTSfM HEAD's cluster bug (set(w[\"host\"] for w in workers) fails on "
                      "plain host names after minutes of cluster start-up). Fix: runner_workaround: true, or fix that "
                      "line in the checkout." % (p["scheduler_name"], bug[1], bug[0]))
    # The preflight writes nothing that stays: the agent and its input live in a temporary directory.
    with tempfile.TemporaryDirectory(prefix="gtsfm_job-") as tmp:
        spec_path = os.path.join(tmp, "preflight.json")
        agent.write_json(spec_path, {"hosts": hosts, "python": p["python"], "scheduler_name": p["scheduler_name"],
                                     "scheduler_host": hosts[0], "dashboard_port": p["dashboard_port"],
                                     "scheduler_port": p["scheduler_port"]})
        script = os.path.join(tmp, "agent.py")
        with open(script, "w") as f:
            f.write(agent_source())
        report = jobs.call("preflight", spec_path, agent=script)
    return errors + report["errors"], report


def busy_message(p, jobs, holder, status):
    return ("%s: the cluster is busy with job %s (name %r, held by %s, started %s, log %s). Fix: wait for it, or end "
            "it with state: stopped." % (p["scheduler_name"], holder, status.get("name"), status.get("holder") or "?",
                                         _when(status.get("started")), os.path.join(jobs.root, holder, "job.log")))


def new_run_id():
    return "%s-%s" % (datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ"), secrets.token_hex(3))


def start(p, jobs, hosts, report):
    """Take the lock, write the run's files and start the supervisor detached. The run's status."""
    holder, status = jobs.holder()
    if holder:
        if jobs.alive(status):
            raise JobError(busy_message(p, jobs, holder, status), run_id=holder)
        try:
            os.unlink(jobs.lock)  # its supervisor is gone; the new supervisor cleans up what it left
        except OSError:
            pass
    jobs.ensure_agent()
    run_id = new_run_id()
    job_dir = os.path.join(jobs.root, run_id)
    os.makedirs(job_dir, mode=0o700)
    try:
        os.symlink(run_id, jobs.lock)
    except OSError:
        raise JobError("%s: another job took the cluster lock %s just now. Fix: wait for it, or state: stopped." % (
            p["scheduler_name"], jobs.lock))
    cluster_config = p["cluster_config_path"] or os.path.join(job_dir, "cluster.yaml")
    text = render_cluster_config(p["workers"], "the inventory (run %s)" % run_id)
    tmp = cluster_config + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, cluster_config)
    command = runner_command(p, cluster_config)
    notices, remove_after = [], []
    bug = head_bug(p["chdir"], p["entry_point"])
    if bug and p["runner_workaround"]:
        patched = write_patched_runner(bug[1])
        command = [p["python"], patched] + command[len(p["entry_point"]):]
        remove_after.append(patched)
        notices.append("%s line %d has GTSfM HEAD's cluster bug: running a copy with that one line changed to %s "
                       "(%s, removed after the run). Turn off with runner_workaround: false." % (
                           bug[1], bug[0], HEAD_FIX, patched))
    front, logged = [], []
    if p["drain_remote_output"]:
        front.append(write_drain_hook(job_dir))
        logged.append("Dask's SSHCluster stops reading its remote processes' output after start-up, and they block "
                      "once about 2 MiB is unread (dask issue 9033): the runner reads it to the end into this log, "
                      "lines marked [HOST stdout|stderr], through %s/sitecustomize.py. Turn off with "
                      "drain_remote_output: false." % front[0])
    path = front + [p["chdir"]] + [x for x in os.environ.get("PYTHONPATH", "").split(":") if x]
    env = {"PYTHONPATH": ":".join(path),
           "PATH": ":".join([os.path.dirname(p["python"]), os.environ.get("PATH", "/usr/bin:/bin")]),
           # Start-up waits for INFO lines from the remote scheduler and workers (dask issues 8392, 8393).
           "DASK_LOGGING__DISTRIBUTED": "info",
           # A dead node's workers leave the scheduler after this long without a heartbeat (default 5 minutes).
           "DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL": p["worker_ttl"]}
    env.update({k: str(v) for k, v in p["environment"].items()})
    spec = {
        "run_id": run_id, "name": p["name"], "holder": p["holder"], "hosts": sorted(set(hosts), key=hosts.index), "python": p["python"],
        "scheduler_name": p["scheduler_name"], "chdir": p["chdir"], "command": command, "env": env,
        "timeout": p["timeout"], "startup_timeout": p["startup_timeout"],
        "expected_workers": p["num_workers"] * len(hosts), "fail_on_worker_loss": p["fail_on_worker_loss"],
        "worker_loss_grace": 5, "lock_path": jobs.lock, "nodes": report.get("nodes", {}), "notices": notices + logged,
        "remove_after": remove_after, "output_root": p["output_root"], "cluster_config": cluster_config,
        "dashboard_port": p["dashboard_port"], "timing": report.get("timing", {}),
    }
    agent.write_json(os.path.join(job_dir, "spec.json"), spec)
    agent.write_json(os.path.join(job_dir, "status.json"), {
        "run_id": run_id, "state": "starting", "started": time.time(), "name": p["name"], "holder": p["holder"]})
    tmp_last = os.path.join(jobs.root, ".last.tmp")
    if os.path.lexists(tmp_last):
        os.unlink(tmp_last)
    os.symlink(run_id, tmp_last)
    os.replace(tmp_last, os.path.join(jobs.root, "last"))
    with open(os.path.join(job_dir, "supervisor.log"), "ab") as out:
        proc = subprocess.Popen([p["python"], jobs.agent, "supervise", job_dir], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                                cwd=job_dir)
    deadline = time.time() + 10
    while time.time() < deadline:
        status = jobs.status(run_id)
        if status.get("pid") == proc.pid or proc.poll() is not None:
            break
        time.sleep(0.1)
    if proc.poll() is not None and proc.returncode != 0:
        try:
            os.unlink(jobs.lock)
        except OSError:
            pass
        raise JobError("%s: the job supervisor did not start (rc %s): %s" % (
            p["scheduler_name"], proc.returncode,
            " / ".join(log_tail(os.path.join(job_dir, "supervisor.log"), 5))), run_id=run_id)
    return run_id, notices


def _when(ts):
    if not ts:
        return "?"
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def log_tail(path, lines):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def result_files(output_root, limit=200):
    root = os.path.join(output_root, "results")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            found.append(os.path.join(dirpath, name))
            if len(found) >= limit:
                return found
    return found


def describe(jobs, run_id, tail_lines):
    """The module's return values for run_id."""
    job_dir = os.path.join(jobs.root, run_id)
    status = jobs.status(run_id)
    spec = agent.read_json(os.path.join(job_dir, "spec.json"), {})
    started = status.get("started")
    ended = status.get("ended")
    state = status.get("state", "unknown")
    if state not in FINAL_STATES and not jobs.alive(status) and status.get("pid"):
        state = "lost"
    log = os.path.join(job_dir, "job.log")
    tail = log_tail(log, tail_lines)
    out = {
        "run_id": run_id, "state": state, "running": state in ("starting", "running"),
        "reason": status.get("reason"),
        "duration": round((ended or time.time()) - started, 2) if started else None,
        "log": log, "log_tail": tail, "last_line": tail[-1] if tail else "",
        "workers_joined": [{"host": h, "count": c} for h, c in sorted((status.get("workers") or {}).items())],
        "workers_registered": [{"host": h, "count": c}
                               for h, c in sorted((status.get("workers_registered") or {}).items())],
        "expected_workers": status.get("expected_workers"), "all_joined_after": status.get("all_joined_after"),
        "hosts_lost": status.get("hosts_lost", []), "scheduler_address": status.get("scheduler_address"),
        "dashboard_port": status.get("dashboard_port"),
        "result_files": result_files(spec["output_root"]) if state == "finished" and spec.get("output_root") else [],
        "cluster_config": spec.get("cluster_config"), "cleanup_problems": status.get("cleanup_problems", {}),
        "messages": status.get("messages", []),
    }
    if status.get("rc") is not None:
        out["rc"] = status["rc"]  # Ansible takes any rc but 0 (None included) for a failure
    return out


def wait_final(jobs, run_id, seconds):
    """Wait up to seconds for run_id to reach a final state (or lose its supervisor)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        status = jobs.status(run_id)
        if status.get("state") in FINAL_STATES or (status.get("pid") and not jobs.alive(status)):
            return True
        time.sleep(0.5)
    return False


def stop(jobs, run_id, hosts, p, wait_seconds):
    """End run_id: its supervisor ends the runner and cleans every node. True if something was running."""
    status = jobs.status(run_id)
    if status.get("state") in FINAL_STATES:
        return False
    if jobs.alive(status):
        os.kill(status["pid"], signal.SIGTERM)
        if wait_final(jobs, run_id, wait_seconds):
            return True
    # No supervisor (killed, or machine restarted): clean up by the run's tag ourselves.
    spec_path = os.path.join(jobs.root, run_id, "spec.json")
    result = jobs.call("cleanup", spec_path, run_id, timeout=wait_seconds + 30)
    status.update({"state": "stopped", "reason": "stopped on request (its supervisor was gone)",
                   "ended": time.time(), "cleanup": result})
    agent.write_json(os.path.join(jobs.root, run_id, "status.json"), status)
    try:
        if os.readlink(jobs.lock) == run_id:
            os.unlink(jobs.lock)
    except OSError:
        pass
    return True


def run(module, p):
    """The module's work for p (plain params); the result dict (with _failed for fail_json)."""
    module_started = time.time()
    hosts = worker_hosts(p["workers"])
    p["scheduler_name"] = hosts[0]
    jobs = Jobs(os.path.expanduser(p["job_root"]), p["python"])
    state = p["state"]
    distinct = sorted(set(hosts), key=hosts.index)

    if state in ("started", "preflight") or module.check_mode:
        holder, holder_status = jobs.holder()
        if state == "started" and holder and jobs.alive(holder_status) and holder_status.get("name") == p["name"] \
                and not module.check_mode:
            # The same job is running already: report it (a re-run of the play is not a second job).
            out = describe(jobs, holder, p["log_lines"])
            out.update(changed=False, preflight={})
            return out
        if holder and jobs.alive(holder_status):
            # A running job holds the ports the preflight checks: name it rather than its ports.
            raise JobError(busy_message(p, jobs, holder, holder_status), run_id=holder)
        errors, report = preflight(p, jobs, distinct)
        report["timing"] = {"module_started": module_started, "preflight_seconds": round(time.time() - module_started, 3)}
        if errors:
            return {"_failed": True, "msg": "preflight refused the job: " + " | ".join(errors), "errors": errors,
                    "preflight": report.get("nodes", {})}
        if module.check_mode or state == "preflight":
            bug = head_bug(p["chdir"], p["entry_point"])
            msgs = ["%s line %d has GTSfM HEAD's cluster bug: the run will use a copy with that line fixed." % (
                bug[1], bug[0])] if bug else []
            return {"changed": False, "preflight": report.get("nodes", {}), "messages": msgs, "state": "preflight"}
        run_id, notices = start(p, jobs, hosts, report)
        for notice in notices:
            module.warn(notice)
        if p["wait"]:
            while not wait_final(jobs, run_id, 3600):
                pass
        out = describe(jobs, run_id, p["log_lines"])
        out.update(changed=True, preflight=report.get("nodes", {}))
        return _with_failure(out)

    run_id = p["run_id"] or (jobs.holder()[0] if state == "stopped" else None) or jobs.last()
    if state == "stopped":
        if not run_id or jobs.status(run_id).get("state") in FINAL_STATES:
            return {"changed": False, "msg": "no job is running on %s" % hosts[0], "preflight": {},
                    **(describe(jobs, run_id, p["log_lines"]) if run_id else {})}
        stop(jobs, run_id, distinct, p, p["wait_seconds"])
        out = describe(jobs, run_id, p["log_lines"])
        out.update(changed=True, preflight={})
        return out

    # status
    if not run_id:
        return {"_failed": True, "msg": "%s: no run in %s. Fix: start one with state: started." % (
            hosts[0], jobs.root), "preflight": {}}
    if p["wait"]:
        wait_final(jobs, run_id, p["wait_seconds"])
    out = describe(jobs, run_id, p["log_lines"])
    out.update(changed=False, preflight={})
    return _with_failure(out)


def _with_failure(out):
    if out["state"] in ("failed", "timeout", "stopped", "lost"):
        out["_failed"] = True
        tail = "\n".join(out["log_tail"][-8:])
        out["msg"] = "job %s %s: %s. Log %s ends:\n%s" % (
            out["run_id"], out["state"], out.get("reason") or "its supervisor vanished", out["log"], tail)
    return out
