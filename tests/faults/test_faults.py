"""Faults in the middle of long steps on a 4-node bed: each play fails naming the node, leaves nothing half-done
where a later run or a user would take it for done, and a re-run converges doing only the missing work.

    make test-faults        (flock /tmp/gtsfm-bed.lock .venv/bin/python -m pytest tests/faults)

The cases run in file order on one bed; each starts from the converged state the one before left.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import LINK_RATE, ROOT, Run, failures, run_testbed, saw, wait_for

sys.path.insert(0, str(ROOT / "tests"))
import bed_play  # noqa: E402  pylint: disable=wrong-import-position
from http_origin import Origin  # noqa: E402  pylint: disable=wrong-import-position

ENV_RECORD = "~/.cache/gtsfm.cluster/progress/conda_env-the-environment.json"
ENV_FOLLOW = "Follow until every node holds a verified copy, for the environment"
DASK = "[d]istributed.cli.dask_spec"


def changed(run) -> int:
    return run.changed()


def _succeeds(site, bed, *args, **kwargs):
    """A run of site.yml that must succeed."""
    run = site(bed, *args, **kwargs)
    assert run.status == "successful", failures(run)
    return run


def _changes_nothing(site, bed, *args, **kwargs):
    """A run of site.yml that must succeed and change nothing (the one after a repair)."""
    run = site(bed, *args, **kwargs)
    assert run.status == "successful", failures(run)
    moved = [(d.get("host"), d.get("task")) for d in run.results("runner_on_ok") if (d.get("res") or {}).get("changed")]
    assert moved == [], moved  # which tasks changed, on which host
    return run


def follow_result(run, task: str) -> dict:
    for d in run.results("runner_on_ok") + run.results("runner_on_failed"):
        if d.get("task") == task:
            res = d.get("res") or {}
            return res.get("result") or {"follow": {k: v for k, v in res.items() if k != "invocation"}}
    return {"tasks": [(d.get("host"), d.get("task")) for d in run.results("runner_on_failed")]}


def record(bed, host: str, path: str) -> dict:
    out = bed.ssh(host, f"cat {path} 2>/dev/null", check=False).stdout
    try:
        return json.loads(out)
    except ValueError:
        return {}


def receiving(bed, host: str) -> bool:
    """Whether this run's broadcast is sending to host now (an earlier run's finished record says received)."""
    node = record(bed, "node1", ENV_RECORD).get("nodes", {}).get(host, {})
    return node.get("state") == "receiving" and (node.get("done") or 0) > 2e6


def nothing_managed(bed, host: str) -> list[str]:
    """What the collection would have written on host, if anything."""
    found = []
    if bed.ssh(host, "grep -qs gtsfm.cluster ~/.ssh/authorized_keys", check=False).returncode == 0:
        found.append("authorized_keys block")
    if bed.ssh(host, "grep -qs gtsfm.cluster ~/.bashrc", check=False).returncode == 0:
        found.append("~/.bashrc block")
    if bed.ssh(host, "ls -d ~/gtsfm-env* ~/gtsfm 2>/dev/null", check=False).stdout.strip():
        found.append("env or checkout")
    return found


def test_a_node_down_before_site_stops_everything_then_converges(bed4, site, report):
    bed4.podman("stop", "-t", "1", bed4.container("node4"))
    try:
        first = site(bed4)
    finally:
        bed4.restart("node4")
    assert first.status == "failed"
    assert any("node4" in f"{h} {m}" for h, m in failures(first)), failures(first)
    left = {h: nothing_managed(bed4, h) for h in ("node1", "node2", "node3")}
    assert left == {"node1": [], "node2": [], "node3": []}, left
    second = _succeeds(site, bed4)
    # The first real run on these nodes: its long steps print progress lines, never a retry's FAILED.
    out = "\n".join(e.get("stdout") or "" for e in second.events)
    (ROOT / ".cache").mkdir(exist_ok=True)
    (ROOT / ".cache" / "site-first-run.log").write_text(out)
    assert "FAILED - RETRYING" not in out and re.search(r"node1 -> \d nodes: environment \w+, ", out), out[-3000:]
    _changes_nothing(site, bed4)
    report(
        "node down before site.yml",
        "the stage (before any write)",
        saw(first),
        "nothing on node1-3 (no keys, known_hosts, ~/.bashrc block, env or checkout)",
        f"second run converged ({changed(second)} changed), third changed=0",
        "everything (first real run)",
    )


def _site_with_node3_killed(bed, site, ready, what: str, *args, **kwargs):
    """site.yml in the background, node3 killed once ready() holds: the run, which failed. node3 is back after."""
    thread, runner, events = site(bed, *args, background=True, **kwargs)
    try:
        wait_for(ready, 300, what)
        bed.podman("kill", bed.container("node3"))
        thread.join(600)
    finally:
        bed.restart("node3")
    first = Run(status=runner.status, rc=runner.rc, events=events)
    assert first.status == "failed"
    return first


def _env_lost_at_node3(bed, first) -> None:
    """The run failed naming node3, the environment reached node4 past it, and neither has an env link."""
    assert first.status == "failed"
    assert any("node3" in m for _host, m in failures(first)), failures(first)
    res = follow_result(first, ENV_FOLLOW)
    assert res.get("failed_nodes") == ["node3"] and res.get("received") == ["node4"], res
    for host in ("node3", "node4"):
        assert bed.ssh(host, "test -e ~/gtsfm-env", check=False).returncode != 0, host


def _env_resent_to_node3_only(site, bed) -> int:
    """The next run sends the environment to node3 alone (node4 holds it), the one after changes nothing; the bytes
    sent to node3."""
    second = _succeeds(site, bed)
    res2 = follow_result(second, ENV_FOLLOW)
    assert res2.get("received") == ["node3"] and "node4" in res2.get("held", []), res2
    _changes_nothing(site, bed)
    return res2["nodes"]["node3"].get("bytes", 0)


def test_a_node_killed_during_the_env_broadcast_is_named_and_only_it_is_sent_again(bed4, site, report):
    for host in ("node3", "node4"):
        bed4.ssh(host, "rm -rf ~/gtsfm-env ~/gtsfm-env.* ~/.gtsfm-env*")
    first = _site_with_node3_killed(bed4, site, lambda: receiving(bed4, "node3"), "node3 receiving the environment")
    _env_lost_at_node3(bed4, first)
    # node4 got a verified tree, published (the env link) only by a run that succeeds; node3 nothing it could take
    # for done: no env link, at most a temp copy the next run clears.
    assert bed4.ssh("node4", "ls -d ~/gtsfm-env.*/bin/python", check=False).returncode == 0
    temp = bed4.ssh("node3", "ls -a ~ | grep -c gtsfm-broadcast-tmp", check=False).stdout.strip()
    sent = _env_resent_to_node3_only(site, bed4)
    report(
        "node killed mid-step (podman kill node3)",
        "environment broadcast",
        saw(first),
        f"node4 a verified copy, not yet published (no env link); node3 no env link ({temp} temp copy, removed "
        "by the next run)",
        "second run sent to node3 only, third changed=0",
        f"{sent / 1e6:.1f} MB, to node3 only",
    )


def _site_cmd(bed, extravars: dict | None = None) -> list[str]:
    return bed_play.command(bed, ROOT / "site.yml", extravars=extravars or {})


def _popen_site(bed, extravars: dict | None = None) -> subprocess.Popen:
    return bed_play.start(_site_cmd(bed, extravars))


def _start_until(cmd: list[str], ready, seconds: int, what: str) -> subprocess.Popen:
    """Start cmd and wait until ready() holds; when it never does, stop cmd and fail with what it printed."""
    proc = bed_play.start(cmd)
    try:
        wait_for(ready, seconds, what)
    except AssertionError:
        proc.kill()
        raise AssertionError(proc.communicate()[0][-4000:]) from None
    return proc


def test_ctrl_c_during_a_broadcast_finishes_into_place_and_the_rerun_sends_nothing(bed4, site, report):
    bed4.ssh("node2", "rm -rf ~/gtsfm-env ~/gtsfm-env.* ~/.gtsfm-env*")
    proc = _popen_site(bed4)
    wait_for(lambda: receiving(bed4, "node2"), 300, "node2 receiving the environment")
    os.killpg(proc.pid, signal.SIGINT)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode != 0
    # The broadcast runs on the scheduler, detached from the controller: it finishes into place.
    wait_for(lambda: record(bed4, "node1", ENV_RECORD).get("finished"), 300, "the broadcast to finish")
    placed = record(bed4, "node1", ENV_RECORD)
    assert not placed.get("failed"), placed
    assert bed4.ssh("node2", "test -e ~/gtsfm-env", check=False).returncode != 0  # not published: not taken for done
    second = _succeeds(site, bed4)
    res = follow_result(second, ENV_FOLLOW)
    assert res.get("received") == [] and "node2" in res.get("held", []), res
    _changes_nothing(site, bed4)
    last = [line for line in out.splitlines() if line.strip()][-1:]
    report(
        "controller interrupted (SIGINT to ansible-playbook)",
        "environment broadcast",
        "the play stopped: " + " ".join(last)[:160],
        "the broadcast finished on its own: node2 holds a verified copy, not yet published (no env link)",
        "second run published it without sending, third changed=0",
        "0 B",
    )


# SIGKILL: the controller gone at once (a laptop's battery); SIGINT: Ctrl-C, which Ansible handles on its way out.
STOPS = pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])


def _stopped(sig) -> str:
    return "controller {} ({} to ansible-playbook)".format(
        "killed" if sig == signal.SIGKILL else "interrupted", sig.name
    )


def _saw_stop(sig, out: str, what: str) -> str:
    """What the user saw of the stop: a SIGINT's last line, as Ansible prints it."""
    if sig == signal.SIGKILL:
        return "the play was killed; " + what
    last = [line for line in out.splitlines() if line.strip()][-1:]
    return "the play stopped: {}; {}".format(" ".join(" ".join(last).split())[:120], what)


