# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node half of gtsfm.cluster.gtsfm_job (private to this collection): what its job agent runs on every node.

The agent (on the scheduler) sends this file's text (program_text()) to each node over SSH and runs it there with
the cluster env's python:

    python -c TEXT probe SCHEDULER_HOST PORT   -> one JSON line: python, versions, TCP to the scheduler, the runs here
    python -c TEXT cleanup RUN_ID...           -> one JSON line: the processes of those runs it ended, any left

Standard library only. One rule (tags_of) says which process is a job's and of which run: the probe counts and the
cleanup ends exactly the processes tagged_processes() finds, so the two never disagree.

A job's processes carry their run id: the runner gets GTSFM_JOB_RUN_ID (and DASK_GTSFM_JOB_RUN_ID) in its
environment, and Dask's SSHCluster copies the runner's Dask config, which then holds gtsfm_job_run_id, into
DASK_INTERNAL_INHERIT_CONFIG of every remote scheduler, nanny and worker it starts. Beside the run id they carry
its origin (GTSFM_JOB_ORIGIN, gtsfm_job_origin in Dask's config).
"""

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time

try:
    from ansible_collections.gtsfm.cluster.plugins.module_utils._progress import stat_start
except ImportError:
    try:  # on the scheduler, imported by the agent beside its copy of _progress.py
        from _progress import stat_start  # pylint: disable=import-error
    except ImportError:  # on a node: program_text() puts _progress.stat_start's source before this file's
        pass

# ansible-core 2.21's sanity asks for AnsibleModule.run_command; this runs on a node on its own, without Ansible.
# pylint: disable=ansible-bad-function

TAG_ENV = "GTSFM_JOB_RUN_ID"
ORIGIN_ENV = "GTSFM_JOB_ORIGIN"
# The runner also gets DASK_<NAME> of each, which Dask reads into its config as <name> (lower case; - and _ alike),
# and SSHCluster passes that config to its remote processes here.
DASK_CONFIG_ENV = "DASK_INTERNAL_INHERIT_CONFIG"
USAGE = "usage: python -c TEXT probe SCHEDULER_HOST PORT | python -c TEXT cleanup RUN_ID...\n"
# How long the cleanup waits after SIGTERM before it sends SIGKILL.
TERM_GRACE = 5.0


def _dask_config(value):
    """The dict Dask serialised into DASK_INTERNAL_INHERIT_CONFIG (urlsafe base64 of JSON), or {} when it is not."""
    try:
        config = json.loads(base64.urlsafe_b64decode(value + b"=" * (-len(value) % 4)).decode("utf-8"))
    except (ValueError, TypeError):  # binascii.Error, UnicodeDecodeError and JSONDecodeError are ValueErrors
        return {}
    return config if isinstance(config, dict) else {}


def _run_id(value):
    """A run id as text, or None for what is not one: empty, or not a string or a number (Dask's config reads
    DASK_* values with ast.literal_eval, so a run id may come back as a number)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    elif isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        return None
    return value


def tags_of(environ):
    """(run ids, origins) that the process with this /proc/<pid>/environ (bytes) carries, each a sorted list, or None
    when it carries no run id: the one rule for "a process of a gtsfm_job run".

    A run id counts in the environment (GTSFM_JOB_RUN_ID) or in the Dask config SSHCluster passed on; an origin only
    beside one. Anything malformed (no '=', bytes that are not UTF-8, a config that is not Dask's base64 JSON, a
    run id that is empty or a list) is not a tag and never an error.
    """
    ids, origins = set(), set()
    for item in environ.split(b"\0"):
        key, dummy, value = item.partition(b"=")
        key = key.decode("utf-8", "replace")
        if key == TAG_ENV:
            ids.add(_run_id(value))
        elif key == ORIGIN_ENV and value:
            origins.add(value.decode("utf-8", "replace"))
        elif key == DASK_CONFIG_ENV:
            for name, setting in _dask_config(value).items():
                name = str(name).replace("-", "_")
                if name == TAG_ENV.lower():
                    ids.add(_run_id(setting))
                elif name == ORIGIN_ENV.lower() and isinstance(setting, str) and setting:
                    origins.add(setting)
    ids.discard(None)
    return (sorted(ids), sorted(origins)) if ids else None


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _boot_time(proc):
    """The boot time (seconds since the epoch) from <proc>/stat, or None."""
    for line in (_read(os.path.join(proc, "stat")) or b"").splitlines():
        if line.startswith(b"btime "):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


def tagged_processes(proc="/proc", skip=()):
    """{pid: {ids, origins, cmd, since}} of every process here whose environment carries a run id (tags_of),
    skip's pids aside. cmd is its command line (at most 200 characters), since its start (seconds since the epoch)
    or None where either cannot be read; neither decides whether it counts."""
    boot = _boot_time(proc)
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for name in os.listdir(proc):
        if not name.isdigit() or int(name) in skip:
            continue
        environ = _read(os.path.join(proc, name, "environ"))
        tags = tags_of(environ) if environ is not None else None
        if tags is None:
            continue
        cmd = (_read(os.path.join(proc, name, "cmdline")) or b"").replace(b"\0", b" ").decode("utf-8", "replace")
        ticks = stat_start((_read(os.path.join(proc, name, "stat")) or b"").decode("ascii", "replace"))
        found[int(name)] = {
            "ids": tags[0],
            "origins": tags[1],
            "cmd": cmd.strip()[:200],
            "since": boot + ticks / tick if boot is not None and ticks is not None else None,
        }
    return found


def _not_me():
    # This program and the shell that SSH started it from.
    return (os.getpid(), os.getppid())


def runs_here(proc="/proc"):
    """(the number of tagged processes, the runs they belong to: each with its origins, count, a few pids, and its
    first process's start and command line)."""
    found = tagged_processes(proc, _not_me())
    runs = {}
    for pid, tagged in sorted(found.items()):
        for run_id in tagged["ids"]:
            run = runs.setdefault(
                run_id,
                {
                    "run_id": run_id,
                    "origins": [],
                    "pids": [],
                    "count": 0,
                    "since": tagged["since"],
                    "cmd": tagged["cmd"][:160],
                },
            )
            run["origins"] = sorted(set(run["origins"]) | set(tagged["origins"]))
            run["count"] += 1
            if len(run["pids"]) < 5:
                run["pids"].append(pid)
            since = tagged["since"]
            if since is not None and (run["since"] is None or since < run["since"]):
                run["since"], run["cmd"] = since, tagged["cmd"][:160]
    return len(found), [runs[k] for k in sorted(runs)]


def cleanup(wanted, proc="/proc", grace=TERM_GRACE):
    """End the processes of the run ids in wanted (SIGTERM, then SIGKILL after grace seconds). There is no wildcard:
    no run id given, nothing ended. {ended: [{pid, cmd}], remaining: [pid]}."""
    wanted = set(wanted)

    def targets():
        if not wanted:
            return {}
        return {pid: t["cmd"] for pid, t in tagged_processes(proc, _not_me()).items() if wanted.intersection(t["ids"])}

    victims = targets()
    for pid in victims:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.time() + grace
    left = victims
    while left and time.time() < deadline:
        time.sleep(0.2)
        left = {p: c for p, c in targets().items() if p in victims}
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if left:
        time.sleep(0.2)
    return {
        "ended": [{"pid": p, "cmd": c} for p, c in sorted(victims.items())],
        "remaining": sorted(p for p in targets() if p in victims),
    }


def version_of(name):
    """(installed version of package name, None) or (None, why not), importing it only when metadata cannot tell.

    Importing distributed costs about 0.3 s of CPU per node (N times that where nodes share cores), and the preflight
    must take seconds. The metadata counts only when it sits where the package imports from: a copy that shadows the
    installed one (user site, PYTHONPATH, a source tree) is imported to read its own version.
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if spec is None:
        return None, f"ModuleNotFoundError: No module named {name!r}"
    where = list(spec.submodule_search_locations or []) or [spec.origin or ""]
    root = os.path.realpath(os.path.dirname(where[0]))
    try:
        from importlib.metadata import PackageNotFoundError, distribution
    except ImportError:  # Python 3.7
        pass
    else:
        try:
            dist = distribution(name)
            if os.path.realpath(str(dist.locate_file(""))) == root:
                return dist.version, None
        except PackageNotFoundError:
            pass
    try:
        return str(__import__(name).__version__), None
    except Exception as exc:  # a broken package may raise anything on import
        return None, f"{type(exc).__name__}: {exc}"


def _addresses():
    """This node's addresses, by its name and by hostname -I."""
    found = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(info[4][0])
    except OSError:
        pass
    try:
        found.update(
            subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5, check=False).stdout.split()
        )
    except (OSError, subprocess.SubprocessError):
        pass
    return sorted(found)


def probe(scheduler_host, port, proc="/proc"):
    """What the preflight needs to know of this node."""
    out = {
        "python": sys.executable,
        "python_version": ".".join(str(n) for n in sys.version_info[:3]),
        "hostname": socket.gethostname(),
    }
    for name in ("dask", "distributed", "bokeh"):
        out[name], error = version_of(name)
        if error and name != "bokeh":
            out[name + "_error"] = error
    try:
        with socket.create_connection((scheduler_host, int(port)), timeout=5):
            out["tcp"] = "ok"
    except (OSError, ValueError) as exc:
        out["tcp"] = str(exc)
    out["addresses"] = _addresses()
    out["leftovers"], out["runs"] = runs_here(proc)
    return out


def program_text():
    """The program the agent sends to a node: _progress.stat_start's source, then this file's."""
    import inspect

    return inspect.getsource(stat_start) + "\n\n" + inspect.getsource(sys.modules[__name__])


def main(argv):
    if argv[:1] == ["probe"] and len(argv) == 3:
        report = probe(argv[1], argv[2])
    elif argv[:1] == ["cleanup"]:
        report = cleanup(argv[1:])
    else:
        sys.stderr.write(USAGE)  # not __doc__: as program text this file's docstring comes second
        return 2
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
