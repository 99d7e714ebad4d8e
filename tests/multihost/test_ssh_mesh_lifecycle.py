"""The mesh over a cluster's life: nodes leave, a node is down, it comes back.

Runs on a real 4-node test bed (scripts/testbed) through ansible-runner and
checks what users see: which logins work, and what the files hold.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from conftest import remote_calls, run_testbed

TAGS = "ssh_mesh,known_hosts"


@dataclass
class Login:
    """How one login went: falsy when it failed, and its repr carries ssh's words."""

    ok: bool
    why: str

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return self.why


def login(bed, src: str, dst: str) -> Login:
    """One BatchMode, strict-host-key login from src to dst."""
    res = bed.ssh(src, f"ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=5 {dst} true", check=False)
    return Login(res.returncode == 0, f"{src} -> {dst}: {res.stderr.strip()}")


def managed_files(bed, hosts):
    return {h: bed.ssh(h, "cat ~/.ssh/authorized_keys ~/.ssh/known_hosts").stdout for h in hosts}


def test_full_mesh_then_idempotent(bed4, site, tmp_path):
    inventory = bed4.inventory_for(bed4.nodes, tmp_path)
    first = site(inventory, TAGS)
    assert first.status == "successful", first.results("runner_on_failed")
    # Issue 26: two remote calls per node on a first run (the stage's read, which makes the key pairs, and one write
    # of authorized_keys and known_hosts together) ...
    assert set(remote_calls(bed4, first).values()) == {2}, remote_calls(bed4, first)
    second = site(inventory, TAGS)
    assert second.status == "successful"
    assert second.changed() == 0
    # ... and exactly one, the stage's read, on a no-op re-run.
    assert set(remote_calls(bed4, second).values()) == {1}, remote_calls(bed4, second)
    for src in bed4.nodes:
        for dst in bed4.nodes + ["localhost"]:
            assert (result := login(bed4, src, dst)), repr(result)


def test_removed_node_is_revoked_everywhere(bed4, site, tmp_path):
    kept = bed4.nodes[:3]
    node4_key = bed4.ssh("node4", "cat ~/.ssh/id_ed25519.pub").stdout.split()[1]
    run = site(bed4.inventory_for(kept, tmp_path), TAGS)
    assert run.status == "successful", run.results("runner_on_failed")
    for host in kept:
        assert node4_key not in bed4.ssh(host, "cat ~/.ssh/authorized_keys").stdout
        assert not login(bed4, "node4", host), f"node4 still logs in to {host}"
    assert login(bed4, "node1", "node3")


def test_unreachable_node_fails_by_name_and_leaves_files_whole(bed4, site, tmp_path):
    before = managed_files(bed4, bed4.nodes[:3])
    subprocess.run(["podman", "stop", "-t", "1", f"gtsfm-{bed4.name}-node4"], check=True, capture_output=True)
    try:
        run = site(bed4.inventory_for(bed4.nodes, tmp_path), TAGS)
        assert run.status == "failed"
        assert [d["host"] for d in run.results("runner_on_unreachable")] == ["node4"]
        messages = [d["res"].get("msg", "") for d in run.results("runner_on_failed")]
        assert messages and all("node4 did not answer" in m and "nothing was written" in m for m in messages), messages
        assert managed_files(bed4, bed4.nodes[:3]) == before
    finally:
        # `up` restarts the stopped node and restores its /etc/hosts.
        run_testbed("up", "--nodes", "4", "--name", bed4.name)
    run = site(bed4.inventory_for(bed4.nodes, tmp_path), TAGS)
    assert run.status == "successful", run.results("runner_on_failed")
    for src in bed4.nodes:
        for dst in bed4.nodes:
            assert (result := login(bed4, src, dst)), repr(result)


def test_check_mode_changes_nothing(bed4, site, tmp_path):
    before = managed_files(bed4, bed4.nodes)
    run = site(bed4.inventory_for(bed4.nodes[:2], tmp_path), TAGS, check=True)
    assert run.status == "successful", run.results("runner_on_failed")
    assert run.changed() > 0, "check mode should report the revocations it would make"
    assert managed_files(bed4, bed4.nodes) == before


def test_controller_known_hosts_lets_strict_ssh_in(bed4, site, tmp_path):
    known = tmp_path / "controller_known_hosts"
    run = site(
        bed4.inventory_for(bed4.nodes, tmp_path),
        "known_hosts",
        extravars={"known_hosts_controller": True, "known_hosts_controller_path": str(known)},
    )
    assert run.status == "successful", run.results("runner_on_failed")
    for node in bed4.nodes:
        ip = bed4.ip(node)
        res = subprocess.run(
            [
                "ssh",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                f"UserKnownHostsFile={known}",
                "-o",
                "IdentitiesOnly=yes",
                "-i",
                str(bed4.path / "id_ed25519"),
                f"gtsfm@{ip}",
                "true",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert res.returncode == 0, f"controller -> {node} ({ip}): {res.stderr}"


def test_mesh_key_is_refused_from_outside_the_cluster(bed4, site, tmp_path):
    """from= restricts mesh entries to the cluster's addresses: the key alone is not enough."""
    run = site(bed4.inventory_for(bed4.nodes, tmp_path), TAGS)
    assert run.status == "successful", run.results("runner_on_failed")
    key = tmp_path / "node1_mesh_key"
    key.write_text(bed4.ssh("node1", "cat ~/.ssh/id_ed25519").stdout)
    key.chmod(0o600)
    ip = bed4.ip("node2")
    # Not through the bed's ssh_config, which also offers the controller's own key: the mesh key alone.
    res = subprocess.run(
        [
            "ssh",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={bed4.path / 'known_hosts'}",
            "-o",
            "HostKeyAlias=node2",
            "-o",
            "IdentitiesOnly=yes",
            "-i",
            str(key),
            f"gtsfm@{ip}",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode != 0 and "Permission denied" in res.stderr, res.stderr
    assert login(bed4, "node1", "node2")


def test_changed_host_key_replaces_the_old_entry(bed4, site, tmp_path):
    old = bed4.ssh("node2", "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1]
    container = f"gtsfm-{bed4.name}-node2"
    # The node is reinstalled: new host keys, sshd reloads them.
    subprocess.run(
        [
            "podman",
            "exec",
            container,
            "sh",
            "-c",
            "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && pkill -HUP -x sshd",
        ],
        check=True,
        capture_output=True,
    )
    # The controller learns the new key the way an admin would publish it (the bed reads it from the node).
    run_testbed("up", "--nodes", "4", "--name", bed4.name)
    new = bed4.ssh("node2", "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1]
    assert new != old
    assert not login(bed4, "node1", "node2"), "strict checking should refuse the changed key before the role runs"
    run = site(bed4.inventory_for(bed4.nodes, tmp_path), TAGS)
    assert run.status == "successful", run.results("runner_on_failed")
    known = bed4.ssh("node1", "cat ~/.ssh/known_hosts").stdout
    assert new in known and old not in known
    for src in bed4.nodes:
        assert (result := login(bed4, src, "node2")), repr(result)