def _job_cmd(bed, tmp: Path, name: str, config: str) -> list[str]:
    return bed_play.gtsfm_run(
        bed,
        gtsfm_run_dataset_dir="/home/gtsfm/data/standin",
        gtsfm_run_config_name=config,
        gtsfm_run_name=name,
        gtsfm_run_poll_interval=1,
        gtsfm_run_fetch_dest=str(tmp / "results"),
    )


def _job_again(bed, tmp: Path, name: str, config: str, merged: bool = False) -> subprocess.CompletedProcess:
    """The job play run to its end, its output captured (merged: stderr into stdout)."""
    output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT} if merged else {"capture_output": True}
    return subprocess.run(
        _job_cmd(bed, tmp, name, config),
        **output,
        text=True,
        env=bed_play.env(),
        timeout=600,
        check=False,
    )


def _job_state(bed) -> dict:
    return record(bed, "node1", "~/.cache/gtsfm.cluster/jobs/last/status.json")


@STOPS
def test_controller_stopped_while_following_a_job_then_the_rerun_follows_the_same_job(bed4, tmp_path, report, sig):
    bed_play.unpack_stand_in(bed4)
    name = "fault-follow-" + sig.name
    before = _job_state(bed4).get("run_id")
    proc = _start_until(
        _job_cmd(bed4, tmp_path, name, "hold_40.yaml"),
        lambda: _job_state(bed4).get("state") == "running" and _job_state(bed4).get("run_id") != before,
        120,
        "the job to run",
    )
    run_id = _job_state(bed4)["run_id"]
    os.killpg(proc.pid, sig)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode != 0
    assert _job_state(bed4).get("state") == "running"  # the supervisor lives on, detached from the controller
    again = _job_again(bed4, tmp_path, name, "hold_40.yaml")
    assert again.returncode == 0, again.stdout[-3000:]
    assert f"job {run_id} finished" in again.stdout, again.stdout[-3000:]
    # Each run's own directory (jobs/last is a link to the latest one, not a run).
    runs = bed4.ssh(
        "node1", f'grep -l \'"name": "{name}"\' ~/.cache/gtsfm.cluster/jobs/2*/spec.json | wc -l'
    ).stdout.strip()
    assert runs == "1", runs
    assert list((tmp_path / "results").rglob("hosts.json"))
    report(
        _stopped(sig),
        "following the job",
        _saw_stop(sig, out, "the job went on under its supervisor"),
        "the running job and its lock, nothing else",
        f"the re-run followed the same run {run_id} to its end (no second job) and fetched its results",
        "none",
    )


