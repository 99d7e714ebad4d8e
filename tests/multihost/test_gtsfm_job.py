"""gtsfm_job and gtsfm_run on a real 3-node bed, with a stand-in of GTSfM's HEAD runner (its cluster bug included).

What users see: the preflight refuses bad input in seconds naming the host; a dead worker node, a timeout and
state stopped each end the job and leave no Dask process on any node; the printed tunnel serves the dashboard.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, Bed, fresh_bed, run_testbed

sys.path.insert(0, str(ROOT / "tests"))
import bed_play  # noqa: E402  pylint: disable=wrong-import-position

FILES = Path(__file__).parent / "files"
DASK = "[d]istributed.cli.dask_spec"


def playbook(bed, path: Path, extravars: dict | None = None, timeout: int = 300) -> dict:
    """Run a playbook that writes its module result to job_result_file; that result and the rc."""
    result_file = bed.path / "job_result.json"
    result_file.unlink(missing_ok=True)
    extravars = dict(extravars or {}, job_result_file=str(result_file))
    out = bed_play.run(bed_play.command(bed, path, extravars=extravars), timeout)
    assert result_file.exists(), out.stdout[-3000:] + out.stderr[-2000:]
    return {"rc": out.returncode, "result": json.loads(result_file.read_text())}


def job(bed, **extravars) -> dict:
    return playbook(bed, FILES / "gtsfm_job.yml", {f"job_{k}": v for k, v in extravars.items()})["result"]


def job_root_entries(bed, root: str = "~/.cache/gtsfm.cluster/jobs") -> list[str]:
    """The runs the job root on the scheduler holds a directory for (one per run started), and its lock."""
    names = bed.ssh("node1", f"ls -1A {root} 2>/dev/null || true").stdout.split()
    return sorted(n for n in names if n == "lock" or re.match(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$", n))


def dask_processes(bed, hosts) -> dict:
    return {h: bed.ssh(h, f"pgrep -u gtsfm -af '{DASK}' || true").stdout.strip() for h in hosts}


def wait_joined(bed, seconds: int = 90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        status = bed.ssh("node1", "cat ~/.cache/gtsfm.cluster/jobs/last/status.json", check=False).stdout
        if '"all_joined_after"' in status:
            return
        time.sleep(1)
    raise AssertionError("the workers did not all join: " + status)


def _prepare(bed) -> None:
    subprocess.run(
        bed_play.command(bed, ROOT / "site.yml", "--tags", "ssh_mesh,known_hosts"),
        check=True,
        env=bed_play.env(),
        capture_output=True,
    )
    bed_play.unpack_stand_in(bed)


@pytest.fixture(scope="module")
def bed3():
    """Three fresh nodes with the mesh; GTSFM_JOB_TEST_BED=NAME reuses a running bed of yours instead."""
    reuse = os.environ.get("GTSFM_JOB_TEST_BED")
    if reuse:
        bed = Bed(
            name=reuse, path=Path(run_testbed("up", "--nodes", "3", "--name", reuse)), nodes=["node1", "node2", "node3"]
        )
        _prepare(bed)
        yield bed
        return
    with fresh_bed("gtsfmjob-it", 3) as bed:
        _prepare(bed)
        yield bed


def test_head_runner_bug_is_refused_without_the_workaround(bed3):
    before = job_root_entries(bed3)
    result = job(bed3, workaround=False)
    assert result.get("failed"), result
    assert "HEAD's cluster bug" in result["msg"] and "runner_workaround: true" in result["msg"]
    # Refused before anything started: no run recorded, no Dask process on any node.
    assert "run_id" not in result and job_root_entries(bed3) == before
    assert dask_processes(bed3, bed3.nodes) == {h: "" for h in bed3.nodes}


def test_head_runner_runs_with_the_workaround_visibly(bed3):
    # A job that ends right after its last worker joined (hold 0 s) still counts every worker: the supervisor reads
    # the scheduler's own add-worker events, it does not sample.
    started = job(bed3, config_name="hold_0.yaml")
    assert started.get("changed") and started["state"] in ("starting", "running"), started
    assert any("HEAD's cluster bug" in w and "runner_workaround: false" in w for w in started.get("warnings", []))
    done = job(bed3, state="status")
    assert done["state"] == "finished" and done["rc"] == 0, done
    assert {w["host"]: w["count"] for w in done["workers_joined"]} == {"node1": 1, "node2": 1, "node3": 1}
    assert done["results_archive"]["count"] == 1, done
    # ./run ran as given; the interpreter it started re-executed itself on the fixed copy.
    log = bed3.ssh("node1", f"cat {done['log']}").stdout
    assert "running gtsfm/.runner.gtsfm_job_patched.py in its place" in log, log[-2000:]
    assert bed3.ssh("node1", "ls ~/gtsfm_head/gtsfm/.runner.gtsfm_job_patched.py", check=False).returncode != 0
    assert dask_processes(bed3, bed3.nodes) == {h: "" for h in bed3.nodes}


@pytest.mark.parametrize("case", ["gpus entry", "unreachable worker", "env differs", "busy port"])
def test_preflight_refuses_in_seconds_naming_the_host(bed3, case):
    kwargs: dict = {}
    cleanup = None
    if case == "gpus entry":
        kwargs["workers"] = ["node1", {"host": "node2", "gpus": 1}]
        expect = ["workers[1]", "gpus"]
    elif case == "unreachable worker":
        kwargs["workers"] = ["node1", "node2", "node9"]
        expect = ["node9", "Fix"]
    elif case == "env differs":
        site = bed3.ssh("node2", "python3 -c 'import site; print(site.getusersitepackages())'").stdout.strip()
        bed3.ssh(
            "node2",
            f"mkdir -p {site}/distributed && echo '__version__ = \"1999.1.0\"' > {site}/distributed/__init__.py",
        )

        def cleanup():
            bed3.ssh("node2", f"rm -rf {site}/distributed")

        expect = ["node2", "distributed 1999.1.0", "same env"]
    else:
        bed3.ssh("node1", "nohup python3 -m http.server 8799 >/dev/null 2>&1 & echo $! > /tmp/busy.pid")
        time.sleep(1)

        def cleanup():
            bed3.ssh("node1", "kill $(cat /tmp/busy.pid)")

        kwargs["dashboard_port"] = 8799
        expect = ["node1", "dashboard port 8799 is busy"]
    before = job_root_entries(bed3)
    try:
        result = job(bed3, **kwargs)
    finally:
        if cleanup:
            cleanup()
    assert result.get("failed") and all(e in result["msg"] for e in expect), result.get("msg")
    # The preflight refused before a run began: no run recorded (it writes nothing that stays), nothing started.
    assert "run_id" not in result and job_root_entries(bed3) == before
    assert dask_processes(bed3, bed3.nodes) == {h: "" for h in bed3.nodes}


def test_busy_cluster_names_the_holder_and_stop_cleans_every_node(bed3):
    started = job(bed3, config_name="hold_300.yaml")
    assert started.get("changed"), started
    wait_joined(bed3)
    second = job(bed3, config_name="hold_1.yaml", name="another")
    assert second.get("failed") and started["run_id"] in second["msg"] and "state: stopped" in second["msg"], second
    stopped = job(bed3, state="stopped")
    assert stopped["state"] == "stopped" and stopped["changed"], stopped
    assert dask_processes(bed3, bed3.nodes) == {h: "" for h in bed3.nodes}


def test_timeout_ends_the_job_everywhere(bed3):
    started = job(bed3, config_name="hold_300.yaml", timeout=25)
    assert started.get("changed"), started
    done = job(bed3, state="status")
    assert done["state"] == "timeout" and "timeout of 25 s" in done["msg"], done
    assert dask_processes(bed3, bed3.nodes) == {h: "" for h in bed3.nodes}


@pytest.mark.parametrize("drain", [True, False])
def test_chatty_workers_do_not_block_on_unread_output(bed3, drain):
    # Each worker writes 8 MiB to its stderr: the SSH channel Dask stops reading after start-up (dask issue 9033).
    started = job(bed3, config_name="hold_0_chatter_8.yaml", drain=drain, timeout=30)
    assert started.get("changed"), started
    done = job(bed3, state="status")
    log = bed3.ssh("node1", f"grep -c '\\[node2 stderr\\] chatter' {done['log']} || true").stdout.strip()
    if drain:
        assert done["state"] == "finished", done
        assert int(log) == 8 * 16, log  # every line of node2's chatter reached the job's log
        assert any("dask issue 9033" in m for m in done["messages"]), done["messages"]
    else:
        # Dask left as it is: the workers block on their output and the job only ends at its timeout.
        assert done["state"] == "timeout", done
    assert dask_processes(bed3, bed3.nodes) == {h: "" for h in bed3.nodes}


def test_killed_worker_node_fails_naming_it_and_leaves_no_dask_elsewhere(bed3):
    started = job(bed3, config_name="hold_300.yaml")
    assert started.get("changed"), started
    wait_joined(bed3)
    subprocess.run(["podman", "kill", f"gtsfm-{bed3.name}-node3"], check=True, capture_output=True)
    try:
        done = job(bed3, state="status")
        assert done["state"] == "failed" and "node3" in done["msg"], done
        assert done["hosts_lost"] == ["node3"]
        assert dask_processes(bed3, ["node1", "node2"]) == {"node1": "", "node2": ""}
    finally:
        run_testbed("up", "--nodes", "3", "--name", bed3.name)


OTHER_ROOT = "/home/gtsfm/other-controller/jobs"


def _status(bed, root: str = "~/.cache/gtsfm.cluster/jobs", run_id: str = "last") -> dict:
    out = bed.ssh("node1", f"cat {root}/{run_id}/status.json", check=False).stdout
    return json.loads(out) if out.strip() else {}


def _sleeper_with(bed, host: str, env: dict) -> int:
    """A process of the bed's user on host carrying env (as a job's processes carry their tags); its pid."""
    assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    out = bed.ssh(host, f"{assigns} nohup python3 -c 'import time; time.sleep(600)' >/dev/null 2>&1 & echo $!")
    return int(out.stdout.strip())


def _alive(bed, host: str, pid: int) -> bool:
    return bed.ssh(host, f"kill -0 {pid}", check=False).returncode == 0


def test_a_live_run_of_another_job_root_is_refused_by_name_and_keeps_running(bed3):
    # Another controller's job on the same nodes (its own job root, holder and dashboard port), running.
    other = job(
        bed3, config_name="hold_300.yaml", job_root=OTHER_ROOT, holder="bob@elsewhere", dashboard_port=8790, name="bobs"
    )
    assert other.get("changed"), other
    try:
        deadline = time.time() + 90
        while "all_joined_after" not in _status(bed3, OTHER_ROOT) and time.time() < deadline:
            time.sleep(1)
        before = dask_processes(bed3, bed3.nodes)
        assert all(before.values()), before
        mine = job(bed3, config_name="hold_1.yaml")
        assert mine.get("failed"), mine
        for host in bed3.nodes:
            assert f"{host}: run {other['run_id']} (held by bob@elsewhere, started " in mine["msg"], mine["msg"]
        scheduler = bed3.ssh("node1", "hostname").stdout.strip()
        assert f"job root {scheduler}:{OTHER_ROOT})" in mine["msg"], mine["msg"]
        assert "Fix: stop that job where it was started" in mine["msg"]
        # Refused by the preflight: this job root got no run of its own.
        assert "run_id" not in mine
        # Nothing of the other job was ended: the same processes, and it still runs.
        assert dask_processes(bed3, bed3.nodes) == before
        assert _status(bed3, OTHER_ROOT)["state"] == "running"
    finally:
        stopped = job(bed3, state="stopped", job_root=OTHER_ROOT)
    assert stopped["state"] == "stopped", stopped
    assert dask_processes(bed3, bed3.nodes) == {h: "" for h in bed3.nodes}


def test_what_an_ended_run_of_this_job_root_left_is_ended_before_the_next_run(bed3):
    done = job(bed3, config_name="hold_0.yaml")
    assert done.get("changed"), done
    finished = job(bed3, state="status")
    assert finished["state"] == "finished", finished
    run_id = finished["run_id"]
    spec = json.loads(bed3.ssh("node1", f"cat ~/.cache/gtsfm.cluster/jobs/{run_id}/spec.json").stdout)
    # What a worker of that run would have left: Dask's inherited config with the run id and its origin; and a
    # process an older gtsfm_job left (run id only).
    inherited = base64.urlsafe_b64encode(
        json.dumps(
            {
                "gtsfm_job_run_id": run_id,
                "gtsfm_job_origin": _origin_text(spec),
            }
        ).encode()
    ).decode()
    worker = _sleeper_with(bed3, "node2", {"DASK_INTERNAL_INHERIT_CONFIG": inherited})
    legacy = _sleeper_with(bed3, "node3", {"GTSFM_JOB_RUN_ID": run_id})
    try:
        started = job(bed3, config_name="hold_0.yaml")
        assert started.get("changed"), started
        again = job(bed3, state="status")
        assert again["state"] == "finished", again
        assert not _alive(bed3, "node2", worker) and not _alive(bed3, "node3", legacy)
        assert any("ending what earlier runs of this job root left" in m and run_id in m for m in again["messages"])
    finally:
        bed3.ssh("node2", f"kill {worker}", check=False)
        bed3.ssh("node3", f"kill {legacy}", check=False)


def _origin_text(spec: dict) -> str:
    return "gtsfm_job " + json.dumps(spec["origin"], sort_keys=True)


def test_every_result_file_reaches_the_controller_once(bed3, tmp_path):
    dest = tmp_path / "results"
    out = bed_play.run(
        _run_on_a_dataset(
            bed3,
            tmp_path,
            gtsfm_run_config_name="hold_0_files_450.yaml",
            gtsfm_run_poll_interval=2,
            gtsfm_run_fetch_dest=str(dest),
            gtsfm_run_output_root="/home/gtsfm/gtsfm-runs/many",
        ),
        600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    runs = [p for p in dest.iterdir() if p.is_dir()]
    assert len(runs) == 1, list(dest.iterdir())
    files = sorted(str(p.relative_to(runs[0])) for p in runs[0].rglob("*") if p.is_file())
    assert len(files) == 451 and "hosts.json" in files and "many/d03/f0444.txt" in files
    assert (runs[0] / "many" / "d03" / "f0444.txt").read_text() == "result 444\n"
    assert "451 result files" in out.stdout
    # The same run fetched again: nothing changes.
    again = bed_play.run(
        bed_play.command(
            bed3,
            FILES / "gtsfm_fetch.yml",
            extravars={
                "fetch_run_id": runs[0].name,
                "fetch_dest": str(dest),
                "fetch_output_root": "/home/gtsfm/gtsfm-runs/many",
            },
        ),
        300,
    )
    assert again.returncode == 0, again.stdout[-3000:]
    assert re.search(r"node1\s*:\s*ok=\d+\s+changed=0\s", again.stdout), again.stdout[-2000:]


def _run_on_a_dataset(bed, tmp: Path, *args: str, **extravars) -> list[str]:
    """gtsfm_run.yml with the stand-in runner on a one-file dataset the controller holds (tmp/ds)."""
    (tmp / "ds").mkdir()
    (tmp / "ds" / "image.txt").write_text("x\n")
    return bed_play.gtsfm_run(bed, *args, gtsfm_run_dataset_src=str(tmp / "ds"), **extravars)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_printed_tunnel_serves_the_dashboard_and_data_stays_on_the_scheduler(bed3, tmp_path):
    env = bed_play.env(ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    # The dashboard needs bokeh on the scheduler: the demo's wheels (bokeh, numpy, pillow) into node1's user site.
    subprocess.run(
        bed_play.command(bed3, FILES / "node_env.yml", "--limit", "node1"), check=True, env=env, capture_output=True
    )
    local = _free_port()
    proc = bed_play.start(
        _run_on_a_dataset(
            bed3,
            tmp_path,
            gtsfm_run_config_name="hold_40.yaml",
            gtsfm_run_poll_interval=5,
            gtsfm_run_fetch=False,
            gtsfm_run_dashboard_local_port=local,
        ),
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
    )
    # The command alone on its line (pasted whole, nothing after it reaches ssh), the address on the next.
    command, url, lines = None, None, []
    for line in proc.stdout:
        lines.append(line)
        m = re.match(r"^(ssh -N -L \S+ .*\S)$", line)
        command = m.group(1) if m else command
        m = re.match(r"^then open (http://\S+)$", line)
        if command and m:
            url = m.group(1)
            break
    assert command and url, "".join(lines)
    tunnel = subprocess.Popen(shlex.split(command), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        body, deadline = "", time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    body = response.read().decode("utf-8", "replace")
                    status = response.status
                if "bokeh" in body.lower() and status == 200:
                    break
            except OSError:
                pass
            time.sleep(2)
        assert "bokeh" in body.lower(), body[:500]
    finally:
        tunnel.terminate()
        tunnel.wait(10)
        rest = proc.stdout.read()
        proc.wait(300)
    assert proc.returncode == 0, "".join(lines) + rest
    # The role staged the dataset on the scheduler only.
    assert bed3.ssh("node1", "cat ~/gtsfm-data/ds/image.txt").stdout == "x\n"
    for host in ("node2", "node3"):
        assert bed3.ssh(host, "test -e ~/gtsfm-data", check=False).returncode != 0, host


@pytest.mark.scale
def test_a_job_is_followed_for_two_thousand_polls_to_its_end_and_its_results_fetched(bed3, tmp_path):
    """The follow is a loop in the controller: thousands of polls neither nest nor fail (each poll one small read)."""
    out = bed_play.run(
        _run_on_a_dataset(
            bed3,
            tmp_path,
            "-v",
            gtsfm_run_config_name="hold_150.yaml",
            gtsfm_run_name="long-follow",
            gtsfm_run_poll_interval=0.01,
            gtsfm_cluster_progress_every=5,
            gtsfm_run_fetch_dest=str(tmp_path / "results"),
        ),
        900,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    polls = [int(n) for n in re.findall(r'"polls": (\d+)', text)] or [int(n) for n in re.findall(r"polls: (\d+)", text)]
    assert polls and max(polls) >= 2000, (polls, text[-3000:])
    assert "FAILED" not in text and "RecursionError" not in text
    # Progress lines a person reads: elapsed time, workers per host, the log's last line.
    assert re.search(r"node1: job \S+ running, \d / \d workers, node1 x\d.*elapsed; log: ", text), text[-3000:]
    fetched = list((tmp_path / "results").rglob("hosts.json"))
    assert fetched and json.loads(fetched[0].read_text()), text[-2000:]
