# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of gtsfm.cluster.gtsfm_job (private to this collection): plain functions over plain data.

The module runs on the scheduler. It writes the job agent (_gtsfm_job_agent.py) into the job root and runs it with the
cluster env's python: for the preflight, and detached as the supervisor of a started job.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import datetime
import inspect
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

# ansible-core 2.21's sanity asks for AnsibleModule.run_command; these are plain functions (no AnsibleModule at
# hand), and the supervisor they start must outlive the module in its own session.
# pylint: disable=ansible-bad-function
from ansible_collections.gtsfm.cluster.plugins.module_utils import _gtsfm_job_agent as agent
from ansible_collections.gtsfm.cluster.plugins.module_utils import _gtsfm_job_hook as hook
from ansible_collections.gtsfm.cluster.plugins.module_utils import _gtsfm_job_node as node_half
from ansible_collections.gtsfm.cluster.plugins.module_utils import _gtsfm_workers as gpu
from ansible_collections.gtsfm.cluster.plugins.module_utils import _progress as progress
from ansible_collections.gtsfm.cluster.plugins.module_utils._plain import plain

# GTSfM's runner at HEAD b8f24c75 (_create_dask_client) has set(w["host"] for w in workers): it breaks every
# plain-host cluster config. The call is found in the parsed code (bug_calls), never in comments or strings.
HEAD_FIX = 'set(%(v)s["host"] if isinstance(%(v)s, dict) else %(v)s for %(v)s in workers)'
PATCHED_NAME = ".runner.gtsfm_job_patched.py"
FINAL_STATES = agent.FINAL_STATES
# How long a start waits for its supervisor to record itself (a Python start on a busy scheduler takes seconds).
SUPERVISOR_START_SECONDS = 120


class JobError(Exception):
    """A failure the module reports as one message (fail_json)."""

    def __init__(self, msg, **result):
        super().__init__(msg)
        self.msg = msg
        self.result = result


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
        else:
            host = entry
        if not isinstance(host, str) or not host.strip() or any(c.isspace() for c in host) or "'" in host:
            raise JobError(
                f"workers[{i}] ({entry!r}): not a host name. Fix: a plain host name, or a mapping with 'host'."
            )
        hosts.append(host)
    problem = gpu.gpu_path_problem(workers)
    if problem:
        raise JobError(problem)
    index = gpu.gpu_entry(workers)
    if index is not None:
        # One machine with gpus is GTSfM's own GPU shape, but gtsfm_job supervises an SSHCluster: its workers per
        # host, its nodes' cleanup. The LocalCUDACluster of the GPU path is none of that.
        raise JobError(
            f"workers[{index}] ({workers[index]!r}): has 'gpus', which makes GTSfM's runner start a single-machine "
            "LocalCUDACluster, not the SSH cluster gtsfm_job runs and supervises. Fix: remove gpus for a CPU run over "
            "SSH, or run GTSfM's GPU path on that machine yourself."
        )
    return hosts


def render_cluster_config(workers, source):
    """GTSfM's cluster.yaml text for workers (scheduler first). JSON scalars are YAML, so no YAML library is needed."""
    lines = [
        f"# Written by gtsfm.cluster.gtsfm_job from {source}. GTSfM's shape; the first worker is the scheduler.",
        "workers:",
    ]
    for entry in plain(workers):
        if isinstance(entry, dict):
            lines.append(f"  - {{{', '.join((f'{json.dumps(k)}: {json.dumps(v)}' for k, v in entry.items()))}}}")
        else:
            lines.append(f"  - {json.dumps(entry)}")
    return "\n".join(lines) + "\n"


def runner_command(p, cluster_config_path):
    """The runner's argument list: entry point plus GTSfM's flags, every path absolute."""
    cmd = list(p["entry_point"])
    flags = [
        ("--loader", p["loader"]),
        ("--dataset_dir", p["dataset_dir"]),
        ("--config_name", p["config_name"]),
        ("--cluster_config", cluster_config_path),
        ("--num_workers", p["num_workers"]),
        ("--threads_per_worker", p["threads_per_worker"]),
        ("--worker_memory_limit", p["worker_memory_limit"]),
        ("--dashboard_port", f":{p['dashboard_port']}"),
        ("--output_root", p["output_root"]),
    ]
    for flag, value in flags:
        if value is not None:
            cmd += [flag, str(value)]
    return cmd + [str(a) for a in p["extra_args"]]