def _joined_since(bed, before) -> bool:
    """Whether a job other than run before has every worker joined (jobs/last names the latest run)."""
    state = _job_state(bed)
    return state.get("run_id") != before and state.get("all_joined_after") is not None


def _job_with_a_node_killed(bed, tmp: Path, name: str, before, host: str) -> tuple[str, str]:
    """A long job (not run before) killed at host once every worker joined: its run id and what the play printed,
    which failed. host is back when this returns."""
    proc = _start_until(
        _job_cmd(bed, tmp, name, "hold_300.yaml"),
        lambda: _joined_since(bed, before),
        180,
        "every worker of this job to join",
    )
    run_id = _job_state(bed)["run_id"]
    bed.podman("kill", bed.container(host))
    try:
        out = proc.communicate(timeout=600)[0]
    finally:
        bed.restart(host)
    assert proc.returncode != 0
    return run_id, out


def _tagged(bed, hosts) -> dict[str, str]:
    return {h: bed.ssh(h, f"pgrep -u gtsfm -af '{DASK}' || true").stdout.strip() for h in hosts}


def test_a_worker_node_killed_mid_job_fails_naming_it_and_leaves_no_tagged_process(bed4, tmp_path, report):
    before = _job_state(bed4).get("run_id")  # jobs/last still shows the job before this one until it starts
    _run_id, out = _job_with_a_node_killed(bed4, tmp_path, "fault-worker", before, "node4")
    message = re.findall(r"job \S+ failed: [^\n]*", out)
    assert message and "node4" in message[0], out[-3000:]
    left = _tagged(bed4, bed4.nodes)
    assert left == {h: "" for h in bed4.nodes}, left
    assert bed4.ssh("node1", "test -L ~/.cache/gtsfm.cluster/jobs/lock", check=False).returncode != 0
    again = _job_again(bed4, tmp_path, "fault-worker-again", "hold_3.yaml")
    assert again.returncode == 0, again.stdout[-3000:]
    report(
        "worker node killed mid-job (podman kill node4)",
        "the SfM job",
        message[0][:220],
        "no tagged Dask process on any node (checked by the tag); the lock released",
        "a new job after node4 came back finished",
        "none",
    )


def test_the_scheduler_node_killed_mid_job_fails_naming_it_and_the_next_run_takes_over_the_lock(bed4, tmp_path, report):
    bed_play.unpack_stand_in(bed4)  # as the follow's cases left it (this case also runs alone)
    before = _job_state(bed4).get("run_id")
    # node1: the scheduler, its supervisor and the job's lock with it.
    run_id, out = _job_with_a_node_killed(bed4, tmp_path, "fault-scheduler", before, "node1")
    named = re.findall(r"node1 did not answer [^\n]*", out)
    assert named and run_id in named[0], out[-3000:]
    # The workers on node2-4 end with their scheduler (Dask's own: the connection to it is gone); checked by the tag.
    assert _tagged(bed4, bed4.nodes) == {h: "" for h in bed4.nodes}
    # The supervisor died with node1, so nothing released the lock: it still names the lost run, for the next start.
    lock = bed4.ssh("node1", "readlink ~/.cache/gtsfm.cluster/jobs/lock || true").stdout.strip()
    assert lock in ("", run_id), lock
    again = _job_again(bed4, tmp_path, "fault-scheduler-again", "hold_3.yaml", merged=True)
    assert again.returncode == 0, again.stdout[-3000:]
    said = " ".join(again.stdout.split())  # the play's warnings (on stderr) with the rest
    taken = re.search(rf"node1: the cluster lock \S+ named run {run_id} \(.*?\), whose supervisor is gone[^.]*\.", said)
    assert taken or not lock, said[-3000:]
    assert _tagged(bed4, bed4.nodes) == {h: "" for h in bed4.nodes}
    report(
        "scheduler node killed mid-job (podman kill node1)",
        "the SfM job",
        " ".join(named[0].split())[:220],
        "no tagged Dask process on any node (checked by the tag; node2-4's workers ended with their scheduler); "
        + ("the lock still named the lost run (its supervisor died with node1)" if lock else "the lock released"),
        "the next job took the lock over, saying so ("
        + (taken.group(0)[:140] + "...)" if taken else "no lock)")
        + ", and finished",
        "none",
    )


# --- a weight file corrupted on one node after a good run ---------------------------------------------------------

WEIGHTS = {"flip.bin": os.urandom(1_500_000), "cut.bin": os.urandom(1_000_000)}
WEIGHT_PATHS = {"flip.bin": "~/gtsfm/thirdparty/fault/flip.bin", "cut.bin": "~/gtsfm/thirdparty/fault/cut.bin"}
WEIGHTS_FOLLOW = "Follow each file until every node holds it, printing bytes, rate and time left"
# One byte flipped in place with the file's size, times, inode and mode put back: what a bad disk or a stray write
# leaves, and what no record or signature can see.
FLIP = (
    "import os, sys; p = os.path.expanduser(sys.argv[1]); st = os.stat(p); f = open(p, 'r+b'); f.seek(4096); "
    "b = f.read(1); f.seek(4096); f.write(bytes([b[0] ^ 0xff])); f.close(); "
    "os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))"
)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _weight_sums(bed, host: str) -> dict[str, str]:
    out = bed.ssh(host, "sha256sum " + " ".join(WEIGHT_PATHS.values()) + " 2>/dev/null || true").stdout
    by_path = {line.split()[1]: line.split()[0] for line in out.splitlines() if line.strip()}
    return {name: by_path.get(path.replace("~", "/home/gtsfm"), "") for name, path in WEIGHT_PATHS.items()}


