# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of gtsfm_job's logic: cluster config, command line, HEAD bug, lock, preflight's local checks, cleanup."""

from __future__ import annotations

import ast
import base64
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.gtsfm.cluster.plugins.module_utils import _gtsfm_job as job
from ansible_collections.gtsfm.cluster.plugins.module_utils import _gtsfm_job_agent as agent
from ansible_collections.gtsfm.cluster.plugins.module_utils import _gtsfm_job_node as node

HEAD_LINE = '            unique_hosts = set(w["host"] for w in workers)\n'


def params(tmp_path, **over):
    p = {
        "workers": ["node1", "node2"],
        "python": sys.executable,
        "chdir": str(tmp_path / "gtsfm"),
        "entry_point": ["./run"],
        "loader": "colmap",
        "dataset_dir": str(tmp_path / "data"),
        "config_name": "sift_front_end.yaml",
        "output_root": str(tmp_path / "out"),
        "num_workers": 2,
        "threads_per_worker": 1,
        "worker_memory_limit": "4GB",
        "dashboard_port": 8787,
        "scheduler_port": 0,
        "extra_args": [],
        "environment": {},
        "cluster_config_path": None,
        "runner_workaround": True,
        "scheduler_name": "node1",
        "worker_ttl": "60s",
        "name": "gtsfm",
        "holder": "",
        "timeout": 0,
        "startup_timeout": 0,
        "fail_on_worker_loss": True,
        "drain_remote_output": True,
    }
    p.update(over)
    return p


def sleeper_params(tmp_path, root):
    """A job whose runner sleeps 30 s, on an unresolvable worker (no preflight reaches it), in job root root."""
    return params(
        tmp_path,
        job_root=str(root),
        workers=["gtsfm-job-test.invalid"],
        runner_workaround=False,
        drain_remote_output=False,
        timeout=60,
        entry_point=[sys.executable, "-c", "import time; time.sleep(30)"],
    )


@pytest.mark.parametrize(
    "workers, expect",
    [
        ([], "workers: empty"),
        # The inventory's rule (module_utils/_gtsfm_workers), word for word.
        (
            ["node1", {"host": "node2", "gpus": 1}],
            "workers[1] ('node2') has 'gpus', so GTSfM's runner starts a "
            "single-machine LocalCUDACluster and never uses the other hosts",
        ),
        (["node1", "gpus-01"], "workers[1] ('gpus-01'): GTSfM's runner tests '\"gpus\" in worker'"),
        # One machine with gpus: GTSfM's own GPU shape, which gtsfm_job does not run.
        ([{"host": "gpu1", "gpus": 1}, {"host": "gpu1", "gpus": 1}], "not the SSH cluster gtsfm_job runs"),
        (["node1", "bad name"], "workers[1] ('bad name'): not a host name"),
        (["node1", {"system_memory": "10GB"}], "workers[1]"),
    ],
)
def test_bad_cluster_config_is_one_message_naming_the_entry(workers, expect):
    with pytest.raises(job.JobError) as err:
        job.worker_hosts(workers)
    assert expect in err.value.msg and "Fix" in err.value.msg


def test_cluster_config_keeps_gtsfm_shape_and_order():
    assert job.worker_hosts(["a", {"host": "b"}, "a"]) == ["a", "b", "a"]
    text = job.render_cluster_config(["node1", {"host": "node2", "system_memory": "10GB"}], "test")
    import yaml

    assert yaml.safe_load(text) == {"workers": ["node1", {"host": "node2", "system_memory": "10GB"}]}


def test_runner_command_has_gtsfm_flags_and_absolute_paths(tmp_path):
    cmd = job.runner_command(params(tmp_path, extra_args=["-l", "DEBUG"]), "/abs/cluster.yaml")
    assert cmd[0] == "./run"
    flags = dict(zip(cmd[1:-2:2], cmd[2:-2:2]))
    assert flags["--cluster_config"] == "/abs/cluster.yaml"
    assert flags["--dashboard_port"] == ":8787" and flags["--num_workers"] == "2"
    assert flags["--output_root"] == str(tmp_path / "out")
    assert cmd[-2:] == ["-l", "DEBUG"]