def _text_of(node):
    """The str a constant subscript holds (Python 3.8 wraps it in ast.Index), else None."""
    node = getattr(node, "value", node) if type(node).__name__ == "Index" else node
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def bug_calls(tree):
    """The calls set(V["host"] for V in workers) in tree, in source order: GTSfM HEAD's bug as Python parses it."""
    found = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "set"
            and len(node.args) == 1
            and not node.keywords
            and isinstance(node.args[0], ast.GeneratorExp)
        ):
            continue
        gen = node.args[0]
        if len(gen.generators) != 1:
            continue
        comp = gen.generators[0]
        elt = gen.elt
        if (
            isinstance(comp.target, ast.Name)
            and isinstance(comp.iter, ast.Name)
            and comp.iter.id == "workers"
            and not comp.ifs
            and isinstance(elt, ast.Subscript)
            and isinstance(elt.value, ast.Name)
            and elt.value.id == comp.target.id
            and _text_of(elt.slice) == "host"
        ):
            found.append(node)
    return sorted(found, key=lambda n: (n.lineno, n.col_offset))


def head_bug(chdir, entry_point):
    """(line number, runner path) when the checkout's gtsfm/runner.py has GTSfM HEAD's cluster bug, else None.

    A runner this Python cannot parse is not judged (it fails on its own when it runs).
    """
    if not chdir:
        return None
    runner = os.path.join(chdir, "gtsfm", "runner.py")
    if entry_point[:1] != ["./run"] or not os.path.isfile(runner):
        return None
    with open(runner, "rb") as f:
        source = f.read()
    try:
        calls = bug_calls(ast.parse(source, runner))
    except (SyntaxError, ValueError):
        return None
    return (calls[0].lineno, runner) if calls else None