def _weights_follows(run) -> dict[str, dict]:
    """file name -> the follow's result for it, from the loop's items."""
    out = {}
    for d in run.results("runner_item_on_ok") + run.results("runner_item_on_failed"):
        if d.get("task") == WEIGHTS_FOLLOW:
            res = d.get("res") or {}
            out[res["item"]["item"]["name"].rsplit("/", 1)[-1]] = res.get("result") or res
    return out


def _weights_vars(origin, tmp: Path, *names: str, **more) -> dict:
    """model_weights settings for the origin's files names, each at thirdparty/fault/NAME, the lock file in tmp."""
    return dict(
        more,
        model_weights_files=[{"url": origin.url(n), "dest": "thirdparty/fault/" + n} for n in names],
        model_weights_lock_file=str(tmp / "model_weights.lock.json"),
        model_weights_poll_delay=1,
        model_weights_retry_delay=0,
    )


@pytest.fixture(scope="module")
def origin_server(bed4):
    net = json.loads(
        subprocess.run(
            ["podman", "network", "inspect", f"gtsfm-{bed4.name}"], capture_output=True, text=True, check=True
        ).stdout
    )[0]
    with tempfile.TemporaryDirectory() as root, Origin(Path(root), host=net["subnets"][0]["gateway"]) as server:
        for name, data in WEIGHTS.items():
            server.put(name, data)
        yield server


@pytest.fixture
def origin(bed4, origin_server):
    """The bed's origin; the folder of weights a case put under thirdparty/fault is removed from every node after it.

    A weight the next case does not list is no longer excluded from the checkout, so its whole-site run would find
    it as a new checkout file and send the checkout again (as for a user who drops a file from model_weights_files).
    The folders go too, thirdparty when it is left empty (the bed's checkout has none): the checkout's copy leaves
    out a folder holding only excluded files, but not an empty one.
    """
    yield origin_server
    for host in bed4.nodes:
        bed4.ssh(host, "rm -rf ~/gtsfm/thirdparty/fault; rmdir ~/gtsfm/thirdparty 2>/dev/null; true", check=False)


def test_a_weight_file_corrupted_on_one_node_is_repaired_from_the_scheduler_without_the_origin(
    bed4, site, origin, tmp_path, report
):
    weights = _weights_vars(origin, tmp_path, *WEIGHTS)
    _succeeds(site, bed4, weights)
    want = {n: _sha(d) for n, d in WEIGHTS.items()}
    assert {h: _weight_sums(bed4, h) for h in bed4.nodes} == {h: want for h in bed4.nodes}
    origin.reset()
    bed4.ssh(
        "node3",
        f"python3 -c {shlex.quote(FLIP)} {WEIGHT_PATHS['flip.bin']} && truncate -s 300000 {WEIGHT_PATHS['cut.bin']}",
    )
    bad = _weight_sums(bed4, "node3")
    assert bad["flip.bin"] not in ("", want["flip.bin"]) and bad["cut.bin"] not in ("", want["cut.bin"]), bad

    second = _succeeds(site, bed4, weights)
    assert origin.requests == []  # the scheduler's verified copy was the source, not the origin
    follows = _weights_follows(second)
    assert {n: r.get("received") for n, r in follows.items()} == {"flip.bin": ["node3"], "cut.bin": ["node3"]}, follows
    sent = {n: r["nodes"]["node3"].get("bytes", 0) for n, r in follows.items()}
    assert sent == {n: len(d) for n, d in WEIGHTS.items()}, sent  # each file once, to node3 alone
    assert {h: _weight_sums(bed4, h) for h in bed4.nodes} == {h: want for h in bed4.nodes}
    leftover = bed4.ssh("node3", "find ~/gtsfm/thirdparty/fault -name '*gtsfm-broadcast-tmp*'").stdout.strip()
    assert leftover == "", leftover
    why = {n: r["nodes"]["node3"].get("why", "") for n, r in follows.items()}

    _changes_nothing(site, bed4, weights)
    assert origin.requests == []
    report(
        "a weight file corrupted on node3 after a good run (one byte flipped, size and times kept; another truncated)",
        "weight distribution",
        "the run succeeded; the broadcast's probe hashed each copy and sent both files to node3 only"
        + (f" ({'; '.join(sorted(set(w for w in why.values() if w)))})" if any(why.values()) else ""),
        "nothing: each verified copy was moved into place over the bad one",
        "second run repaired node3 from the scheduler with 0 requests to the origin, third changed=0",
        f"{sum(sent.values()) / 1e6:.1f} MB (the two files, to node3 only); origin requests: 0",
    )


# --- a node killed while a weight file is distributed ---------------------------------------------------------------

WEIGHT_SENDS = (
    "import glob, json, os; out = []\n"
    "for f in glob.glob(os.path.expanduser('~/.cache/gtsfm.cluster/fetch/broadcast-*.json')):\n"
    "    try: out.append(json.load(open(f)))\n"
    "    except ValueError: pass\n"
    "print(json.dumps(out))"
)