def test_head_bug_is_found_and_fixed_in_a_copy_only(tmp_path):
    (tmp_path / "gtsfm").mkdir()
    runner = tmp_path / "gtsfm" / "runner.py"
    runner.write_text("def f(workers):\n" + HEAD_LINE + "            return unique_hosts\n")
    assert job.head_bug(str(tmp_path), ["./run"]) == (2, str(runner))
    assert job.head_bug(str(tmp_path), ["python", "x.py"]) is None
    patched = job.write_patched_runner(str(runner))
    assert runner.read_text().count('set(w["host"] for w in workers)') == 1
    namespace = {}
    exec(compile(open(patched).read(), patched, "exec"), namespace)  # noqa: S102 - the patched copy must run
    assert namespace["f"](["a", {"host": "b"}]) == {"a", "b"}


def test_head_bug_is_judged_from_the_code_not_its_comments_or_strings(tmp_path):
    (tmp_path / "gtsfm").mkdir()
    runner = tmp_path / "gtsfm" / "runner.py"
    runner.write_text(
        '"""Was: unique_hosts = set(w["host"] for w in workers)."""\n'
        "def f(workers):\n"
        '    # fixed: set(w["host"] for w in workers) broke plain host names\n'
        "    note = 'set(w[\"host\"] for w in workers)'\n"
        '    return set(w["host"] if isinstance(w, dict) else w for w in workers)\n'
    )
    assert job.head_bug(str(tmp_path), ["./run"]) is None
    # The call itself, however it is spelled across lines, is found; the copy changes only the call.
    runner.write_text("def f(workers):\n    # keep\n    return set(\n        h['host']\n        for h in workers)\n")
    assert job.head_bug(str(tmp_path), ["./run"]) == (3, str(runner))
    patched = job.write_patched_runner(str(runner))
    text = open(patched).read()
    assert text.startswith('def f(workers):\n    # keep\n    return set(h["host"] if isinstance(h, dict) else h')
    namespace = {}
    exec(compile(text, patched, "exec"), namespace)  # noqa: S102 - the patched copy must run
    assert namespace["f"](["a", {"host": "b"}]) == {"a", "b"}


def _checkout_like_gtsfm(tmp_path):
    """A checkout whose ./run starts the runner as GTSfM's does: `uv run python` when uv is on PATH, else python."""
    chdir = tmp_path / "gtsfm"
    (chdir / "gtsfm").mkdir(parents=True)
    run = chdir / "run"
    run.write_text(
        "#!/usr/bin/env bash\nexport FROM_RUN=yes\n"
        "if command -v uv >/dev/null; then PY=(uv run python); else PY=(python); fi\n"
        'exec "${PY[@]}" -X utf8 gtsfm/runner.py "$@"\n'
    )
    run.chmod(0o755)
    (chdir / "gtsfm" / "runner.py").write_text(
        "import json, os, sys\n"
        'def hosts(workers):\n    return set(w["host"] for w in workers)\n'
        "print(json.dumps({'hosts': sorted(hosts(['a', {'host': 'b'}])), 'from_run': os.environ.get('FROM_RUN'),\n"
        "                  'uv': os.environ.get('UV_RAN'), 'utf8': sys.flags.utf8_mode, 'argv': sys.argv[1:],\n"
        "                  'file': __file__, 'cwd': os.getcwd(), 'path0': sys.path[0]}))\n"
    )
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python").symlink_to(sys.executable)
    return chdir, bindir


