# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The job agent of gtsfm.cluster.gtsfm_job (private to this collection).

The module copies this file to the scheduler's job directory and runs it with the cluster env's own python, so that
the preflight reaches the nodes with the asyncssh and Dask the runner will use, and the supervisor outlives the
module (no SSH session held for the length of a job). Standard library only at import time; asyncssh and
distributed are imported where needed.

    python agent.py preflight SPEC.json      -> one JSON report on stdout
    python agent.py supervise JOB_DIR         -> runs the job to its end (started detached by the module)
    python agent.py cleanup SPEC.json [RUN_ID...] -> ends those runs' Dask processes on every node, JSON report

Every process a job starts carries its run id: the runner gets GTSFM_JOB_RUN_ID and DASK_GTSFM_JOB_RUN_ID in its
environment; Dask's SSHCluster copies the runner's Dask config (which then holds gtsfm_job_run_id) into
DASK_INTERNAL_INHERIT_CONFIG of every remote scheduler, nanny and worker it starts. Beside the run id they carry its
origin (GTSFM_JOB_ORIGIN: scheduler host, job root, holder, start time). The node half (_gtsfm_job_node, shipped
beside this file and sent to every node as program text) reads the environment of the user's own processes on each
node: the probe reports their runs, the cleanup ends those of the run ids it is given (never by process name, never
any run), both by the one rule of _gtsfm_job_node.tags_of.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

try:
    from ansible_collections.gtsfm.cluster.plugins.module_utils import _gtsfm_job_node as node_half
    from ansible_collections.gtsfm.cluster.plugins.module_utils import _progress
except ImportError:  # run on the scheduler as a plain file, beside its copies of _progress.py and _gtsfm_job_node.py
    import _gtsfm_job_node as node_half  # pylint: disable=import-error
    import _progress  # pylint: disable=import-error

# ansible-core 2.21's sanity asks for AnsibleModule.run_command; the agent runs on its own, without an
# AnsibleModule, and starts GTSfM's runner to outlive it.
# pylint: disable=ansible-bad-function

FINAL_STATES = ("finished", "failed", "timeout", "stopped")
SSH_TIMEOUT = 10

# The tags of a job's processes, as the node half reads them (_gtsfm_job_node.tags_of); Dask copies DASK_<NAME>
# into its config as <name>, which SSHCluster hands on to every remote process.
TAG_ENV = node_half.TAG_ENV
DASK_TAG_ENV = "DASK_" + TAG_ENV
ORIGIN_ENV = node_half.ORIGIN_ENV
DASK_ORIGIN_ENV = "DASK_" + ORIGIN_ENV
# Before the origin's JSON: Dask's config reads DASK_* values with ast.literal_eval, which leaves this a string.
ORIGIN_PREFIX = "gtsfm_job "


# What the runner may open at most: Dask's SSHCluster holds one SSH connection per listed worker, its Client and
# comms more, so a cluster of several hundred workers passes the usual soft limit of 1,024 open files.
OPEN_FILES_WANTED = 65536


def raise_open_files(wanted=OPEN_FILES_WANTED):
    """Raise this process's soft limit of open files towards wanted, within the hard limit (no root needed); the
    runner inherits it. Returns (new, old) when it rose, else None."""
    try:
        import resource  # POSIX only, like the rest of the agent

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target, soft
    except (ImportError, ValueError, OSError):
        pass  # the runner starts with the limit it has, as it would without the collection
    return None


def _now():
    return time.time()


def write_json(path, data):
    """Write JSON atomically: a reader never sees half a file."""
    _progress.write_json(path, data)


def read_json(path, default=None):
    """The JSON at path; default where it is missing or half-written (the one rule of module_utils/_progress)."""
    try:
        found = _progress.read(path)
    except OSError:
        found = None
    return default if found is None else found


# ---------------------------------------------------------------- the cluster lock and who holds it

GUARD_NAME = ".lock.guard"