def _sending_weight(bed, host: str, name: str) -> bool:
    """Whether a weight broadcast of this run is sending name to host now."""
    out = bed.ssh("node1", f"python3 -c {shlex.quote(WEIGHT_SENDS)}", check=False).stdout
    try:
        records = json.loads(out or "[]")
    except ValueError:
        return False
    return any(
        name in json.dumps(r.get("what", "")) + json.dumps(r.get("path", ""))
        and not r.get("finished")
        and (r.get("nodes", {}).get(host, {}).get("state") == "receiving")
        and (r["nodes"][host].get("done") or 0) > 2e6
        for r in records
    )


def test_a_node_killed_while_a_weight_file_is_distributed_is_named_and_only_it_is_sent_again(
    bed4, site, origin, tmp_path, report
):
    data = os.urandom(30_000_000)  # about 6 s a hop at 40mbit: node3 is caught in the middle
    origin.put("spread.bin", data)
    origin.reset()
    dest = "~/gtsfm/thirdparty/fault/spread.bin"
    weights = _weights_vars(origin, tmp_path, "spread.bin")
    first = _site_with_node3_killed(
        bed4,
        site,
        lambda: _sending_weight(bed4, "node3", "spread.bin"),
        "node3 receiving spread.bin",
        weights,
        tags="model_weights",
    )
    # A loop's task fails as "One or more items failed"; its item says what happened.
    said = [str((d.get("res") or {}).get("msg") or "") for d in first.results("runner_item_on_failed")]
    assert any("no verified copy on node3" in m for m in said), (said, failures(first))
    res = _weights_follows(first).get("spread.bin", {})
    assert res.get("failed_nodes") == ["node3"], res
    # Nothing at the file's name on node3 (at most a temp copy, which the next hop there removes).
    assert bed4.ssh("node3", f"test -e {dest}", check=False).returncode != 0
    temp = bed4.ssh("node3", "ls -a ~/gtsfm/thirdparty/fault | grep -c gtsfm-broadcast-tmp || true").stdout.strip()
    origin.reset()
    second = _succeeds(site, bed4, weights, tags="model_weights")
    assert origin.requests == []  # the scheduler's verified copy is the source
    res2 = _weights_follows(second)["spread.bin"]
    assert res2.get("received") == ["node3"], res2
    sent = res2["nodes"]["node3"].get("bytes", 0)
    assert {h: bed4.ssh(h, f"sha256sum {dest}").stdout.split()[0] for h in bed4.nodes} == {
        h: _sha(data) for h in bed4.nodes
    }
    leftover = bed4.ssh("node3", "ls -a ~/gtsfm/thirdparty/fault | grep -c gtsfm-broadcast-tmp || true").stdout.strip()
    assert leftover == "0", leftover
    _changes_nothing(site, bed4, weights)
    assert origin.requests == []
    report(
        "node killed mid-step (podman kill node3)",
        "weight distribution (a 30 MB file from the scheduler)",
        "node1: " + " ".join(next(m for m in said if "node3" in m).split())[:220],
        f"node3: nothing at the file's name ({temp} temp copy, removed by the next run); "
        f"the nodes past it: {', '.join(res.get('received') or []) or 'none'} a verified copy",
        "second run (model_weights) sent the file to node3 only, 0 requests to the origin; third changed=0",
        f"{sent / 1e6:.1f} MB, to node3 only",
    )


# --- a node killed while the checkout is copied ---------------------------------------------------------------------

CHECKOUT_RECORD = "~/.cache/gtsfm.cluster/progress/conda_env-the-checkout.json"
CHECKOUT_FOLLOW = "Follow until every node holds a verified copy, for the checkout"


def test_a_node_killed_during_the_checkout_copy_is_named_and_only_it_is_sent_again(bed4, site, tmp_path, report):
    # The bed's stand-in checkout is a few kB: this one carries 30 MB more (about 6 s a hop at 40mbit), so node3 is
    # caught in the middle. Its environment file is the stand-in's, so the environment stays as it is.
    source = tmp_path / "checkout"
    subprocess.run(["cp", "-a", bed4.vars()["conda_env_checkout_src"], str(source)], check=True)
    (source / "blob.bin").write_bytes(os.urandom(30_000_000))
    big = {"conda_env_checkout_src": str(source)}

    def copying() -> bool:
        node = record(bed4, "node1", CHECKOUT_RECORD).get("nodes", {}).get("node3", {})
        return node.get("state") == "receiving" and (node.get("done") or 0) > 2e6

    first = _site_with_node3_killed(bed4, site, copying, "node3 receiving the checkout", big)
    assert any("node3" in m for _host, m in failures(first)), failures(first)
    res = follow_result(first, CHECKOUT_FOLLOW)
    assert res.get("failed_nodes") == ["node3"], res
    # node3 keeps the checkout it had, whole (the new one is swapped in only once verified): no part of the new one.
    assert bed4.ssh("node3", "test -e ~/gtsfm/blob.bin", check=False).returncode != 0
    assert bed4.ssh("node3", "test -f ~/gtsfm/environment_linux.yml", check=False).returncode == 0
    temp = bed4.ssh("node3", "ls -a ~ | grep -c gtsfm-broadcast-tmp || true").stdout.strip()
    second = _succeeds(site, bed4, big)
    res2 = follow_result(second, CHECKOUT_FOLLOW)
    assert res2.get("received") == ["node3"], res2
    sent = res2["nodes"]["node3"].get("bytes", 0)
    want = hashlib.sha256((source / "blob.bin").read_bytes()).hexdigest()
    assert {h: bed4.ssh(h, "sha256sum ~/gtsfm/blob.bin").stdout.split()[0] for h in bed4.nodes} == {
        h: want for h in bed4.nodes
    }
    assert bed4.ssh("node3", "ls -a ~ | grep -c gtsfm-broadcast-tmp || true").stdout.strip() == "0"
    _changes_nothing(site, bed4, big)
    # Back to the bed's own checkout for the cases after this one.
    _succeeds(site, bed4)
    report(
        "node killed mid-step (podman kill node3)",
        "checkout copy (30 MB more than the stand-in)",
        saw(first),
        f"node3: its earlier checkout, whole (nothing of the new one; {temp} temp copy, removed by the next run)",
        "second run sent the checkout to node3 only, third changed=0",
        f"{sent / 1e6:.1f} MB, to node3 only",
    )