def patched_source(text):
    """text with every bug call replaced by HEAD_FIX, everything else byte for byte."""
    lines = text.splitlines(True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(lineno, col):
        # ast columns count UTF-8 bytes.
        line = lines[lineno - 1]
        return starts[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8", "replace"))

    out = text
    for node in reversed(bug_calls(ast.parse(text))):
        var = node.args[0].generators[0].target.id
        out = (
            out[: offset(node.lineno, node.col_offset)]
            + HEAD_FIX % {"v": var}
            + out[offset(node.end_lineno, node.end_col_offset) :]
        )
    return out


def write_patched_runner(runner):
    """A copy of runner beside it (the same directory: sys.path[0] and __file__ stay as GTSfM expects) with the bug
    call fixed; its path."""
    with open(runner, encoding="utf-8") as f:
        text = f.read()
    path = os.path.join(os.path.dirname(runner), PATCHED_NAME)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(patched_source(text))
    os.replace(tmp, path)
    return path


def write_runner_hook(job_dir, drain, swap):
    """The directory holding the runner's sitecustomize.py (see _gtsfm_job_hook): it drains SSHCluster's remote
    output when drain, and runs swap's patched runner in place of its original when swap is (original, patched)."""
    where = os.path.join(job_dir, "hook")
    os.makedirs(where, mode=0o700, exist_ok=True)
    text = inspect.getsource(hook) + (
        f"\n\ninstall(os.path.dirname(os.path.abspath(__file__)), drain={bool(drain)!r}, "
        f"swap={tuple(swap) if swap else None!r})\n"
    )
    with open(os.path.join(where, "sitecustomize.py"), "w") as f:
        f.write(text)
    return where


def runner_launch(p, job_dir, cluster_config):
    """How the supervisor starts the runner: (command, env, notices, log-only notices, files to remove after).

    The entry point always runs as given (GTSfM's ./run picks uv or python and sets up its environment). With the
    workaround, the runner hook re-executes the interpreter that entry point started, with the same options and
    arguments, on a fixed copy of gtsfm/runner.py beside the original.
    """
    command = runner_command(p, cluster_config)
    notices, logged, remove_after = [], [], []
    swap = None
    bug = head_bug(p["chdir"], p["entry_point"])
    if bug and p["runner_workaround"]:
        patched = write_patched_runner(bug[1])
        swap = (bug[1], patched)
        remove_after.append(patched)
        notices.append(
            f"{bug[1]} line {bug[0]} has GTSfM HEAD's cluster bug: {p['entry_point'][0]} starts a copy with that call "
            f"changed to {HEAD_FIX % {'v': 'w'}} ({patched}, removed after the run) in its place, with the same "
            "interpreter and arguments. Turn off with runner_workaround: false."
        )
    front = []
    if p["drain_remote_output"] or swap:
        front.append(write_runner_hook(job_dir, p["drain_remote_output"], swap))
    if p["drain_remote_output"]:
        logged.append(
            "Dask's SSHCluster stops reading its remote processes' output after start-up, and they block once about 2 "
            "MiB is unread (dask issue 9033): the runner reads it to the end into this log, lines marked [HOST "
            f"stdout|stderr], through {front[0]}/sitecustomize.py. Turn off with drain_remote_output: false."
        )
    path = front + [p["chdir"]] + [x for x in os.environ.get("PYTHONPATH", "").split(":") if x]
    env = {
        "PYTHONPATH": ":".join(path),
        "PATH": ":".join([os.path.dirname(p["python"]), os.environ.get("PATH", "/usr/bin:/bin")]),
        # Start-up waits for INFO lines from the remote scheduler and workers (dask issues 8392, 8393).
        "DASK_LOGGING__DISTRIBUTED": "info",
        # A dead node's workers leave the scheduler after this long without a heartbeat (default 5 minutes).
        "DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL": p["worker_ttl"],
    }
    env.update({k: str(v) for k, v in p["environment"].items()})
    return command, env, notices, logged, remove_after


def agent_files():
    """{file name: source text} of the agent and what it imports, to be run detached with the env's python."""
    return {
        "agent.py": inspect.getsource(agent),
        "_progress.py": inspect.getsource(progress),
        "_gtsfm_job_node.py": inspect.getsource(node_half),
    }


def write_agent(folder):
    """Write the agent's files into folder, each replaced atomically and only when its text changed."""
    for name, text in agent_files().items():
        path = os.path.join(folder, name)
        try:
            with open(path) as f:
                if f.read() == text:
                    continue
        except OSError:
            pass
        tmp = f"{path}.tmp{os.getpid()}"  # two starts at once each write their own
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)


class Jobs:
    """The job root on the scheduler: agent.py, the lock, one directory per run."""

    def __init__(self, root, python):
        self.root = root
        self.python = python
        self.lock = os.path.join(root, "lock")
        self.agent = os.path.join(root, "agent.py")

    def ensure_agent(self):
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        write_agent(self.root)

    def call(self, *args, **kwargs):
        """Run the agent with the env's python; its JSON answer. agent= a copy elsewhere (check mode writes none)."""
        script = kwargs.get("agent")
        if not script:
            self.ensure_agent()
            script = self.agent
        proc = subprocess.run(
            [self.python, script] + list(args),
            capture_output=True,
            text=True,
            timeout=kwargs.get("timeout", 120),
            check=False,
        )
        try:
            return json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise JobError(
                f"{self.python} could not run the job agent (rc {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-500:]}. Fix: python must be the cluster env's "
                "interpreter, with dask, distributed and asyncssh."
            )

    def holder(self):
        """(run id, its status) of the lock's holder, or (None, None)."""
        try:
            run_id = os.readlink(self.lock)
        except OSError:
            return None, None
        return run_id, agent.read_json(os.path.join(self.root, run_id, "status.json"), {})

    def alive(self, status):
        """Whether the run of status is alive: its supervisor, or before the supervisor is recorded, the module that
        is starting it - each the same process as recorded (pid, start time, boot), never a pid alone."""
        status = status or {}
        job_dir = os.path.join(self.root, status["run_id"]) if status.get("run_id") else None
        if status.get("pid"):
            return agent.same_process(status, job_dir)
        return agent.same_process(status.get("starter") or {})

    def take(self, run_id):
        """Point the lock at run_id atomically, breaking it only when its holder is dead: (None, None) when taken,
        else the live holder's (run id, status)."""
        with agent.guarded(self.root):
            try:
                os.symlink(run_id, self.lock)
                return None, None
            except FileExistsError:
                pass
            holder, status = self.holder()
            if holder is not None and self.alive(status):
                return holder, status
            # Its supervisor is gone (the new supervisor cleans up what it left). Under the guard no other starter
            # can judge the same holder dead in between.
            try:
                os.unlink(self.lock)
            except FileNotFoundError:
                pass
            os.symlink(run_id, self.lock)
            return None, None

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
        errors.append(
            f"{p['scheduler_name']}: dataset_dir {p['dataset_dir']} does not exist. Fix: stage the dataset "
            "to the scheduler first."
        )
    elif not os.listdir(p["dataset_dir"]):
        errors.append(
            f"{p['scheduler_name']}: dataset_dir {p['dataset_dir']} is empty. Fix: stage the dataset to the "
            "scheduler first."
        )
    probe = p["output_root"]
    while probe and not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if probe and (not os.access(probe, os.W_OK | os.X_OK) or not os.path.isdir(probe)):
        errors.append(
            f"{p['scheduler_name']}: output_root {p['output_root']} is not writable ({probe} is not a writable "
            "directory). Fix: choose a path the user can write."
        )
    if p["chdir"] is None:
        pass
    elif not os.path.isdir(p["chdir"]):
        errors.append(
            f"{p['scheduler_name']}: chdir {p['chdir']} does not exist. Fix: point chdir at the GTSfM checkout."
        )
    elif p["entry_point"][0].startswith("./") and not os.access(os.path.join(p["chdir"], p["entry_point"][0]), os.X_OK):
        errors.append(
            f"{p['scheduler_name']}: entry point {p['entry_point'][0]} is not an executable in {p['chdir']}. Fix: set "
            "chdir to the checkout, or entry_point."
        )
    if not (os.path.isfile(p["python"]) and os.access(p["python"], os.X_OK)):
        errors.append(
            f"{p['scheduler_name']}: python {p['python']} is not an executable. Fix: the cluster env's python, at the "
            "same path on every node."
        )
        return errors, {}
    bug = head_bug(p["chdir"], p["entry_point"])
    if bug and not p["runner_workaround"]:
        errors.append(
            f'{p["scheduler_name"]}: {bug[1]} line {bug[0]} has GTSfM HEAD\'s cluster bug (set(w["host"] '
            "for w in workers) fails on "
            "plain host names after minutes of cluster start-up). Fix: runner_workaround: true, or fix that "
            "line in the checkout."
        )
    # The preflight writes nothing that stays: the agent and its input live in a temporary directory.
    with tempfile.TemporaryDirectory(prefix="gtsfm_job-") as tmp:
        spec_path = os.path.join(tmp, "preflight.json")
        agent.write_json(
            spec_path,
            {
                "hosts": hosts,
                "python": p["python"],
                "scheduler_name": p["scheduler_name"],
                "scheduler_host": hosts[0],
                "dashboard_port": p["dashboard_port"],
                "scheduler_port": p["scheduler_port"],
            },
        )
        write_agent(tmp)
        script = os.path.join(tmp, "agent.py")
        report = jobs.call("preflight", spec_path, agent=script)
    refused, report["stale_runs"] = classify_runs(jobs, report.get("nodes") or {})
    return errors + report["errors"] + refused, report


def job_origin(jobs, p, run_id, started):
    """Where run_id comes from, carried by each of its processes (GTSFM_JOB_ORIGIN)."""
    return {
        "run": run_id,
        "host": socket.gethostname(),
        "root": os.path.realpath(jobs.root),
        "holder": p["holder"] or "",
        "started": started,
    }


def _ours(jobs, origins):
    """Whether a run's origins say this job root started it (True), another did (False), or they say nothing."""
    parsed = [agent.parse_origin(o) for o in origins]
    known = [o for o in parsed if o]
    if not known:
        return None
    here = (socket.gethostname(), os.path.realpath(jobs.root))
    return all((o.get("host"), o.get("root")) == here for o in known)


def _named(run, host, origin):
    """A run found on host, by name: run id, who started it from where and when, some of its processes."""
    if origin:
        who = (
            f"held by {origin.get('holder') or '?'}, started {_when(origin.get('started'))}, job root "
            f"{origin.get('host')}:{origin.get('root')}"
        )
    else:
        who = (
            "no origin recorded (another job root, or an older gtsfm_job), its first process started "
            f"{_when(run.get('since'))}"
        )
    return (
        f"run {run['run_id']} ({who}) has {run.get('count', 0)} process(es) on {host} (pid "
        f"{', '.join(str(x) for x in run.get('pids', []))}: {run.get('cmd', '')[:100]})"
    )


def classify_runs(jobs, nodes):
    """The runs the preflight found on the nodes: (errors naming those gtsfm_job must not end, {host: run ids} of
    this job root's ended runs, which the new job's supervisor ends before it starts the runner).

    Only a run this job root's records show ended (a final state, or a supervisor that is gone) is ended. A run of
    another job root or controller, one still running here, or one nothing records is refused by name.
    """
    errors, stale = [], {}
    for host in sorted(nodes):
        for run in nodes[host].get("runs") or []:
            run_id = str(run.get("run_id"))
            origins = run.get("origins") or []
            origin = next((o for o in (agent.parse_origin(t) for t in origins) if o), None)
            ours = _ours(jobs, origins)
            recorded = (
                run_id
                and "/" not in run_id
                and run_id not in (".", "..")
                and os.path.isfile(os.path.join(jobs.root, run_id, "spec.json"))
            )
            if ours is False or not recorded:
                errors.append(
                    f"{host}: {_named(run, host, origin)}. gtsfm_job ends only what the ended runs of its own job root "
                    f"({jobs.root}) left. Fix: stop that job where it was started (gtsfm_job state: stopped with its "
                    f"job_root), or wait for it to end; if it is dead, end those processes on {host} yourself."
                )
                continue
            status = jobs.status(run_id)
            if status.get("state") not in FINAL_STATES and jobs.alive(status):
                errors.append(
                    f"{host}: {_named(run, host, origin)}, and that run of this job root is still running. Fix: wait "
                    f"for it, or end it with state: stopped and run_id: {run_id}."
                )
                continue
            stale.setdefault(host, []).append(run_id)
    return errors, stale


def busy_message(p, jobs, holder, status):
    return (
        f"{p['scheduler_name']}: the cluster is busy with job {holder} (name {status.get('name')!r}, held by "
        f"{status.get('holder') or '?'}, started {_when(status.get('started'))}, log "
        f"{os.path.join(jobs.root, holder, 'job.log')}). Fix: wait for it, or end it with state: stopped."
    )


def new_run_id():
    return f"{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def start(p, jobs, hosts, report):
    """Take the lock, write the run's files and start the supervisor detached. The run's status."""
    holder, status = jobs.holder()
    if holder and jobs.alive(status):
        raise JobError(busy_message(p, jobs, holder, status), run_id=holder)
    taken_over = stale_lock_notice(p, jobs, holder, status) if holder else None
    jobs.ensure_agent()
    run_id = new_run_id()
    job_dir = os.path.join(jobs.root, run_id)
    os.makedirs(job_dir, mode=0o700)
    # Before the lock names this run, its status names a live process: this module until the supervisor records
    # itself, so a second start never finds a holder without one.
    started = time.time()
    agent.write_json(
        os.path.join(job_dir, "status.json"),
        {
            "run_id": run_id,
            "state": "starting",
            "started": started,
            "name": p["name"],
            "holder": p["holder"],
            "starter": agent.identity(),
        },
    )
    try:
        holder, status = jobs.take(run_id)
    except OSError as exc:
        shutil.rmtree(job_dir, ignore_errors=True)
        raise JobError(
            f"{p['scheduler_name']}: cannot take the cluster lock {jobs.lock} ({exc}). Fix: check that "
            f"{jobs.root} is writable."
        )
    if holder:
        shutil.rmtree(job_dir, ignore_errors=True)
        raise JobError(busy_message(p, jobs, holder, status), run_id=holder)
    cluster_config = p["cluster_config_path"] or os.path.join(job_dir, "cluster.yaml")
    text = render_cluster_config(p["workers"], f"the inventory (run {run_id})")
    tmp = cluster_config + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, cluster_config)
    command, env, notices, logged, remove_after = runner_launch(p, job_dir, cluster_config)
    notices = ([taken_over] if taken_over else []) + notices  # in the play's warnings and the run's log alike
    spec = {
        "run_id": run_id,
        "name": p["name"],
        "holder": p["holder"],
        "hosts": sorted(set(hosts), key=hosts.index),
        "python": p["python"],
        "scheduler_name": p["scheduler_name"],
        "chdir": p["chdir"],
        "command": command,
        "env": env,
        "timeout": p["timeout"],
        "startup_timeout": p["startup_timeout"],
        "expected_workers": p["num_workers"] * len(hosts),
        "fail_on_worker_loss": p["fail_on_worker_loss"],
        "worker_loss_grace": 5,
        "lock_path": jobs.lock,
        "nodes": report.get("nodes", {}),
        "notices": notices + logged,
        "remove_after": remove_after,
        "output_root": p["output_root"],
        "cluster_config": cluster_config,
        "dashboard_port": p["dashboard_port"],
        "timing": report.get("timing", {}),
        "stale_runs": report.get("stale_runs", {}),
        "origin": job_origin(jobs, p, run_id, started),
    }
    agent.write_json(os.path.join(job_dir, "spec.json"), spec)
    tmp_last = os.path.join(jobs.root, ".last.tmp")
    if os.path.lexists(tmp_last):
        os.unlink(tmp_last)
    os.symlink(run_id, tmp_last)
    os.replace(tmp_last, os.path.join(jobs.root, "last"))
    with open(os.path.join(job_dir, "supervisor.log"), "ab") as out:
        proc = subprocess.Popen(
            [p["python"], jobs.agent, "supervise", job_dir],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd=job_dir,
        )
    # Until the supervisor has recorded itself, this module's own record keeps the lock alive: return only after.
    deadline = time.time() + SUPERVISOR_START_SECONDS
    while time.time() < deadline:
        status = jobs.status(run_id)
        if status.get("pid") == proc.pid or proc.poll() is not None:
            break
        time.sleep(0.1)
    else:
        _end_session(proc)
        agent.release_lock(jobs.lock, run_id)
        said = " / ".join(log_tail(os.path.join(job_dir, "supervisor.log"), 5)) or "no output"
        raise JobError(
            f"{p['scheduler_name']}: the job supervisor did not start within {SUPERVISOR_START_SECONDS} s: {said}",
            run_id=run_id,
        )
    if proc.poll() is not None and proc.returncode != 0:
        agent.release_lock(jobs.lock, run_id)
        raise JobError(
            f"{p['scheduler_name']}: the job supervisor did not start (rc {proc.returncode}): "
            f"{' / '.join(log_tail(os.path.join(job_dir, 'supervisor.log'), 5))}",
            run_id=run_id,
        )
    return run_id, notices