@pytest.mark.parametrize("with_uv", [False, True])
@pytest.mark.parametrize("drain", [True, False])
def test_patched_runner_is_started_the_way_the_entry_point_starts_the_original(tmp_path, with_uv, drain):
    chdir, bindir = _checkout_like_gtsfm(tmp_path)
    if with_uv:
        uv = bindir / "uv"
        uv.write_text('#!/bin/sh\n[ "$1" = run ] && shift\nUV_RAN=yes exec "$@"\n')
        uv.chmod(0o755)
    p = params(tmp_path, chdir=str(chdir), drain_remote_output=drain, environment={"PATH": f"{bindir}:/usr/bin:/bin"})
    job_dir = tmp_path / "jobs" / "R1"
    job_dir.mkdir(parents=True)
    command, env, notices, dummy, remove_after = job.runner_launch(p, str(job_dir), "/abs/cluster.yaml")
    assert command[0] == "./run" and "HEAD's cluster bug" in notices[0]
    out = subprocess.run(
        command, cwd=str(chdir), env=dict(os.environ, **env), capture_output=True, text=True, check=False, timeout=60
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    # The fixed copy ran, beside the original, with what ./run (and uv) set up: environment, -X utf8, arguments.
    assert seen["hosts"] == ["a", "b"]
    assert seen["from_run"] == "yes" and seen["uv"] == ("yes" if with_uv else None) and seen["utf8"] == 1
    assert seen["argv"] == command[1:] and seen["cwd"] == str(chdir)
    assert seen["file"] == str(chdir / "gtsfm" / job.PATCHED_NAME) and seen["path0"] == str(chdir / "gtsfm")
    assert remove_after == [str(chdir / "gtsfm" / job.PATCHED_NAME)]
    assert f"running gtsfm/{job.PATCHED_NAME} in its place" in out.stderr


def test_runner_without_the_bug_runs_untouched(tmp_path):
    chdir, bindir = _checkout_like_gtsfm(tmp_path)
    runner = chdir / "gtsfm" / "runner.py"
    runner.write_text("import sys\nprint(sys.argv[0])\n")
    p = params(tmp_path, chdir=str(chdir), environment={"PATH": f"{bindir}:/usr/bin:/bin"})
    (tmp_path / "job").mkdir()
    command, env, notices, dummy, remove_after = job.runner_launch(p, str(tmp_path / "job"), "/abs/cluster.yaml")
    out = subprocess.run(
        command, cwd=str(chdir), env=dict(os.environ, **env), capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout == "gtsfm/runner.py\n" and notices == [] and remove_after == []


def test_plain_turns_subclasses_into_builtins():
    class Tagged(str):
        pass

    out = job.plain({"w": [Tagged("x"), 1, True, None, 1.5]})
    assert out == {"w": ["x", 1, True, None, 1.5]} and out["w"][0].__class__ is str


def test_local_preflight_names_the_host_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(job.Jobs, "call", lambda self, *a, **k: {"errors": [], "nodes": {}})
    jobs = job.Jobs(str(tmp_path / "jobs"), sys.executable)
    (tmp_path / "a-file").write_text("x")
    p = params(tmp_path, output_root=str(tmp_path / "a-file" / "out"))
    errors, dummy = job.preflight(p, jobs, ["node1", "node2"])
    assert any("node1: dataset_dir" in e and "does not exist" in e for e in errors)
    assert any(f"node1: output_root {tmp_path / 'a-file' / 'out'} is not writable" in e for e in errors)
    assert any("node1: chdir" in e for e in errors)
    (tmp_path / "data").mkdir()
    errors, dummy = job.preflight(params(tmp_path), jobs, ["node1"])
    assert any("dataset_dir" in e and "is empty" in e for e in errors)
    assert not (tmp_path / "jobs").exists(), "the preflight must write nothing"


def test_head_bug_without_workaround_is_refused_in_preflight(tmp_path, monkeypatch):
    monkeypatch.setattr(job.Jobs, "call", lambda self, *a, **k: {"errors": [], "nodes": {}})
    (tmp_path / "gtsfm" / "gtsfm").mkdir(parents=True)
    (tmp_path / "gtsfm" / "gtsfm" / "runner.py").write_text("def f(workers):\n" + HEAD_LINE)
    run = tmp_path / "gtsfm" / "run"
    run.write_text("#!/bin/sh\n")
    run.chmod(0o755)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x").write_text("x")
    jobs = job.Jobs(str(tmp_path / "j"), sys.executable)
    errors, dummy = job.preflight(params(tmp_path, runner_workaround=False), jobs, ["node1"])
    assert len(errors) == 1 and "HEAD's cluster bug" in errors[0] and "runner_workaround: true" in errors[0]


def _sleeper():
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "supervise"])