# --- the controller killed (SIGKILL) or interrupted (SIGINT) during the env build and during a weight fetch -------

ENV_BUILD = "~/.cache/gtsfm.cluster/progress/conda_env-build.json"
ENV_REAL = "ls -d ~/gtsfm-env.????????????"
UV = "~/.local/share/gtsfm/bin/uv"
SLOW_UV = "~/.local/share/gtsfm/bin/uv-slow"


def _stop_site_when(bed, extravars: dict | None, ready, what: str, sig=signal.SIGKILL) -> str:
    """Start site.yml, send sig to its whole process group once ready() holds, and return what it printed."""
    proc = _start_until(_site_cmd(bed, extravars), ready, 300, what)
    os.killpg(proc.pid, sig)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode != 0, out[-3000:]
    return out


@STOPS
def test_controller_stopped_during_the_env_build_then_the_rerun_waits_for_it_and_builds_nothing(
    bed4, site, report, sig
):
    for host in bed4.nodes:
        bed4.ssh(host, "rm -rf ~/gtsfm-env ~/gtsfm-env.* ~/.gtsfm-env*")
    # From the bed's local wheelhouse and uv's cache the build takes well under a second: the killed run's uv
    # pauses 20 s before installing, so the controller is caught in the middle (the uv path is no input of the env).
    bed4.ssh(
        "node1",
        f"printf '%s\\n' '#!/bin/sh' '[ \"$1\" = pip ] && sleep 20' 'exec {UV} \"$@\"' > {SLOW_UV} && "
        f"chmod +x {SLOW_UV}",
    )

    def building() -> bool:
        rec = record(bed4, "node1", ENV_BUILD)
        return rec.get("phase") == "build" and not rec.get("finished")

    out = _stop_site_when(bed4, {"conda_env_uv_path": SLOW_UV}, building, "the environment build to run on node1", sig)
    # The build goes on on node1, detached from the killed controller; until its record is written last no run
    # takes it for done, and no node has an env link that names an unfinished tree.
    real = bed4.ssh("node1", ENV_REAL).stdout.strip()
    inode = bed4.ssh("node1", f"stat -c %i {real}").stdout.strip()
    for host in bed4.nodes:
        link = bed4.ssh(host, "readlink ~/gtsfm-env || true").stdout.strip()
        if link:
            assert (
                host == "node1" and bed4.ssh(host, "test -f ~/gtsfm-env/.gtsfm-env.json", check=False).returncode == 0
            ), (host, link)
    left = bed4.ssh("node1", f"test -f {real}/.gtsfm-env.json && echo finished || echo unfinished").stdout.strip()

    second = _succeeds(site, bed4)
    # One build in all: the re-run waited for the background one (or found it done), never started its own.
    assert bed4.ssh("node1", f"stat -c %i {real}").stdout.strip() == inode
    builds = [
        d
        for d in second.results("runner_on_ok")
        if d.get("task", "").startswith("Follow to its end") and "build" in d.get("task", "")
    ]
    waited = [(d.get("res") or {}).get("result", {}).get("waited_for") for d in builds]
    res = follow_result(second, ENV_FOLLOW)
    assert sorted(res.get("received", [])) == ["node2", "node3", "node4"], res
    sent = sum((res["nodes"][h].get("bytes") or 0) for h in ("node2", "node3", "node4"))
    _changes_nothing(site, bed4)
    report(
        _stopped(sig),
        "environment build (node1)",
        _saw_stop(sig, out, "the build went on in the background on node1"),
        f"node1: {real} {left} (no record until the build's end, so no run takes it for done); no env link "
        "naming an unfinished tree; nothing on node2-4",
        "second run "
        + (
            f"waited for the background build (pid {waited[0]}) and"
            if any(waited)
            else "found the background build finished and"
        )
        + " built nothing; third changed=0",
        f"no second build; {sent / 1e6:.1f} MB: the environment to node2-4, which had none",
    )


@STOPS
def test_controller_stopped_during_a_weight_fetch_then_the_rerun_asks_the_origin_nothing_more(
    bed4, site, origin, tmp_path, report, sig
):
    data = os.urandom(3_000_000)
    name = f"slow-{sig.name}.bin"
    origin.put(name, data)
    # About 128 kB/s: the fetch is caught in the middle, and the re-run (the stage and model_weights alone) reaches
    # its own fetch while the killed run's one still goes on in the background.
    origin.drip[name] = (64 * 1024, 0.5)
    origin.reset()
    dest = f"~/gtsfm/thirdparty/fault/{name}"
    weights = _weights_vars(origin, tmp_path, name)
    partial = f"~/gtsfm/thirdparty/fault/.{name}.gtsfm-partial"

    def fetching() -> bool:
        size = bed4.ssh("node1", f"stat -c %s {partial} 2>/dev/null || echo 0").stdout.strip()
        return int(size or 0) > 200_000

    out = _stop_site_when(bed4, weights, fetching, f"the fetch of {name} to be under way on node1", sig)
    # Nothing at the file's name on any node while the background fetch goes on (only the hidden partial file).
    at_kill = {h: bed4.ssh(h, f"test -e {dest} && echo present || echo absent").stdout.strip() for h in bed4.nodes}
    assert all(v == "absent" for h, v in at_kill.items() if h != "node1"), at_kill

    second = _succeeds(site, bed4, weights, tags="model_weights")
    fetched = [
        (d.get("res") or {}).get("result") or {}
        for d in second.results("runner_item_on_ok")
        if d.get("task") == "Follow the downloads to their end, printing each one's bytes, rate and time left"
    ]
    gets = origin.gets(name)
    # The killed run's one download, finished in the background; the re-run waited for it or found it in place.
    assert len(gets) == 1 and sum(g.sent for g in gets) == len(data), [(g.range, g.status, g.sent) for g in gets]
    assert {h: bed4.ssh(h, f"sha256sum {dest}").stdout.split()[0] for h in bed4.nodes} == {
        h: _sha(data) for h in bed4.nodes
    }
    left = bed4.ssh("node1", "ls -a ~/gtsfm/thirdparty/fault | grep -c gtsfm-partial || true").stdout.strip()
    assert left == "0", left
    _changes_nothing(site, bed4, weights)
    assert len(origin.gets(name)) == 1
    report(
        _stopped(sig),
        "weight fetch (node1, from the origin)",
        _saw_stop(sig, out, "the download went on in the background on node1"),
        "only the hidden partial file on node1 (nothing at the file's name on any node)",
        "second run (model_weights) took the background download's file (its lock makes it wait while that runs), "
        f"verified it ({fetched[0].get('requests') if fetched else '?'} requests of its own) and sent it to "
        "node2-4; third changed=0",
        f"origin: 1 request, {len(data) / 1e6:.1f} MB in all (no second download)",
    )


