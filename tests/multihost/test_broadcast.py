"""gtsfm.cluster.broadcast on real test beds: a 4-node bed with 100 Mbit/s links, and a shared-home bed.

Acceptance of issue 14: a 100 MB random file and a tree with symlinks, hard links and exec bits arrive
byte-identical with modes kept; a re-run sends nothing; a middle node killed mid-transfer is named, the others hold
verified copies, nothing partial sits at its destination, and a re-run once it is back completes it; on a shared
home one copy is written. The mesh comes from site.yml --tags ssh_mesh,known_hosts, as on a real cluster.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import ansible_runner
import pytest

from conftest import ROOT, Bed, run_testbed

PLAY = ROOT / "benchmarks" / "broadcast_play.yml"
ASYNC_PLAY = ROOT / "tests" / "multihost" / "playbooks" / "broadcast_async.yml"
ROLE_PLAY = ROOT / "tests" / "multihost" / "playbooks" / "broadcast_role.yml"
TAGS = "ssh_mesh,known_hosts"
# ansible-playbook from the interpreter's own venv, however pytest was started.
VENV_PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
MB = 100
TREE_LISTING = (
    "cd {p} && find . -printf '%y %m %n %s %l %p\\n' | sort && "
    "find . -type f -exec sha256sum {{}} + | sort && stat -c %i a sub/hard | uniq | wc -l"
)


def bring_up(name: str, nodes: int, *extra: str) -> Bed:
    run_testbed("down", "--name", name)
    path = Path(run_testbed("up", "--nodes", str(nodes), "--name", name, *extra))
    return Bed(name=name, path=path, nodes=[f"node{i}" for i in range(1, nodes + 1)])


def play(
    bed: Bed,
    tmp_path: Path,
    playbook: Path,
    extravars: dict,
    tags: str | None = None,
    check: bool = False,
    run_async: bool = False,
):
    """Run playbook on bed through ansible-runner; returns the runner (and the thread with run_async)."""
    private = tmp_path / f"runner-{len(list(tmp_path.glob('runner-*')))}"
    private.mkdir()
    events: list[dict] = []
    kwargs = dict(
        private_data_dir=str(private),
        playbook=str(playbook),
        inventory=str(bed.path / "inventory.yml"),
        tags=tags,
        extravars=extravars,
        cmdline=" ".join(["--check"] * check + ["-e", f"@{bed.path}/vars.yml"]),
        envvars={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "PATH": VENV_PATH},
        quiet=True,
        event_handler=lambda e: events.append(e) or True,
    )
    if run_async:
        thread, runner = ansible_runner.run_async(**kwargs)
        return thread, runner, events
    runner = ansible_runner.run(**kwargs)
    return runner, events


def failures(events: list[dict]) -> str:
    """What went wrong in a run, for assertion messages."""
    return (
        "\n".join(
            e.get("stdout", "")
            for e in events
            if e.get("event") in ("runner_on_failed", "runner_on_unreachable", "error", "verbose")
        )
        or "no failure event"
    )


def broadcast_res(events: list[dict]) -> dict:
    for event in events:
        data = event.get("event_data") or {}
        if event.get("event") in ("runner_on_ok", "runner_on_failed") and (data.get("task_action") or "").endswith(
            ".broadcast"
        ):
            return data["res"]
    raise AssertionError("no broadcast result among the events")


def broadcast(bed, tmp_path, path, targets, **more):
    runner, events = play(
        bed,
        tmp_path,
        PLAY,
        dict({"broadcast_source": "node1", "broadcast_targets": targets, "broadcast_path": path}, **more),
    )
    return runner, broadcast_res(events)


def sha(bed, host, path):
    return bed.ssh(host, f"sha256sum {path}").stdout.split()[0]


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    """Four nodes with 100 Mbit/s links and the mesh built by site.yml; removed afterwards."""
    name = "broadcast-it"
    bed = bring_up(name, 4, "--link-rate", "100mbit")
    try:
        runner, events = play(bed, tmp_path_factory.mktemp("mesh"), ROOT / "site.yml", {}, tags=TAGS)
        assert runner.status == "successful", failures(events)
        bed.ssh("node1", f"mkdir -p /tmp/bt && head -c {MB}M /dev/urandom > /tmp/bt/big")
        yield bed
    finally:
        run_testbed("down", "--name", name)


def make_tree(bed):
    bed.ssh(
        "node1",
        "set -e; rm -rf /tmp/bt/tree; mkdir -p /tmp/bt/tree/sub/empty /tmp/bt/tree/ro; cd /tmp/bt/tree; head -c 3M "
        "/dev/urandom > a; ln a sub/hard; ln -s ../a sub/rel; ln -s /etc/hostname abs; ln -s missing dangling; printf "
        "'#!/bin/sh\\necho ok\\n' > run.sh; chmod 0755 run.sh; : > empty; echo secret > private; chmod 0600 private; "
        "echo x > ro/file; chmod 0555 ro; chmod 0750 sub",
    )


def test_file_and_tree_arrive_identical_and_rerun_sends_nothing(bed, tmp_path):
    targets = bed.nodes[1:]
    runner, events = play(
        bed,
        tmp_path,
        ASYNC_PLAY,
        {"broadcast_source": "node1", "broadcast_targets": targets, "broadcast_path": "/tmp/bt/big"},
    )
    failed = [e["event_data"].get("res") for e in events if e["event"] == "runner_on_failed"]
    assert runner.status == "successful", failed
    # Progress while it ran, on the play's own output: lines with bytes on the way, never a retry.
    out = "\n".join(e.get("stdout") or "" for e in events)
    moving = [(float(a), float(b)) for a, b in re.findall(r"node1 -> 3 nodes: big \w+, ([\d.]+) / ([\d.]+) MB, ", out)]
    assert any(0 < a < b for a, b in moving), out
    assert "FAILED" not in out and not [e for e in events if e["event"] == "runner_retry"]
    final = [e["event_data"]["res"] for e in events if e["event"] == "runner_on_ok"][-1]["result"]
    assert sorted(final["received"]) == targets
    # Work, not speed: every target received bytes over the wire (the rate is the benchmark's business).
    assert all(final["nodes"][h].get("wire_bytes", 0) > 0 for h in targets), final["nodes"]
    assert {sha(bed, h, "/tmp/bt/big") for h in bed.nodes} == {sha(bed, "node1", "/tmp/bt/big")}

    make_tree(bed)
    runner, res = broadcast(bed, tmp_path, "/tmp/bt/tree", targets)
    assert runner.status == "successful", res.get("msg")
    assert res["kind"] == "tree" and sorted(res["received"]) == targets
    want = bed.ssh("node1", TREE_LISTING.format(p="/tmp/bt/tree")).stdout
    assert want.strip().endswith("\n1")  # a and sub/hard share one inode
    for host in targets:
        assert bed.ssh(host, TREE_LISTING.format(p="/tmp/bt/tree")).stdout == want, host
        assert bed.ssh(host, "/tmp/bt/tree/run.sh").stdout.strip() == "ok"
        assert bed.ssh(host, "ls -a /tmp/bt | grep -c gtsfm-broadcast-tmp", check=False).stdout.strip() == "0"

    for path in ("/tmp/bt/big", "/tmp/bt/tree"):
        runner, res = broadcast(bed, tmp_path, path, targets)
        assert runner.status == "successful"
        assert res["changed"] is False and sorted(res["held"]) == targets
        assert sum(n.get("wire_bytes", 0) for n in res["nodes"].values()) == 0

    # A changed tree (with a read-only directory to replace) is swapped whole; check mode names who would receive.
    bed.ssh("node1", "echo changed >> /tmp/bt/tree/sub/rel")
    runner, events = play(
        bed,
        tmp_path,
        PLAY,
        {"broadcast_source": "node1", "broadcast_targets": targets, "broadcast_path": "/tmp/bt/tree"},
        check=True,
    )
    res = broadcast_res(events)
    assert runner.status == "successful" and sorted(res["would_receive"]) == targets and not res["received"]
    assert bed.ssh("node2", TREE_LISTING.format(p="/tmp/bt/tree")).stdout == want
    runner, res = broadcast(bed, tmp_path, "/tmp/bt/tree", targets)
    assert runner.status == "successful" and sorted(res["received"]) == targets, res.get("msg")
    want = bed.ssh("node1", TREE_LISTING.format(p="/tmp/bt/tree")).stdout
    for host in targets:
        assert bed.ssh(host, TREE_LISTING.format(p="/tmp/bt/tree")).stdout == want, host


def test_killed_middle_node_is_named_and_rerun_completes_it(bed, tmp_path):
    container = next(
        n["container"] for n in json.loads((bed.path / "state.json").read_text())["nodes"] if n["name"] == "node3"
    )
    bed.ssh("node1", f"head -c {MB}M /dev/urandom > /tmp/bt/kill")
    targets = ["node2", "node3", "node4"]
    status = "/tmp/bt/kill.status"
    thread, runner, events = play(
        bed,
        tmp_path,
        PLAY,
        {
            "broadcast_source": "node1",
            "broadcast_targets": targets,
            "broadcast_path": "/tmp/bt/kill",
            "broadcast_status_file": status,
        },
        run_async=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = bed.ssh("node1", f"cat {status} 2>/dev/null", check=False).stdout
        try:
            if json.loads(out)["nodes"]["node3"].get("done", 0) > 20 << 20:
                break
        except (ValueError, KeyError):
            pass
        time.sleep(0.5)
    else:
        pytest.fail("node3 never got 20 MB")
    subprocess.run(["podman", "kill", container], check=True, capture_output=True)
    try:
        thread.join(240)
        assert not thread.is_alive(), "the broadcast hung after a node died"
        res = broadcast_res(events)
        assert runner.status == "failed"
        assert res["failed_nodes"] == ["node3"] and "node3" in res["msg"], res["msg"]
        assert sorted(res["received"]) == ["node2", "node4"]
        want = sha(bed, "node1", "/tmp/bt/kill")
        for host in ("node2", "node4"):
            assert sha(bed, host, "/tmp/bt/kill") == want
    finally:
        subprocess.run(["podman", "start", container], check=True, capture_output=True)
    for _dummy in range(60):
        if bed.ssh("node3", "true", check=False).returncode == 0:
            break
        time.sleep(1)
    assert bed.ssh("node3", "test ! -e /tmp/bt/kill", check=False).returncode == 0, "a partial copy is in place"
    runner, res = broadcast(bed, tmp_path, "/tmp/bt/kill", targets)
    assert runner.status == "successful", res.get("msg")
    assert res["received"] == ["node3"] and sorted(res["held"]) == ["node2", "node4"]
    assert sha(bed, "node3", "/tmp/bt/kill") == sha(bed, "node1", "/tmp/bt/kill")
    assert bed.ssh("node3", "ls -a /tmp/bt | grep -c gtsfm-broadcast-tmp", check=False).stdout.strip() == "0"


def changed(events: list[dict]) -> int:
    return sum(1 for e in events if e["event"] == "runner_on_ok" and e["event_data"].get("res", {}).get("changed"))


def role_result(events: list[dict]) -> dict:
    return [
        e["event_data"]["res"]
        for e in events
        if e["event"] == "runner_on_ok" and e["event_data"].get("task", "").startswith("Keep the broadcast's result")
    ][-1]["ansible_facts"]["__broadcast_result"]


def test_controller_file_goes_to_the_source_once_then_along_the_chain(bed, tmp_path):
    src = tmp_path / "checkpoint.bin"
    src.write_bytes(os.urandom(8 << 20))
    want = subprocess.run(["sha256sum", str(src)], capture_output=True, text=True, check=True).stdout.split()[0]
    runner, events = play(bed, tmp_path, ROLE_PLAY, {"path": "/tmp/bt/ctrl/checkpoint.bin", "src": str(src)})
    assert runner.status == "successful", failures(events)
    assert sorted(role_result(events)["received"]) == ["node2", "node3", "node4"]
    assert {sha(bed, h, "/tmp/bt/ctrl/checkpoint.bin") for h in bed.nodes} == {want}
    runner, events = play(bed, tmp_path, ROLE_PLAY, {"path": "/tmp/bt/ctrl/checkpoint.bin", "src": str(src)})
    assert runner.status == "successful" and changed(events) == 0, failures(events)


def home_writers(bed: Bed) -> list[str]:
    """One node per distinct home, from the stage's home marker (what cluster_facts_home_writers holds)."""
    seen: dict[str, str] = {}
    for host in bed.nodes:
        seen.setdefault(bed.ssh(host, "cat ~/.ssh/gtsfm_cluster_home_id").stdout.strip(), host)
    return list(seen.values())


