"""Role model_weights on a real 4-node bed, against an HTTP origin the test runs on the bed's network.

The origin (tests/http_origin.py) is a thread of this test process bound to the bed network's gateway address: the
nodes reach it, it serves generated files with Range support, counts every request and can cut a transfer part way.
The tests run in order on one bed and build on each other's state, as a cluster's life would.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import fresh_bed, remote_calls, run_testbed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from http_origin import Origin  # noqa: E402  pylint: disable=wrong-import-position

TAG = "model_weights"
FILES = {"a.bin": os.urandom(1_000_000), "b.bin": os.urandom(3_000_000), "c.bin": os.urandom(2_000_000)}
CUT = 700_000  # bytes of c.bin sent before the origin drops the first transfer


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def bed():
    with fresh_bed("weights-it", 4) as bed:
        yield bed


@pytest.fixture(scope="module")
def origin_factory(tmp_path_factory):
    """Start an origin on a bed's network (its gateway address), serving FILES; all stop at the end."""
    with contextlib.ExitStack() as stack:

        def start(bed_name: str) -> Origin:
            net = json.loads(
                subprocess.run(
                    ["podman", "network", "inspect", f"gtsfm-{bed_name}"], capture_output=True, text=True, check=True
                ).stdout
            )[0]
            server = stack.enter_context(Origin(tmp_path_factory.mktemp("origin"), host=net["subnets"][0]["gateway"]))
            for name, data in FILES.items():
                server.put(name, data)
            return server

        yield start


@pytest.fixture(scope="module")
def origin(bed, origin_factory):
    return origin_factory(bed.name)