# --- sshd stalled on one node during a step ------------------------------------------------------------------------


def _sshd(bed, host: str, signal_name: str) -> None:
    """Send signal_name to every sshd process on host (the listener and each session's), as root in the node."""
    bed.podman("exec", "-u", "0", bed.container(host), "pkill", f"-{signal_name}", "-x", "sshd")


def test_sshd_stalled_on_a_node_during_the_env_broadcast_is_named_and_only_it_is_sent_again(bed4, site, report):
    for host in ("node3", "node4"):
        bed4.ssh(host, "rm -rf ~/gtsfm-env ~/gtsfm-env.* ~/.gtsfm-env*")
    thread, runner, events = site(bed4, background=True)
    try:
        wait_for(lambda: receiving(bed4, "node3"), 300, "node3 receiving the environment")
        _sshd(bed4, "node3", "STOP")  # every session stalls: no byte in or out, no error either
        thread.join(600)
    finally:
        _sshd(bed4, "node3", "CONT")
    first = Run(status=runner.status, rc=runner.rc, events=events)
    _env_lost_at_node3(bed4, first)
    bed4.wait_ssh("node3")
    sent = _env_resent_to_node3_only(site, bed4)
    report(
        "sshd stalled on node3 (SIGSTOP to every sshd process)",
        "environment broadcast",
        saw(first),
        "node4 a verified copy, not yet published (no env link); node3 no env link",
        "after SIGCONT the second run sent to node3 only, third changed=0",
        f"{sent / 1e6:.1f} MB, to node3 only",
    )


# --- two controllers at once ----------------------------------------------------------------------------------------


def test_two_controllers_at_once_one_waits_for_the_other_and_nothing_is_lost(bed4, site, origin, tmp_path, report):
    for host in ("node3", "node4"):
        bed4.ssh(host, "rm -rf ~/gtsfm-env ~/gtsfm-env.* ~/.gtsfm-env*")
    data = os.urandom(1_000_000)
    origin.put("both.bin", data)
    origin.drip["both.bin"] = (64 * 1024, 0.25)
    origin.reset()
    dest = "~/gtsfm/thirdparty/fault/both.bin"
    weights = _weights_vars(origin, tmp_path, "both.bin")
    procs = [_popen_site(bed4, weights), _popen_site(bed4, weights)]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    codes = [p.returncode for p in procs]
    assert 0 in codes, [o[-3000:] for o in outs]
    refused = [o for o, c in zip(outs, codes) if c != 0]
    for out in refused:  # a controller that did not wait is refused naming the node and the other writer
        assert re.search(r"node\d.*another (broadcast|run|fetch)", out, re.S), out[-3000:]
    # One download from the origin in all: the second controller's fetch waited on the first's lock.
    gets = origin.gets("both.bin")
    assert len(gets) == 1 and sum(g.sent for g in gets) == len(data), [(g.range, g.status, g.sent) for g in gets]
    after = _succeeds(site, bed4, weights)
    for host in bed4.nodes:
        assert bed4.ssh(host, f"sha256sum {dest}").stdout.split()[0] == _sha(data), host
        assert bed4.ssh(host, "test -f ~/gtsfm-env/.gtsfm-env.json", check=False).returncode == 0, host
        # (The broadcast's .NAME.gtsfm-broadcast.lock files stay by design: empty, never taken for content.)
        junk = bed4.ssh(
            host,
            "find ~ -maxdepth 4 -name '*gtsfm-broadcast-tmp*' -o -maxdepth 4 -name "
            "'*gtsfm-partial*' -o -maxdepth 4 -name '*.gtsfm-build.lock' -o -maxdepth 4 "
            "-name '*.gtsfm-fetch.lock'",
        ).stdout.strip()
        assert junk == "", (host, junk)
    _changes_nothing(site, bed4, weights)
    refusal = next((line for o in refused for line in o.splitlines() if "another" in line), "")
    report(
        "two controllers run site.yml at once",
        "every step (env to node3-4, a weight download)",
        "both finished" if not refused else "one finished; the other: " + " ".join(refusal.split())[:200],
        "nothing half-written on any node (no temp copy, partial file, build or fetch lock)",
        f"a run after both {'changed nothing' if changed(after) == 0 else 'converged'} "
        f"({changed(after)} changed), the next changed=0",
        f"origin: 1 request, {len(data) / 1e6:.1f} MB (the second fetch waited for the first)",
    )


# --- a full disk on one node during the env copy (last: it recreates node4 with a small home) --------------------