def test_shared_home_writes_one_copy(tmp_path):
    name = "broadcast-shared"
    bed = bring_up(name, 3, "--shared-home")
    try:
        runner, events = play(bed, tmp_path, ROOT / "site.yml", {}, tags=TAGS)
        assert runner.status == "successful", failures(events)
        bed.ssh("node1", "mkdir -p ~/data && head -c 5M /dev/urandom > ~/data/blob")
        path = bed.ssh("node1", "readlink -f ~/data/blob").stdout.strip()
        writers = home_writers(bed)
        assert writers == ["node1"]
        # The role, for a controller file into the shared home: one copy to the source, nobody else writes.
        src = tmp_path / "ctrl.bin"
        src.write_bytes(os.urandom(4 << 20))
        runner, events = play(bed, tmp_path, ROLE_PLAY, {"path": path + ".ctrl", "src": str(src)})
        assert runner.status == "successful", failures(events)
        res = role_result(events)
        assert res["received"] == [] and res["nodes"] == {}
        assert len({bed.ssh(h, f"stat -c %i {path}.ctrl").stdout.strip() for h in bed.nodes}) == 1
        # The documented call: the home writers without the source's own home. Nothing to send.
        runner, res = broadcast(bed, tmp_path, path, [h for h in writers if h != "node1"])
        assert runner.status == "successful" and res["changed"] is False and res["received"] == []
        # A caller that passes every node anyway: the record beside the one copy makes every node skip.
        runner, res = broadcast(bed, tmp_path, path, ["node2", "node3"])
        assert runner.status == "successful", res.get("msg")
        assert res["changed"] is False and sorted(res["held"]) == ["node2", "node3"]
        inodes = {bed.ssh(h, f"stat -c %i {path}").stdout.strip() for h in bed.nodes}
        assert len(inodes) == 1
        assert bed.ssh("node1", "ls -a ~/data | grep -c gtsfm-broadcast-tmp", check=False).stdout.strip() == "0"
    finally:
        run_testbed("down", "--name", name)