def test_busy_lock_names_its_holder(tmp_path):
    jobs = job.Jobs(str(tmp_path), sys.executable)
    os.makedirs(tmp_path / "R1")
    os.symlink("R1", jobs.lock)
    sleeper = _sleeper()
    try:
        status = dict(agent.identity(sleeper.pid), run_id="R1", name="door", holder="alice@laptop", started=time.time())
        agent.write_json(str(tmp_path / "R1" / "status.json"), status)
        with pytest.raises(job.JobError) as err:
            job.start(params(tmp_path), jobs, ["node1"], {})
        assert "busy with job R1" in err.value.msg and "alice@laptop" in err.value.msg
        assert "state: stopped" in err.value.msg
        assert sorted(os.listdir(tmp_path)) == ["R1", "lock"], "the refused start left files"
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("record", ["recycled pid", "other boot", "no start time, another command"])
def test_a_pid_alone_does_not_keep_a_dead_job_alive(tmp_path, record):
    # The recorded supervisor is gone and its pid now belongs to another process of the user, one whose command
    # line even says "supervise": the old check took that for the job.
    jobs = job.Jobs(str(tmp_path), sys.executable)
    sleeper = _sleeper()
    try:
        status = dict(agent.identity(sleeper.pid), run_id="R1")
        if record == "recycled pid":
            status["pid_start"] -= 1
        elif record == "other boot":
            status["boot_id"] = "00000000-0000-0000-0000-000000000000"
        else:
            del status["pid_start"]
        assert not jobs.alive(status)
        assert jobs.alive(dict(agent.identity(sleeper.pid), run_id="R1"))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not jobs.alive(dict(agent.identity(sleeper.pid), run_id="R1")), "an ended process"


RACER = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.gtsfm.cluster.plugins.module_utils import _gtsfm_job as job
p, go, delay = json.loads(sys.argv[2]), sys.argv[3], float(sys.argv[4])
jobs = job.Jobs(p["job_root"], p["python"])
while not os.path.exists(go):
    time.sleep(0.001)
time.sleep(delay)
try:
    run_id, dummy = job.start(p, jobs, ["gtsfm-job-test.invalid"], {})
    print(json.dumps({"started": run_id}))
except job.JobError as exc:
    print(json.dumps({"refused": exc.msg}))
"""


def _end_runs(root):
    """End the supervisors and runners the racing starts left (each in its own session), by their pids."""
    for name in os.listdir(root):
        status = agent.read_json(os.path.join(root, name, "status.json"), {}) if name.startswith("2") else {}
        for key in ("runner_pid", "pid"):
            if status.get(key):
                try:
                    os.killpg(status[key], 9)
                except OSError:
                    pass


@pytest.mark.parametrize("delay", [0.0, 0.03, 0.15])
def test_two_racing_starts_run_one_job(tmp_path, delay):
    """Two real starts at once (the second just after the first took the lock, before its supervisor recorded
    itself): exactly one job runs, the other start is refused naming it."""
    (tmp_path / "gtsfm").mkdir()
    (tmp_path / "data").mkdir()
    root = tmp_path / "jobs"
    p = sleeper_params(tmp_path, root)
    go = tmp_path / "go"
    collections = str(Path(__file__).resolve().parents[4] / "collections")
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, collections, json.dumps(p), str(go), str(d)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for d in (0.0, delay)
    ]
    try:
        time.sleep(1.5)  # both have imported the module
        go.write_text("")
        outs = [r.communicate(timeout=120) for r in racers]
        assert all(out.strip() for out, err in outs), outs
        answers = [json.loads(out.strip().splitlines()[-1]) for out, err in outs]
        started = [a["started"] for a in answers if "started" in a]
        refused = [a["refused"] for a in answers if "refused" in a]
        assert len(started) == 1 and len(refused) == 1, (answers, [err for out, err in outs])
        assert f"busy with job {started[0]}" in refused[0]
        assert os.readlink(root / "lock") == started[0]
        status = job.Jobs(str(root), sys.executable).status(started[0])
        assert status["pid_start"] == agent.proc_start(status["pid"]), status
    finally:
        for r in racers:
            if r.poll() is None:
                r.kill()
        if root.exists():
            _end_runs(str(root))


def test_remote_cleanup_ends_only_processes_with_the_run_tag():
    config = base64.urlsafe_b64encode(json.dumps({"gtsfm_job_run_id": "RUN-A"}).encode()).decode()
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    tagged = subprocess.Popen(sleep, env=dict(os.environ, DASK_INTERNAL_INHERIT_CONFIG=config))
    direct = subprocess.Popen(sleep, env=dict(os.environ, GTSFM_JOB_RUN_ID="RUN-A"))
    other = subprocess.Popen(sleep, env=dict(os.environ, GTSFM_JOB_RUN_ID="RUN-B"))
    plain = subprocess.Popen(sleep)
    try:
        out = subprocess.run(
            [sys.executable, "-c", node.program_text(), "cleanup", "RUN-A"], capture_output=True, text=True, check=True
        ).stdout
        report = json.loads(out)
        assert sorted(e["pid"] for e in report["ended"]) == sorted([tagged.pid, direct.pid])
        assert tagged.wait(5) is not None and direct.wait(5) is not None
        assert other.poll() is None and plain.poll() is None
    finally:
        for proc in (tagged, direct, other, plain):
            proc.kill()
            proc.wait()


def _dask_inherited(config):
    """DASK_INTERNAL_INHERIT_CONFIG as Dask's SSHCluster hands it to remote processes (dask.config.serialize)."""
    return base64.urlsafe_b64encode(json.dumps(config).encode()).decode()