def test_a_full_disk_on_a_node_during_the_env_copy_is_named_and_only_it_is_sent_again(bed4, site, report):
    bed4.podman("rm", "-f", "-t", "1", bed4.container("node4"))
    run_testbed("up", "--nodes", "4", "--name", bed4.name, "--link-rate", LINK_RATE, "--home-size", "node4=200m")
    bed4.wait_ssh("node4")
    small = {"conda_env_min_free_mb": 16}  # the preflight lets the copy start; the disk fills while it runs
    thread, runner, events = site(bed4, small, background=True)
    wait_for(lambda: receiving(bed4, "node4"), 300, "node4 receiving the environment")
    bed4.ssh("node4", "dd if=/dev/zero of=~/ballast bs=1M 2>/dev/null || true")  # fill the rest of its home
    thread.join(600)
    first = Run(status=runner.status, rc=runner.rc, events=events)
    assert first.status == "failed"
    assert any(
        "no verified copy on node4 (no space left on the file system of /home/gtsfm there" in m
        for _host, m in failures(first)
    ), failures(first)
    res = follow_result(first, ENV_FOLLOW)
    assert "node4" in res.get("failed_nodes", []), res
    # Nothing node4 could take for done: no env link, no temporary tree left filling its disk.
    assert bed4.ssh("node4", "test -e ~/gtsfm-env", check=False).returncode != 0
    temp = bed4.ssh("node4", "ls -a ~ | grep -c gtsfm-broadcast-tmp || true").stdout.strip()
    assert temp == "0", temp
    bed4.ssh("node4", "rm -f ~/ballast")
    second = _succeeds(site, bed4, small)
    res2 = follow_result(second, ENV_FOLLOW)
    assert res2.get("received") == ["node4"], res2
    _changes_nothing(site, bed4, small)
    sent = res2["nodes"]["node4"].get("bytes", 0)
    report(
        "a full disk on node4 (a 200 MB home filled while it receives)",
        "environment copy",
        saw(first),
        "node4: no env link and no temporary copy (removed as the hop failed)",
        "after the ballast was removed the second run sent to node4 only, third changed=0",
        f"{sent / 1e6:.1f} MB, to node4 only",
    )


# --- a full disk on the scheduler during a weight download (last: it recreates node1 with a small home) ----------


def test_a_full_disk_on_the_scheduler_during_a_weight_download_is_named_and_the_rerun_resumes(
    bed4, site, origin, tmp_path, report
):
    bed4.podman("rm", "-f", "-t", "1", bed4.container("node1"))
    run_testbed("up", "--nodes", "4", "--name", bed4.name, "--link-rate", LINK_RATE, "--home-size", "node1=400m")
    bed4.wait_ssh("node1")
    small = {"conda_env_min_free_mb": 16}
    # node1 is a new machine (new host keys, an empty home): everything there again, before the case itself.
    _succeeds(site, bed4, small)
    data = os.urandom(3_000_000)
    origin.put("full.bin", data)
    origin.drip["full.bin"] = (64 * 1024, 0.5)  # about 128 kB/s: the disk fills in the middle of the download
    origin.reset()
    dest = "~/gtsfm/thirdparty/fault/full.bin"
    partial = "~/gtsfm/thirdparty/fault/.full.bin.gtsfm-partial"
    weights = _weights_vars(origin, tmp_path, "full.bin", **small)

    def size_of(host: str, path: str) -> int:
        return int(bed4.ssh(host, f"stat -c %s {path} 2>/dev/null || echo 0").stdout.strip() or 0)

    thread, runner, events = site(bed4, weights, background=True, tags="model_weights")
    wait_for(lambda: size_of("node1", partial) > 300_000, 300, "the download of full.bin to be under way on node1")
    # All but 1 MB of node1's home: the download hits ENOSPC about a third of the way in (what is left lets the
    # job's own result file still be written, as on a disk that is nearly full rather than at 0 bytes).
    bed4.ssh(
        "node1",
        "avail=$(df -Pk ~ | awk 'NR==2 {print $4}'); "
        "dd if=/dev/zero of=~/ballast bs=1k count=$((avail - 1024)) 2>/dev/null || true",
    )
    thread.join(600)
    first = Run(status=runner.status, rc=runner.rc, events=events)
    assert first.status == "failed"
    named = [m for h, m in failures(first) if "node1" in f"{h} {m}" and "filled up" in m]
    assert named and "resumes from there" in named[0], failures(first)
    # Nothing at the file's name on any node; the head that arrived is kept, hidden, on node1 alone.
    at_fail = {h: bed4.ssh(h, f"test -e {dest} && echo present || echo absent").stdout.strip() for h in bed4.nodes}
    assert set(at_fail.values()) == {"absent"}, at_fail
    head = size_of("node1", partial)
    assert 300_000 < head < len(data), head
    bed4.ssh("node1", "rm -f ~/ballast")
    origin.drip.pop("full.bin")
    origin.reset()
    _succeeds(site, bed4, weights, tags="model_weights")
    gets = origin.gets("full.bin")
    # Only the rest: one request, from the kept head on.
    assert [(g.range, g.sent) for g in gets] == [(f"bytes={head}-", len(data) - head)], [
        (g.range, g.status, g.sent) for g in gets
    ]
    assert {h: bed4.ssh(h, f"sha256sum {dest}").stdout.split()[0] for h in bed4.nodes} == {
        h: _sha(data) for h in bed4.nodes
    }
    _changes_nothing(site, bed4, weights)
    assert len(origin.gets("full.bin")) == 1
    report(
        "a full disk on node1, the scheduler (a 400 MB home filled to its last MB while a weight downloads)",
        "weight fetch (node1, from the origin)",
        " ".join(named[0].split())[:220],
        f"nothing at the file's name on any node; node1: the {head / 1e6:.1f} MB that arrived, in the hidden "
        "partial file (to resume from)",
        "after the ballast was removed the second run (model_weights) resumed from the kept head with one "
        "request and sent the file to node2-4; third changed=0",
        f"origin: {(len(data) - head) / 1e6:.1f} MB of {len(data) / 1e6:.1f} MB (the rest only)",
    )