@pytest.fixture(scope="module")
def lock(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("inventory") / "model_weights.lock.json"


def weights_vars(origin, lock, files=None, **more):
    files = (
        files
        if files is not None
        else [
            {"url": origin.url("a.bin"), "dest": "thirdparty/a/weights/a.bin"},
            {"url": origin.url("b.bin"), "dest": "thirdparty/b/b.bin", "sha256": sha(FILES["b.bin"])},
            {"url": origin.url("c.bin"), "dest": "~/weights/c.bin"},
        ]
    )
    return {
        "model_weights_files": files,
        "model_weights_lock_file": str(lock),
        "model_weights_poll_delay": 1,
        "model_weights_retry_delay": 0,
        **more,
    }


PATHS = {
    "a.bin": "~/gtsfm/thirdparty/a/weights/a.bin",
    "b.bin": "~/gtsfm/thirdparty/b/b.bin",
    "c.bin": "~/weights/c.bin",
}


def sums_on(bed, host: str) -> dict[str, str]:
    """name -> sha256 of each weight file on host ('' when missing)."""
    out = {}
    for name, path in PATHS.items():
        res = bed.ssh(host, f"sha256sum {path} 2>/dev/null || true")
        out[name] = res.stdout.split()[0] if res.stdout.strip() else ""
    return out


def failure_messages(run) -> str:
    """The messages of failed and unreachable tasks, or the play's output when there are none (a parse error)."""
    msgs = [
        str(d.get("res", {}).get("msg", ""))
        for d in run.results("runner_on_failed")
        + run.results("runner_item_on_failed")
        + run.results("runner_on_unreachable")
    ]
    return "\n".join(msgs) or "\n".join(e.get("stdout", "") for e in run.events[-20:])


def leftovers(bed, host: str) -> str:
    """Any partial or temporary file the fetch or the broadcast left under the weight directories."""
    return bed.ssh(
        host, "find ~/gtsfm ~/weights -name '*gtsfm-partial*' -o -name '*gtsfm-broadcast-tmp*' 2>/dev/null || true"
    ).stdout.strip()


def test_mesh_first(bed, site):
    run = site(bed.path / "inventory.yml", "ssh_mesh,known_hosts")
    assert run.status == "successful", failure_messages(run)


def test_first_run_fetches_each_file_once_resumes_a_cut_and_every_node_verifies(bed, site, origin, lock):
    origin.cut_after["c.bin"] = CUT
    run = site(bed.path / "inventory.yml", TAG, extravars=weights_vars(origin, lock))
    assert run.status == "successful", failure_messages(run)
    assert len(origin.gets("a.bin")) == 1 and len(origin.gets("b.bin")) == 1
    c = origin.gets("c.bin")
    assert [(g.range, g.status, g.sent) for g in c] == [(None, 200, CUT), (f"bytes={CUT}-", 206, 2_000_000 - CUT)]
    want = {name: sha(data) for name, data in FILES.items()}
    for host in bed.nodes:
        assert sums_on(bed, host) == want, host
        assert leftovers(bed, host) == "", host
    pins = json.loads(lock.read_text())["files"]
    assert set(pins) == {origin.url("a.bin"), origin.url("c.bin")}  # b.bin has a given sum: nothing to pin
    assert pins[origin.url("a.bin")]["sha256"] == want["a.bin"]


def test_second_run_changes_nothing_and_asks_the_origin_nothing(bed, site, origin, lock):
    before = lock.read_bytes(), lock.stat().st_mtime_ns
    origin.reset()
    run = site(bed.path / "inventory.yml", TAG, extravars=weights_vars(origin, lock))
    assert run.status == "successful", failure_messages(run)
    assert run.changed() == 0
    # Remote calls per node of the no-op run: every node but the scheduler is asked twice (the stage's read, the
    # hash check); the scheduler also starts and follows each file's fetch and send (3 files x 4), each of which
    # finds its file right. (Before the plan moved to the controller the count showed 17 on the scheduler: the
    # controller's stat loop, delegated to localhost, was counted as remote.)
    calls = remote_calls(bed, run)
    assert max(n for h, n in calls.items() if h != "node1") <= 2 and calls["node1"] <= 14, calls
    check = site(bed.path / "inventory.yml", TAG, check=True, extravars=weights_vars(origin, lock))
    assert check.status == "successful" and check.changed() == 0, failure_messages(check)
    assert origin.requests == []
    assert (lock.read_bytes(), lock.stat().st_mtime_ns) == before


def test_given_sum_mismatch_fails_clearly_and_leaves_nothing(bed, site, origin, lock):
    origin.put("d.bin", b"not what the manifest says")
    wrong = "0" * 64
    files = [{"url": origin.url("d.bin"), "dest": "thirdparty/d/d.bin", "sha256": wrong}]
    run = site(bed.path / "inventory.yml", TAG, extravars=weights_vars(origin, lock, files))
    assert run.status == "failed"
    msg = failure_messages(run)
    dest = bed.ssh("node1", "echo ~/gtsfm/thirdparty/d/d.bin").stdout.strip()
    assert (
        f"{dest}: sha256 mismatch for {origin.url('d.bin')}: expected {wrong}, got "
        f"{sha(b'not what the manifest says')}" in msg
    )
    for host in bed.nodes:
        assert bed.ssh(host, "ls -A ~/gtsfm/thirdparty/d 2>/dev/null || true").stdout.strip() == "", host


def test_changed_origin_file_is_refused_against_its_pin_until_repinned(bed, site, origin, lock):
    pinned = json.loads(lock.read_text())["files"][origin.url("a.bin")]["sha256"]
    changed = b"a new release of a.bin"
    origin.put("a.bin", changed)
    for host in bed.nodes:  # a cluster that lost the file must fetch it again
        bed.ssh(host, f"rm -f {PATHS['a.bin']}")
    origin.reset()
    run = site(bed.path / "inventory.yml", TAG, extravars=weights_vars(origin, lock))
    assert run.status == "failed"
    assert f"sha256 mismatch for {origin.url('a.bin')}: expected {pinned}, got {sha(changed)}" in failure_messages(run)
    assert len(origin.gets("a.bin")) == 1 and origin.gets("b.bin") == [] and origin.gets("c.bin") == []
    for host in bed.nodes:
        assert sums_on(bed, host)["a.bin"] == "", host
        assert leftovers(bed, host) == "", host
    assert json.loads(lock.read_text())["files"][origin.url("a.bin")]["sha256"] == pinned

    run = site(bed.path / "inventory.yml", TAG, extravars=weights_vars(origin, lock, model_weights_repin=True))
    assert run.status == "successful", failure_messages(run)
    assert json.loads(lock.read_text())["files"][origin.url("a.bin")]["sha256"] == sha(changed)
    for host in bed.nodes:
        assert sums_on(bed, host)["a.bin"] == sha(changed), host


def test_files_on_the_controller_are_used_as_they_are(bed, site, origin, lock, tmp_path):
    data = os.urandom(500_000)
    held = tmp_path / "held"
    (held / "thirdparty" / "off").mkdir(parents=True)
    (held / "thirdparty" / "off" / "offline.bin").write_bytes(data)
    files = [{"url": origin.url("not-on-the-origin.bin"), "dest": "thirdparty/off/offline.bin"}]
    origin.reset()
    extravars = weights_vars(origin, lock, files, model_weights_controller_dir=str(held))
    run = site(bed.path / "inventory.yml", TAG, extravars=extravars)
    assert run.status == "successful", failure_messages(run)
    assert origin.requests == []
    for host in bed.nodes:
        assert bed.ssh(host, "sha256sum ~/gtsfm/thirdparty/off/offline.bin").stdout.split()[0] == sha(data), host
    assert json.loads(lock.read_text())["files"][origin.url("not-on-the-origin.bin")]["sha256"] == sha(data)
    again = site(bed.path / "inventory.yml", TAG, extravars=extravars)
    assert again.status == "successful" and again.changed() == 0, failure_messages(again)

    # A controller file that does not match its pin is refused, naming it; the nodes keep the verified copy.
    (held / "thirdparty" / "off" / "offline.bin").write_bytes(b"tampered")
    run = site(bed.path / "inventory.yml", TAG, extravars=extravars)
    assert run.status == "failed"
    assert f"{held}/thirdparty/off/offline.bin (on the controller" in failure_messages(run)
    assert f"expected {sha(data)}" in failure_messages(run) and sha(b"tampered") in failure_messages(run)
    for host in bed.nodes:
        assert bed.ssh(host, "sha256sum ~/gtsfm/thirdparty/off/offline.bin").stdout.split()[0] == sha(data), host


def test_shared_home_gets_each_file_once_and_no_broadcast(origin_factory, site, tmp_path):
    """Three nodes on one NFS-like home: the scheduler's fetch is every node's copy; nothing is broadcast."""
    run_testbed("down", "--name", "weights-shared")
    path = Path(run_testbed("up", "--nodes", "3", "--name", "weights-shared", "--shared-home"))
    try:
        server = origin_factory("weights-shared")
        files = [{"url": server.url("a.bin"), "dest": "thirdparty/a/weights/a.bin"}]
        lock_file = tmp_path / "lock.json"
        run = site(
            path / "inventory.yml", "ssh_mesh,known_hosts," + TAG, extravars=weights_vars(server, lock_file, files)
        )
        assert run.status == "successful", failure_messages(run)
        assert len(server.gets("a.bin")) == 1
        sends = [
            e
            for e in run.events
            if e.get("event") == "runner_on_ok" and e["event_data"].get("task", "").startswith("Start sending")
        ]
        assert sends == []
        for node in ("node1", "node2", "node3"):
            res = subprocess.run(
                ["ssh", "-F", str(path / "ssh_config"), node, "sha256sum gtsfm/thirdparty/a/weights/a.bin"],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            )
            assert res.stdout.split()[0] == sha(FILES["a.bin"])
        again = site(path / "inventory.yml", TAG, extravars=weights_vars(server, lock_file, files))
        assert again.status == "successful" and again.changed() == 0, failure_messages(again)
        assert len(server.gets("a.bin")) == 1
    finally:
        run_testbed("down", "--name", "weights-shared")