def _origin(root, holder="bob@laptop", host="elsewhere", started=1764000000.0):
    return agent.origin_text({"run": "x", "host": host, "root": root, "holder": holder, "started": started})


def test_origin_stays_a_string_through_dasks_config():
    # Dask reads DASK_* values with ast.literal_eval: a bare JSON object would become a dict.
    text = _origin("/home/bob/jobs")
    with pytest.raises((SyntaxError, ValueError)):
        ast.literal_eval(text)
    assert agent.parse_origin(text)["holder"] == "bob@laptop"
    assert agent.parse_origin('{"holder": "x"}') is None and agent.parse_origin("gtsfm_job [1]") is None


def test_remote_probe_names_each_run_with_its_origin():
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    foreign = subprocess.Popen(
        sleep, env=dict(os.environ, GTSFM_JOB_RUN_ID="RUN-F", GTSFM_JOB_ORIGIN=_origin("/home/bob/jobs"))
    )
    worker = subprocess.Popen(
        sleep,
        env=dict(
            os.environ,
            DASK_INTERNAL_INHERIT_CONFIG=_dask_inherited(
                {"gtsfm-job-run-id": "RUN-F", "gtsfm_job_origin": _origin("/home/bob/jobs"), "distributed": {}}
            ),
        ),
    )
    legacy = subprocess.Popen(sleep, env=dict(os.environ, GTSFM_JOB_RUN_ID="RUN-L"))
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            out = subprocess.run(
                [sys.executable, "-c", node.program_text(), "probe", "127.0.0.1", "9"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            runs = {r["run_id"]: r for r in json.loads(out)["runs"]}
            if runs.get("RUN-F", {}).get("count") == 2 and "RUN-L" in runs:
                break
            time.sleep(0.1)
        assert sorted(runs["RUN-F"]["pids"]) == sorted([foreign.pid, worker.pid])
        assert runs["RUN-F"]["origins"] == [_origin("/home/bob/jobs")]
        assert runs["RUN-L"]["origins"] == [] and runs["RUN-L"]["pids"] == [legacy.pid]
        assert abs(runs["RUN-L"]["since"] - time.time()) < 120
    finally:
        for proc in (foreign, worker, legacy):
            proc.kill()
            proc.wait()


def _record(root, run_id, status):
    os.makedirs(os.path.join(root, run_id))
    agent.write_json(os.path.join(root, run_id, "spec.json"), {"run_id": run_id})
    agent.write_json(os.path.join(root, run_id, "status.json"), dict(status, run_id=run_id))


def test_only_this_job_roots_ended_runs_are_ended_others_are_refused_by_name(tmp_path):
    root = str(tmp_path / "jobs")
    jobs = job.Jobs(root, sys.executable)
    here = socket.gethostname()
    mine = _origin(os.path.realpath(root), holder="alice@ctl", host=here)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    live = _sleeper()
    try:
        _record(root, "R-DONE", {"state": "finished"})
        _record(root, "R-LOST", dict(agent.identity(gone.pid), state="running"))
        _record(root, "R-LIVE", dict(agent.identity(live.pid), state="running"))
        _record(root, "R-OLD", {"state": "failed"})  # an older gtsfm_job's run: its processes carry no origin
        # The same run id as one of ours, from another job root: still not ours.
        _record(root, "R-SAME", {"state": "finished"})
        nodes = {
            "node2": {
                "runs": [
                    {"run_id": "R-DONE", "origins": [mine], "count": 2, "pids": [11, 12], "cmd": "python -m dask_spec"},
                    {"run_id": "R-LOST", "origins": [mine], "count": 1, "pids": [13], "cmd": "python"},
                    {"run_id": "R-OLD", "origins": [], "count": 1, "pids": [14], "cmd": "python"},
                    {
                        "run_id": "R-FOREIGN",
                        "origins": [_origin("/home/bob/jobs")],
                        "count": 3,
                        "pids": [21, 22, 23],
                        "cmd": "python -m distributed.cli.dask_spec",
                        "since": 1764000000.0,
                    },
                    {
                        "run_id": "R-SAME",
                        "origins": [_origin(os.path.realpath(root), host="node9")],
                        "count": 1,
                        "pids": [24],
                        "cmd": "python",
                    },
                    {
                        "run_id": "R-UNKNOWN",
                        "origins": [],
                        "count": 1,
                        "pids": [25],
                        "cmd": "python",
                        "since": 1764000000.0,
                    },
                ]
            },
            "node3": {
                "runs": [
                    {"run_id": "R-LIVE", "origins": [mine], "count": 1, "pids": [31], "cmd": "python"},
                    {"run_id": "../R-DONE", "origins": [], "count": 1, "pids": [32], "cmd": "python"},
                ]
            },
        }
        errors, stale = job.classify_runs(jobs, nodes)
    finally:
        live.kill()
        live.wait()
    assert stale == {"node2": ["R-DONE", "R-LOST", "R-OLD"]}
    text = "\n".join(errors)
    assert len(errors) == 5, text
    foreign = next(e for e in errors if "R-FOREIGN" in e)
    assert foreign.startswith(
        "node2: run R-FOREIGN (held by bob@laptop, started 2025-11-24 16:00:00 UTC, "
        "job root elsewhere:/home/bob/jobs) has 3 process(es) on node2 (pid 21, 22, 23"
    )
    assert "Fix: stop that job where it was started" in foreign
    assert f"job root node9:{os.path.realpath(root)}" in next(e for e in errors if "R-SAME" in e)
    assert "no origin recorded" in next(e for e in errors if "R-UNKNOWN" in e)
    assert "still running" in next(e for e in errors if "R-LIVE" in e)
    assert any("../R-DONE" in e for e in errors)


@pytest.mark.parametrize(
    "run_ids, expect",
    [
        ("R-1", {"node1": ["R-1"], "node2": ["R-1"]}),
        (["R-1", "R-2"], {"node1": ["R-1", "R-2"], "node2": ["R-1", "R-2"]}),
        ({"node2": ["R-0"]}, {"node1": [], "node2": ["R-0"]}),
    ],
)
def test_cleanup_passes_each_host_its_run_ids_whole(monkeypatch, run_ids, expect):
    seen = {}

    def fake_run(hosts, command_for, timeout=60):
        for host in hosts:
            seen[host] = shlex.split(command_for(host))[-len(expect[host]) :] if expect[host] else []
        return {h: (0, '{"ended": [], "remaining": []}', "") for h in hosts}

    monkeypatch.setattr(agent, "run_on_hosts", fake_run)
    assert agent.cleanup(["node1", "node2"], sys.executable, run_ids, "node1") == {
        h: {"ended": [], "remaining": []} for h in ("node1", "node2")
    }
    assert seen == expect


def test_remote_cleanup_has_no_wildcard_and_ends_only_the_given_runs():
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    procs = {r: subprocess.Popen(sleep, env=dict(os.environ, GTSFM_JOB_RUN_ID=r)) for r in ("R-1", "R-2", "R-3")}
    try:
        for args in (["*"], []):
            report = json.loads(
                subprocess.run(
                    [sys.executable, "-c", node.program_text(), "cleanup"] + args,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            assert report["ended"] == [], args
        report = json.loads(
            subprocess.run(
                [sys.executable, "-c", node.program_text(), "cleanup", "R-1", "R-3"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert sorted(e["pid"] for e in report["ended"]) == sorted([procs["R-1"].pid, procs["R-3"].pid])
        assert procs["R-2"].poll() is None
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()


def _results_tree(output_root):
    """450 files in nested directories, an empty directory, and what must not travel: links, a FIFO, setuid."""
    results = output_root / "results"
    for i in range(450):
        path = results / f"d{i % 15:02d}" / f"sub{i % 2}" / f"f{i:03d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"file {i}\n")
    (results / "empty").mkdir()
    (results / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(results / "run.sh", 0o4777)
    os.symlink("/etc/passwd", results / "passwd")
    os.symlink("/etc", results / "etc")
    os.mkfifo(results / "pipe")
    return results


def test_finished_run_packs_every_result_file_and_nothing_else(tmp_path, monkeypatch):
    import tarfile

    results = _results_tree(tmp_path / "out")
    root = tmp_path / "jobs"
    job_dir = root / "R1"
    job_dir.mkdir(parents=True)
    agent.write_json(
        str(job_dir / "spec.json"),
        {
            "run_id": "R1",
            "expected_workers": 1,
            "hosts": ["node1"],
            "python": sys.executable,
            "scheduler_name": "node1",
            "lock_path": str(root / "lock"),
            "output_root": str(tmp_path / "out"),
        },
    )
    monkeypatch.setattr(agent, "cleanup", lambda *a: {})
    agent.Supervisor(str(job_dir)).finish("finished", 0, None)
    status = agent.read_json(str(job_dir / "status.json"))
    summary = status["results_archive"]
    assert summary["count"] == 451 and summary["bytes"] == sum(
        p.stat().st_size for p in results.rglob("*") if p.is_file() and not p.is_symlink()
    )
    assert sorted(summary["skipped"]) == ["etc", "passwd", "pipe"]
    assert summary["path"] == str(job_dir / agent.RESULTS_ARCHIVE)
    assert sorted(os.listdir(job_dir)) == ["job.log", agent.RESULTS_ARCHIVE, "spec.json", "status.json"]
    with tarfile.open(summary["path"]) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert all(m.isfile() or m.isdir() for m in members.values())
        assert "empty" in members and members["run.sh"].mode == 0o755
        assert tar.extractfile(members["d07/sub1/f007.txt"]).read() == b"file 7\n"
    assert len([m for m in members.values() if m.isfile()]) == 451
    # The module reports the count and bytes, and no longer cuts the file list at 200.
    described = job.describe(job.Jobs(str(root), sys.executable), "R1", 5)
    assert described["results_archive"]["count"] == 451 and "result_files" not in described


def test_a_run_with_no_results_directory_packs_an_empty_archive(tmp_path):
    summary = agent.pack_results(str(tmp_path / "out"), str(tmp_path))
    assert (summary["count"], summary["bytes"]) == (0, 0) and os.path.isfile(summary["path"])


@pytest.mark.parametrize(
    "name, expect",
    [
        ("HostKeyNotVerifiable", "site.yml --tags known_hosts"),
        ("PermissionDenied", "site.yml --tags ssh_mesh"),
        ("gaierror", "its name resolves on node1"),
    ],
)
def test_ssh_failures_name_the_host_and_the_fix(name, expect):
    exc = type(name, (Exception,), {})("boom")
    text = agent._ssh_error_text("node3", "node1", exc)  # pylint: disable=protected-access
    assert text.startswith("node3: ") and expect in text


def test_remote_probe_reports_versions_tcp_and_leftovers():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-c", node.program_text(), "probe", "127.0.0.1", str(port)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    report = json.loads(out)
    assert report["tcp"] == "ok" and report["python"] == sys.executable and "leftovers" in report


def test_version_of_reads_metadata_without_importing():
    version, error = node.version_of("pytest")
    assert error is None and version == pytest.__version__


def test_version_of_names_a_missing_package():
    version, error = node.version_of("no_such_package_gtsfm")
    assert version is None and "No module named 'no_such_package_gtsfm'" in error


def test_version_of_imports_a_source_tree_without_metadata(tmp_path, monkeypatch):
    (tmp_path / "srcpkg_gtsfm").mkdir()
    (tmp_path / "srcpkg_gtsfm" / "__init__.py").write_text("__version__ = '1.2.3'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert node.version_of("srcpkg_gtsfm") == ("1.2.3", None)


def _supervisor(tmp_path, expected):
    agent.write_json(str(tmp_path / "spec.json"), {"run_id": "r1", "expected_workers": expected})
    sup = agent.Supervisor(str(tmp_path))
    sup.addr_to_host = {"10.0.0.1": "node1", "10.0.0.2": "node2"}
    return sup


def test_worker_events_count_a_worker_that_joined_and_left_between_looks(tmp_path):
    sup = _supervisor(tmp_path, 2)
    sup.on_events(
        [
            (10.0, {"action": "add-worker", "worker": "tcp://10.0.0.1:4000"}),
            (11.0, {"action": "add-client", "client": "c"}),
            (12.0, {"action": "add-worker", "worker": "tcp://10.0.0.2:4000"}),
            (13.0, {"action": "remove-worker", "worker": "tcp://10.0.0.2:4000"}),
        ]
    )
    assert sup.status["workers"] == {"node1": 1, "node2": 1}
    assert sup.status["workers_registered"] == {"node1": 1}
    assert sup.all_joined_at == 12.0


def test_worker_events_out_of_order_and_twice_replay_in_time_order(tmp_path):
    sup = _supervisor(tmp_path, 2)
    live = (13.0, {"action": "remove-worker", "worker": "tcp://10.0.0.2:4000"})
    sup.on_events([live])  # a live event before the history that precedes it
    sup.on_events(
        [
            (10.0, {"action": "add-worker", "worker": "tcp://10.0.0.1:4000"}),
            (12.0, {"action": "add-worker", "worker": "tcp://10.0.0.2:4000"}),
            live,
        ]
    )
    assert sup.status["workers_registered"] == {"node1": 1}
    assert sup.all_joined_at == 12.0
    sup.on_events([(14.0, {"action": "add-worker", "worker": "tcp://10.0.0.1:4001"})])
    assert sup.status["workers"] == {"node1": 2, "node2": 1}


@pytest.mark.parametrize(
    "address, host",
    [
        ("tcp://10.0.0.2:40123", "10.0.0.2"),
        ("tls://[fe80::1]:8786", "fe80::1"),
        ("inproc://x", "x"),
    ],
)
def test_address_host(address, host):
    assert agent._address_host(address) == host  # pylint: disable=protected-access


def test_version_of_reads_a_shadowing_copy_not_the_installed_metadata(tmp_path, monkeypatch):
    # A pytest package earlier on the path shadows the installed one: its own version counts, not the metadata's.
    (tmp_path / "pytest").mkdir()
    (tmp_path / "pytest" / "__init__.py").write_text("__version__ = '0.0.1'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "pytest")
    try:
        assert node.version_of("pytest") == ("0.0.1", None)
    finally:
        sys.modules.pop("pytest", None)
        sys.modules["pytest"] = pytest


def test_a_start_takes_over_the_lock_of_a_dead_supervisor_and_says_so(tmp_path):
    """A lock whose run's supervisor died (with the scheduler node, say): the next start takes it and names it."""
    (tmp_path / "gtsfm").mkdir()
    (tmp_path / "data").mkdir()
    root = tmp_path / "jobs"
    (root / "R1").mkdir(parents=True)
    os.symlink("R1", root / "lock")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    agent.write_json(
        str(root / "R1" / "status.json"),
        dict(agent.identity(gone.pid), run_id="R1", name="door", state="running", started=time.time()),
    )
    p = sleeper_params(tmp_path, root)
    jobs = job.Jobs(str(root), sys.executable)
    try:
        run_id, notices = job.start(p, jobs, ["gtsfm-job-test.invalid"], {})
        assert os.readlink(root / "lock") == run_id != "R1"
        assert notices and notices[0].startswith(
            f"node1: the cluster lock {jobs.lock} named run R1 (name 'door', running), whose supervisor is gone"
        ), notices
        assert "That run is lost" in notices[0]
        assert notices[0] in agent.read_json(str(root / run_id / "spec.json"), {})["notices"]  # the run's log too
        assert job.describe(jobs, "R1", 5)["state"] == "lost"
    finally:
        _end_runs(str(root))


def test_the_supervisor_raises_its_open_files_limit_within_the_hard_limit_for_the_runner():
    # In a child, so this test process keeps its own limit: from a soft limit of 256, the hard limit as it is.
    code = (
        "import json, resource; from ansible_collections.gtsfm.cluster.plugins.module_utils import "
        "_gtsfm_job_agent as a; hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)); first = a.raise_open_files(4096); "
        "print(json.dumps([first, resource.getrlimit(resource.RLIMIT_NOFILE)[0], a.raise_open_files(4096), "
        "hard]))"
    )
    # The folder holding ansible_collections/, wherever the collection is loaded from.
    env = dict(os.environ, PYTHONPATH=str(Path(agent.__file__).parents[5]))
    first, soft, again, hard = json.loads(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    )
    expected = 4096 if hard < 0 else min(4096, hard)
    assert first == [expected, 256] and soft == expected
    assert again is None  # already there: nothing to raise