def stale_lock_notice(p, jobs, holder, status):
    """What a start says when the lock names a run whose supervisor is gone: the lock is taken over, and that run
    reads as lost (state: status), its processes ended by their tag before the new runner starts."""
    return (
        "{host}: the cluster lock {lock} named run {run} (name {name!r}, {state}), whose supervisor is gone: it died "
        "with its node or was killed. That run is lost (state: status with run_id {run} says so); this run takes the "
        "lock over, and its supervisor ends by that run's tag whatever the preflight found it left on the "
        "nodes.".format(
            host=p["scheduler_name"],
            lock=jobs.lock,
            run=holder,
            name=(status or {}).get("name"),
            state=(status or {}).get("state", "no status"),
        )
    )


def _end_session(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.wait()


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
        "run_id": run_id,
        "state": state,
        "running": state in ("starting", "running"),
        "reason": status.get("reason"),
        "duration": round((ended or time.time()) - started, 2) if started else None,
        "log": log,
        "log_tail": tail,
        "last_line": tail[-1] if tail else "",
        "status_file": os.path.join(job_dir, "status.json"),
        "workers_joined": [{"host": h, "count": c} for h, c in sorted((status.get("workers") or {}).items())],
        "workers_registered": [
            {"host": h, "count": c} for h, c in sorted((status.get("workers_registered") or {}).items())
        ],
        "expected_workers": status.get("expected_workers"),
        "all_joined_after": status.get("all_joined_after"),
        "hosts_lost": status.get("hosts_lost", []),
        "scheduler_address": status.get("scheduler_address"),
        "dashboard_port": status.get("dashboard_port"),
        "results_archive": status.get("results_archive") if state == "finished" else None,
        "cluster_config": spec.get("cluster_config"),
        "cleanup_problems": status.get("cleanup_problems", {}),
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
    deadline = time.time() + wait_seconds
    while not status.get("pid") and jobs.alive(status) and time.time() < deadline:
        time.sleep(0.2)  # a start in progress: its supervisor records itself in a moment
        status = jobs.status(run_id)
    if status.get("pid") and jobs.alive(status):
        os.kill(status["pid"], signal.SIGTERM)
        if wait_final(jobs, run_id, wait_seconds):
            return True
    # No supervisor (killed, or machine restarted): clean up by the run's tag ourselves.
    spec_path = os.path.join(jobs.root, run_id, "spec.json")
    result = jobs.call("cleanup", spec_path, run_id, timeout=wait_seconds + 30)
    status.update(
        {
            "state": "stopped",
            "reason": "stopped on request (its supervisor was gone)",
            "ended": time.time(),
            "cleanup": result,
        }
    )
    agent.write_json(os.path.join(jobs.root, run_id, "status.json"), status)
    agent.release_lock(jobs.lock, run_id)
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
        if (
            state == "started"
            and holder
            and jobs.alive(holder_status)
            and holder_status.get("name") == p["name"]
            and not module.check_mode
        ):
            # The same job is running already: report it (a re-run of the play is not a second job).
            out = describe(jobs, holder, p["log_lines"])
            out.update(changed=False, preflight={})
            return out
        if holder and jobs.alive(holder_status):
            # A running job holds the ports the preflight checks: name it rather than its ports.
            raise JobError(busy_message(p, jobs, holder, holder_status), run_id=holder)
        errors, report = preflight(p, jobs, distinct)
        report["timing"] = {
            "module_started": module_started,
            "preflight_seconds": round(time.time() - module_started, 3),
        }
        if errors:
            return {
                "_failed": True,
                "msg": "preflight refused the job: " + " | ".join(errors),
                "errors": errors,
                "preflight": report.get("nodes", {}),
            }
        if module.check_mode or state == "preflight":
            bug = head_bug(p["chdir"], p["entry_point"])
            msgs = (
                [f"{bug[1]} line {bug[0]} has GTSfM HEAD's cluster bug: the run will use a copy with that line fixed."]
                if bug
                else []
            )
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
            return {
                "changed": False,
                "msg": f"no job is running on {hosts[0]}",
                "preflight": {},
                **(describe(jobs, run_id, p["log_lines"]) if run_id else {}),
            }
        stop(jobs, run_id, distinct, p, p["wait_seconds"])
        out = describe(jobs, run_id, p["log_lines"])
        out.update(changed=True, preflight={})
        return out

    # status
    if not run_id:
        return {
            "_failed": True,
            "msg": f"{hosts[0]}: no run in {jobs.root}. Fix: start one with state: started.",
            "preflight": {},
        }
    if p["wait"]:
        wait_final(jobs, run_id, p["wait_seconds"])
    out = describe(jobs, run_id, p["log_lines"])
    out.update(changed=False, preflight={})
    return _with_failure(out)


def _with_failure(out):
    if out["state"] in ("failed", "timeout", "stopped", "lost"):
        out["_failed"] = True
        tail = "\n".join(out["log_tail"][-8:])
        out["msg"] = (
            f"job {out['run_id']} {out['state']}: {out.get('reason') or 'its supervisor vanished'}. Log "
            f"{out['log']} ends:\n{tail}"
        )
    return out