def proc_start(pid):
    """When process pid started (clock ticks after boot, field 22 of /proc/PID/stat), or None when it is gone.

    A pid alone may name another process once its own has ended; the pid with this start time names one process.
    """
    return _progress.pid_start(pid)


def boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def identity(pid=None):
    """What names this process (or pid) for later liveness checks: pid, its start time and the boot."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "pid_start": proc_start(pid), "boot_id": boot_id()}


def same_process(record, job_dir=None):
    """Whether the process record (identity()) names is still running: the pid with the same start time and boot.

    A record without a start time was written by an older gtsfm_job; then only a supervisor of job_dir, by its own
    command line, counts.
    """
    pid = (record or {}).get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    started = proc_start(pid)
    if started is None:
        return False
    if record.get("pid_start") is None:
        if not job_dir:
            return False
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = [a for a in f.read().split(b"\0") if a]
        except OSError:
            return False
        return args[-2:] == [b"supervise", os.fsencode(job_dir)]
    if started != record["pid_start"]:
        return False
    now = boot_id()
    return not (record.get("boot_id") and now and record["boot_id"] != now)


@contextlib.contextmanager
def guarded(root, seconds=30):
    """Hold the job root's guard (an flock the kernel drops when its holder dies) for a check-and-change of the lock.

    Every change of the lock (take, break a dead holder's, release) happens under it, so no two starters can both
    find the holder dead and both take the lock.
    """
    import fcntl

    fd = os.open(os.path.join(root, GUARD_NAME), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.time() + seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.time() > deadline:
                    raise OSError(
                        exc.errno, f"cannot lock {os.path.join(root, GUARD_NAME)} within {seconds} s: {exc.strerror}"
                    )
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def release_lock(lock, run_id):
    """Remove the lock if it is run_id's."""
    with guarded(os.path.dirname(lock)):
        try:
            if os.readlink(lock) == run_id:
                os.unlink(lock)
        except OSError:
            pass


# ---------------------------------------------------------------- SSH, the way Dask connects


def _ssh_error_text(host, scheduler, exc):
    """One sentence naming the host and the fix, for an asyncssh or socket failure."""
    name = type(exc).__name__
    text = str(exc) or name
    if name == "HostKeyNotVerifiable" or "host key" in text.lower():
        return (
            f"{host}: its host key is not trusted by {scheduler}'s ~/.ssh/known_hosts (Dask's asyncssh checks "
            f"strictly): {text}. Fix: run site.yml --tags known_hosts."
        )
    if name in ("PermissionDenied",):
        return f"{host}: refused {scheduler}'s SSH key ({text}). Fix: run site.yml --tags ssh_mesh."
    if isinstance(exc, (TimeoutError,)) or name == "TimeoutError":
        return (
            f"{host}: no SSH answer from {scheduler} within {SSH_TIMEOUT} s. Fix: check the host is up and "
            f"reachable from {scheduler}."
        )
    return (
        f"{host}: unreachable over SSH from {scheduler} ({name}: {text}). Fix: check the host is up, its name resolves "
        f"on {scheduler} and its SSH server answers."
    )


def run_on_hosts(hosts, command_for, timeout=60):
    """Run command_for(host) on every host at once over asyncssh with Dask's options; {host: (rc, out, err)}.

    A connection failure gives rc None and the message in err.
    """
    import asyncio

    import asyncssh

    async def one(host):
        try:
            conn = await asyncio.wait_for(asyncssh.connect(host), SSH_TIMEOUT)
        except BaseException as exc:  # asyncssh raises many types; each becomes one message
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return host, (None, "", exc)
        try:
            async with conn:
                result = await asyncio.wait_for(conn.run(command_for(host)), timeout)
                return host, (result.exit_status, result.stdout or "", result.stderr or "")
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return host, (None, "", exc)

    async def all_hosts():
        return dict(await asyncio.gather(*(one(h) for h in hosts)))

    return asyncio.run(all_hosts())


def node_command(python, *args):
    """A shell command running the node half (_gtsfm_job_node) with args, with python (python3 where the env is
    missing there, so that the probe can say so)."""
    return (
        f'p={shlex.quote(python)}; command -v "$p" >/dev/null 2>&1 || p=python3; "$p" -c '
        f"{shlex.quote(node_half.program_text())} {' '.join(shlex.quote(str(a)) for a in args)}"
    )


def cleanup(hosts, python, run_ids, scheduler):
    """End the processes of run_ids (a list, or {host: list}) on every host. {host: {ended, remaining} or {error}}."""

    def ids(host):
        found = run_ids.get(host, []) if isinstance(run_ids, dict) else run_ids
        return [found] if isinstance(found, str) else list(found)

    out = {}
    results = run_on_hosts(hosts, lambda h: node_command(python, "cleanup", *ids(h)))
    for host, (rc, stdout, err) in results.items():
        if rc is None:
            out[host] = {"error": _ssh_error_text(host, scheduler, err) if not isinstance(err, str) else err}
            continue
        try:
            out[host] = json.loads(stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            out[host] = {"error": f"{host}: cleanup printed no report (rc {rc}): {err.strip()[-300:]}"}
    return out


def origin_text(origin):
    """The value of GTSFM_JOB_ORIGIN for origin (a dict)."""
    return ORIGIN_PREFIX + json.dumps(origin, sort_keys=True)


def parse_origin(text):
    """The origin dict of a GTSFM_JOB_ORIGIN value, or None."""
    if not isinstance(text, str) or not text.startswith(ORIGIN_PREFIX):
        return None
    try:
        origin = json.loads(text[len(ORIGIN_PREFIX) :])
    except ValueError:
        return None
    return origin if isinstance(origin, dict) else None


# ---------------------------------------------------------------- preflight


def _port_holder(port):
    """Who listens on port here, as ss tells it (only the user's own processes show their pid)."""
    try:
        out = subprocess.run(
            ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    m = re.search(r'users:\(\("([^"]+)",pid=(\d+)', out)
    return f" (held by {m.group(1)}, pid {m.group(2)})" if m else ""


def _bind(port):
    """A listening socket on port (0: any free port) on every address, or the OSError."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("0.0.0.0", port))
        s.listen(64)
        return s
    except OSError:
        s.close()
        raise


def _accept_all(sock, stop):
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, dummy = sock.accept()
            conn.close()
        except OSError:
            continue


def preflight(spec):
    """Everything that can be checked in seconds before a long run. {'errors': [...], 'warnings': [...], ...}."""
    errors, warnings = [], []
    hosts = spec["hosts"]
    scheduler = spec["scheduler_name"]
    me = socket.gethostname()
    report = {"errors": errors, "warnings": warnings, "nodes": {}, "scheduler": scheduler}

    # Ports on the scheduler: the dashboard must be free (Dask silently moves it otherwise); the scheduler port too.
    listeners = []
    dashboard = spec.get("dashboard_port")
    if dashboard:
        try:
            listeners.append(_bind(dashboard))
        except OSError as exc:
            errors.append(
                f"{scheduler}: dashboard port {dashboard} is busy{_port_holder(dashboard)} ({exc.strerror}); Dask "
                "would silently move the dashboard. Fix: stop that process (a job left over?) or set dashboard_port."
            )
    try:
        probe = _bind(spec.get("scheduler_port") or 0)
        listeners.append(probe)
        probe_port = probe.getsockname()[1]
    except OSError as exc:
        probe_port = None
        errors.append(
            f"{scheduler}: scheduler port {spec.get('scheduler_port')} is "
            f"busy{_port_holder(spec.get('scheduler_port') or 0)} ({exc.strerror}). Fix: stop that process "
            "or set scheduler_port."
        )
    stop = threading.Event()
    threads = [threading.Thread(target=_accept_all, args=(s, stop), daemon=True) for s in listeners]
    for t in threads:
        t.start()
    try:
        results = run_on_hosts(
            hosts, lambda h: node_command(spec["python"], "probe", spec["scheduler_host"], probe_port or 9), timeout=30
        )
    finally:
        stop.set()
        for s in listeners:
            s.close()

    local = {"python": sys.executable, "dask": None, "distributed": None}
    for name in ("dask", "distributed"):
        local[name], error = node_half.version_of(name)
        if error:  # an env without Dask cannot run the job at all
            errors.append(
                f"{scheduler}: {spec['python']} does not have {name} ({error}). Fix: install the cluster env (dask and "
                "distributed) at that path."
            )
    for host in hosts:
        rc, out, err = results[host]
        if rc is None:
            errors.append(_ssh_error_text(host, scheduler, err))
            continue
        try:
            node = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            errors.append(
                f"{host}: the probe with {spec['python']} failed (rc {rc}: {(err or out).strip()[-200:]}). Fix: "
                f"install the cluster env at {spec['python']} on {host}, the same path as on {scheduler}."
            )
            continue
        report["nodes"][host] = node
        if os.path.realpath(node["python"]) != os.path.realpath(spec["python"]) and node["python"] != spec["python"]:
            errors.append(
                f"{host}: no python at {spec['python']} (found only {node['python']}). Fix: install the cluster env at "
                f"the same path on every node; Dask starts {spec['python']} there."
            )
            continue
        for name in ("dask", "distributed"):
            if node.get(name) is None:
                errors.append(
                    f"{host}: {spec['python']} does not have {name} ({node.get(name + '_error')}). Fix: "
                    f"install the cluster env on {host}."
                )
            elif local[name] and node[name] != local[name]:
                errors.append(
                    f"{host}: {name} {node[name]}, but {local[name]} on {scheduler} (the scheduler). Fix: "
                    "install the same env on every node."
                )
        if probe_port and node.get("tcp") != "ok":
            errors.append(
                f"{host}: cannot open TCP to {spec['scheduler_host']}:{probe_port}, where Dask's scheduler "
                f"listens ({node.get('tcp')}). Fix: allow TCP from "
                f"the workers to the scheduler (firewall, name resolution of {spec['scheduler_host']})."
            )
    report["local"] = local
    report["me"] = me
    return report


# ---------------------------------------------------------------- results

RESULTS_ARCHIVE = "results.tar.gz"


def pack_results(output_root, job_dir):
    """Pack every file under output_root/results into job_dir/results.tar.gz: written under a temporary name and
    renamed when complete, so a fetch never sees half an archive. Its summary (archive, count, bytes, skipped).

    Regular files and directories only, each stored with its own bytes (no links to follow on the controller) and
    without setuid, setgid or world-write bits; symlinks, devices, FIFOs and sockets are skipped and named.
    """
    import stat
    import tarfile

    root = os.path.join(output_root, "results")
    archive = os.path.join(job_dir, RESULTS_ARCHIVE)
    tmp = f"{archive}.tmp{os.getpid()}"
    count = total = 0
    skipped = []

    def info(name, st, kind):
        entry = tarfile.TarInfo(name)
        entry.type = kind
        entry.mode = stat.S_IMODE(st.st_mode) & 0o755 | (0o755 if kind == tarfile.DIRTYPE else 0o644)
        entry.mtime = int(st.st_mtime)
        entry.size = st.st_size if kind == tarfile.REGTYPE else 0
        return entry

    with _progress.replacing(tmp, archive), tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel = os.path.relpath(dirpath, root)
            if rel != ".":
                tar.addfile(info(rel, os.lstat(dirpath), tarfile.DIRTYPE))
            for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                path = os.path.join(dirpath, name)
                arcname = os.path.normpath(os.path.join(rel, name))
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode):
                    skipped.append(arcname)
                    continue
                with open(path, "rb") as f:
                    tar.addfile(info(arcname, os.fstat(f.fileno()), tarfile.REGTYPE), f)
                count += 1
                total += st.st_size
    return {
        "path": archive,
        "count": count,
        "bytes": total,
        "archive_bytes": os.path.getsize(archive),
        "skipped": skipped[:20],
        "skipped_count": len(skipped),
        "root": root,
    }


# ---------------------------------------------------------------- supervision


class Supervisor:
    """Runs one job: the runner detached from any SSH session, its log, its deadline, its workers, its cleanup."""

    def __init__(self, job_dir):
        self.job_dir = job_dir
        self.spec = read_json(os.path.join(job_dir, "spec.json"))
        self.status_path = os.path.join(job_dir, "status.json")
        self.log_path = os.path.join(job_dir, "job.log")
        self.stop_requested = None
        self.status = {
            "run_id": self.spec["run_id"],
            "name": self.spec.get("name"),
            "timing": self.spec.get("timing", {}),
            "holder": self.spec.get("holder"),
            "state": "starting",
            "started": _now(),
            "workers": {},
            "workers_registered": {},
            "expected_workers": self.spec["expected_workers"],
            "scheduler_address": None,
            "hosts_lost": [],
            "messages": [],
        }
        # pid, pid_start and boot_id: the module and a later start judge the job alive by all three.
        self.status.update(identity())
        self.lock = threading.RLock()
        self.addr_to_host = {}
        self.worker_events = set()  # (scheduler timestamp, add-worker | remove-worker, worker address)
        self.applied = ()  # the latest of them applied to members and peak
        self.members = {}  # worker address -> host, registered now
        self.counts = {}  # host -> workers registered there now
        self.peak = {}  # host -> most workers registered there at once
        self.all_joined_at = None  # the scheduler's timestamp of the join that completed the cluster

    def save(self, **changes):
        with self.lock:
            self.status.update(changes)
            self.status["updated"] = _now()
            self.status.update(self.progress_fields())
            write_json(self.status_path, self.status)

    def progress_fields(self):
        """The job's status as a progress record (module_utils/_progress): workers registered of those expected."""
        state = self.status["state"]
        # While it runs, the workers registered now; once it is over, the most that were registered at once.
        workers = self.status.get("workers" if state in FINAL_STATES else "workers_registered") or {}
        return {
            "what": f"job {self.status.get('name') or self.status['run_id']}",
            "phase": state,
            "unit": "workers",
            "done": sum(workers.values()),
            "total": self.status["expected_workers"],
            "nodes": dict((h, {"done": n}) for h, n in workers.items()),
            "finished": state in FINAL_STATES,
            "failed": state in FINAL_STATES and state != "finished",
            "msg": self.status.get("reason") or "",
        }

    def note(self, text):
        with open(self.log_path, "a") as f:
            f.write(f"[gtsfm_job] {text}\n")
        with self.lock:
            self.status["messages"].append(text)

    def on_signal(self, signum, frame):
        self.stop_requested = "stopped"

    def host_of(self, address):
        """Inventory name of a worker's address (its IP), as the preflight learned the nodes' addresses."""
        return self.addr_to_host.get(address, address)

    def on_events(self, events):
        """Apply the scheduler's own add-worker / remove-worker events (topic "all"), each once, in time order.

        The events carry the scheduler's timestamps, so a worker that joined and left between two looks of ours, or
        a job that ends right after the last join, is still counted, and the join time is the scheduler's, not ours.
        """
        with self.lock:
            new = set()
            for stamp, msg in events:
                if isinstance(msg, dict) and msg.get("action") in ("add-worker", "remove-worker"):
                    key = (stamp, msg["action"], str(msg.get("worker") or ""))
                    if key not in self.worker_events:
                        new.add(key)
            if not new:
                return
            self.worker_events |= new
            if min(new) < self.applied:
                # History arrived after a later live event: replay everything (two events per worker) in order.
                self.members, self.counts, self.peak, self.all_joined_at, self.applied = {}, {}, {}, None, ()
                new = self.worker_events
            for key in sorted(new):
                stamp, action, address = key
                if action == "add-worker" and address not in self.members:
                    host = self.members[address] = self.host_of(_address_host(address))
                    self.counts[host] = self.counts.get(host, 0) + 1
                    self.peak[host] = max(self.peak.get(host, 0), self.counts[host])
                elif action == "remove-worker" and address in self.members:
                    self.counts[self.members.pop(address)] -= 1
                if self.all_joined_at is None and len(self.members) >= self.spec["expected_workers"]:
                    self.all_joined_at = stamp
                self.applied = key
            self.status["workers"] = dict(sorted(self.peak.items()))
            self.status["workers_registered"] = {h: n for h, n in sorted(self.counts.items()) if n}

    def monitor(self, address, runner):
        """Follow the scheduler's worker events (and its dashboard port) until the runner ends."""
        _yield_cpu()
        try:
            from distributed import Client
        except ImportError as exc:
            self.note(f"cannot watch the workers: {exc}")
            return
        client = None
        saved = None
        seen = set()
        gone_since = {}
        while runner.poll() is None and not self.stop_requested:
            try:
                if client is None:
                    client = Client(address, timeout=10, set_as_default=False)
                    # Subscribe first, then read the history: an event in between comes twice, and counts once.
                    client.subscribe_topic("all", lambda event: self.on_events([event]))
                    self.on_events(client.get_events("all"))
                info = client.scheduler_info()
            except Exception:  # the scheduler closing at the end of a job looks the same
                _close_quietly(client)
                client = None
                time.sleep(1)
                continue
            dashboard = (info.get("services") or {}).get("dashboard")
            if dashboard and self.status.get("dashboard_port") is None:
                self.save(dashboard_port=dashboard)
                if self.spec.get("dashboard_port") and dashboard != self.spec["dashboard_port"]:
                    self.note(
                        f"the dashboard listens on port {dashboard}, not {self.spec['dashboard_port']}: Dask "
                        "moved it because that port was busy"
                    )
            with self.lock:
                seen_now = (self.status["workers"], self.status["workers_registered"])
            if seen_now != saved:
                saved = (dict(seen_now[0]), dict(seen_now[1]))
                self.save()
            per_host = self.status["workers_registered"]
            seen.update(per_host)
            for host in seen:
                if host in per_host:
                    gone_since.pop(host, None)
                    continue
                gone_since.setdefault(host, _now())
                lost = _now() - gone_since[host] > self.spec["worker_loss_grace"] and self.spec["fail_on_worker_loss"]
                if lost and host not in self.status["hosts_lost"]:
                    self.status["hosts_lost"].append(host)
                    self.note(f"{host}: all its workers left the cluster while the job ran")
            time.sleep(0.5)
        _close_quietly(client)

    def run(self):
        spec = self.spec
        # Import Dask's client while the runner starts, so that watching the workers adds no import time to the
        # moment every worker is seen joined.
        threading.Thread(target=_import_quietly, args=("distributed",), daemon=True).start()
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        for host, node in (spec.get("nodes") or {}).items():
            for address in node.get("addresses", []):
                self.addr_to_host.setdefault(address, host)
        if not self.claim():
            return
        # The preflight found, on each node, the processes of this job root's ended runs (and refused the job for any
        # other run's); end those first, by their run ids only.
        stale = {h: ids for h, ids in (spec.get("stale_runs") or {}).items() if ids}
        before = {}
        if stale:
            left = "; ".join(f"{h}: {', '.join(ids)}" for h, ids in sorted(stale.items()))
            self.note(f"run {spec['run_id']}: ending what earlier runs of this job root left: {left}")
            before = cleanup(sorted(stale), spec["python"], stale, spec["scheduler_name"])
        for host, res in sorted(before.items()):
            if res.get("ended"):
                self.note(
                    f"{host}: ended {len(res['ended'])} process(es) an earlier job left: "
                    f"{'; '.join(e['cmd'][:80] for e in res['ended'])}"
                )
        for message in spec.get("notices", []):
            self.note(message)
        env = dict(os.environ)
        env.update(spec["env"])
        env[TAG_ENV] = spec["run_id"]
        env[DASK_TAG_ENV] = spec["run_id"]
        if spec.get("origin"):
            # Beside the run id, who started it and from where: another job root that meets these processes on a
            # shared node names them instead of ending them.
            env[ORIGIN_ENV] = env[DASK_ORIGIN_ENV] = origin_text(spec["origin"])
        raised = raise_open_files()
        if raised:
            self.note(f"open files allowed to the runner: {raised[0]} (was {raised[1]})")
        self.note(f"starting in {spec['chdir']}: {' '.join(shlex.quote(a) for a in spec['command'])}")
        log = open(self.log_path, "ab")  # noqa: SIM115 - the runner process's stdout, open while it runs
        try:
            runner = subprocess.Popen(
                spec["command"],
                cwd=spec["chdir"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            self.note(f"cannot start the runner: {exc}")
            self.finish("failed", None, f"cannot start {spec['command'][0]}: {exc}")
            return
        started = _now()
        self.save(state="running", runner_pid=runner.pid, runner_started=started)
        address_re = re.compile(r"Scheduler at:\s+(\S+://\S+)")
        watcher = None
        reason = None
        state = None
        offset = 0
        pending = b""
        all_joined = False
        while True:
            rc = runner.poll()
            if rc is not None:
                break
            if watcher is None:
                # Read the log's new complete lines for the scheduler's address.
                try:
                    with open(self.log_path, "rb") as f:
                        f.seek(offset)
                        data = f.read()
                    offset += len(data)
                    pending += data
                    cut = pending.rfind(b"\n") + 1
                    text, pending = pending[:cut].decode("utf-8", "replace"), pending[cut:][-65536:]
                    m = address_re.search(text)
                    if m and watcher is None:
                        self.save(scheduler_address=m.group(1))
                        watcher = threading.Thread(target=self.monitor, args=(m.group(1), runner), daemon=True)
                        watcher.start()
                except OSError:
                    pass
            elapsed = _now() - started
            joined = sum(self.status["workers"].values())
            if not all_joined and self.all_joined_at is not None:
                all_joined = True
                # The scheduler runs on this host under GTSfM's runner; a scheduler elsewhere may have another clock.
                after = min(max(self.all_joined_at - started, 0.0), elapsed)
                self.save(all_joined_after=round(after, 2))
                counts = ", ".join(f"{h} x{n}" for h, n in sorted(self.status["workers"].items()))
                self.note(f"all {joined} workers joined after {after:.1f} s: {counts}")
            if self.stop_requested:
                state, reason = "stopped", "stopped on request"
            elif spec["timeout"] and elapsed > spec["timeout"]:
                state, reason = "timeout", f"the job ran past its timeout of {spec['timeout']} s"
            elif not all_joined and spec["startup_timeout"] and elapsed > spec["startup_timeout"]:
                have = self.status["workers"]
                missing = [h for h in spec["hosts"] if not have.get(h)]
                counts = ", ".join(f"{h} x{n}" for h, n in sorted(have.items())) or "none"
                state, reason = (
                    "failed",
                    (
                        f"only {joined} of {spec['expected_workers']} workers joined within "
                        f"{spec['startup_timeout']} s (joined: {counts}; none from: {', '.join(missing) or '-'})"
                    ),
                )
            elif self.status["hosts_lost"]:
                state, reason = (
                    "failed",
                    (f"lost host(s) {', '.join(self.status['hosts_lost'])}: every worker there left while the job ran"),
                )
            if state:
                break
            time.sleep(0.5 if all_joined else 0.1)
        if state:
            self.note(f"{reason}: ending the runner (process group {runner.pid})")
            _end_group(runner)
            rc = runner.returncode
        elif rc != 0:
            state, reason = "failed", f"the runner exited with rc {rc}"
        else:
            state = "finished"
        self.finish(state, rc, reason)

    def claim(self):
        """Record this supervisor as the lock's holder, if the lock is still this run's (a start that took over a
        lock it found dead must not leave two jobs running)."""
        lock = self.spec["lock_path"]
        with guarded(os.path.dirname(lock)):
            try:
                holder = os.readlink(lock)
            except OSError:
                holder = None
            if holder == self.spec["run_id"]:
                self.save()
                return True
        self.save(
            state="failed",
            ended=_now(),
            reason=f"the cluster lock {lock} is not this run's (it names {holder or 'nothing'}): not started",
        )
        return False

    def finish(self, state, rc, reason):
        spec = self.spec
        after = cleanup(spec["hosts"], spec["python"], [spec["run_id"]], spec["scheduler_name"])
        left = {}
        for host, res in sorted(after.items()):
            if res.get("ended"):
                self.note(f"{host}: ended {len(res['ended'])} leftover process(es) of this run")
            if res.get("remaining") or res.get("error"):
                left[host] = res
                if host not in self.status["hosts_lost"] or res.get("remaining"):
                    what = res.get("error") or f"still running: {res['remaining']}"
                    self.note(f"cleanup on {host}: {what}")
        for path in spec.get("remove_after", []):
            try:
                os.unlink(path)
            except OSError:
                pass
        results = None
        if state == "finished" and spec.get("output_root"):
            # The whole results tree as one file, complete before the state says finished: what the role fetches.
            try:
                results = pack_results(spec["output_root"], self.job_dir)
            except (OSError, EOFError, ValueError) as exc:
                state, reason = (
                    "failed",
                    (
                        f"cannot pack {spec['output_root']}/results into "
                        f"{os.path.join(self.job_dir, RESULTS_ARCHIVE)}: {exc}"
                    ),
                )
            else:
                self.note(f"packed {results['count']} result files ({results['bytes']} bytes) into {results['path']}")
                if results["skipped_count"]:
                    more = results["skipped_count"] - len(results["skipped"])
                    self.note(
                        f"not packed (not regular files): {', '.join(results['skipped'])}"
                        + (f" and {more} more" if more > 0 else "")
                    )
        if reason:
            self.note(reason)
        self.save(
            state=state,
            rc=rc,
            reason=reason,
            ended=_now(),
            cleanup=after,
            cleanup_problems=left,
            results_archive=results,
        )
        release_lock(spec["lock_path"], spec["run_id"])


def _address_host(address):
    """The host part of a Dask address (tcp://10.0.0.2:40123, tls://[fe80::1]:8786)."""
    rest = address.split("://", 1)[-1]
    if rest.startswith("["):
        return rest[1:].split("]", 1)[0]
    return rest.rsplit(":", 1)[0] if ":" in rest else rest


def _close_quietly(client):
    if client is not None:
        try:
            client.close(timeout=2)
        except Exception:  # closing a client of a dying scheduler may raise anything
            pass


def _yield_cpu():
    """Lower the calling thread's priority (Linux keeps a nice value per thread): the supervisor's watching must not
    take CPU from the job it watches, on a scheduler host that also runs workers. The runner, started from the main
    thread, keeps the user's priority; join times come from the scheduler's events, so they do not suffer."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass


def _import_quietly(name):
    _yield_cpu()
    try:
        __import__(name)
    except Exception:  # the monitor reports a missing distributed itself
        pass


def _end_group(proc, grace=10):
    """SIGTERM the runner's process group, then SIGKILL what is left after grace seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except OSError:
            pass
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _say(text):
    sys.stdout.write(text + "\n")


def main(argv):
    if len(argv) < 2:
        _say(__doc__)
        return 2
    if argv[0] == "preflight":
        _say(json.dumps(preflight(read_json(argv[1]))))
        return 0
    if argv[0] == "cleanup":
        spec = read_json(argv[1])
        _say(json.dumps(cleanup(spec["hosts"], spec["python"], argv[2:] or [spec["run_id"]], spec["scheduler_name"])))
        return 0
    if argv[0] == "supervise":
        Supervisor(argv[1]).run()
        return 0
    _say(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
