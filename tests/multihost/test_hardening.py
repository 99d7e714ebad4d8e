"""What careless users and broken nodes do to the mesh (issue 13), on a real 3-node bed.

Each case breaks one node the way a user or a failing disk would, runs site.yml
as a user would, and checks what the user then sees: either every node logs in
to every node again, or the play failed naming the node and the fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_ssh_mesh_lifecycle import login

from conftest import fresh_bed

TAGS = "ssh_mesh,known_hosts"


@pytest.fixture(scope="module")
def bed3():
    with fresh_bed("it-hardening", 3) as bed:
        yield bed


@pytest.fixture
def meshed(bed3, site, tmp_path):
    """The bed with a complete mesh, rebuilt before each case."""
    inventory = bed3.inventory_for(bed3.nodes, tmp_path)
    run = site(inventory, TAGS)
    assert run.status == "successful", run.results("runner_on_failed")
    return inventory


def all_logins_work(bed):
    for src in bed.nodes:
        for dst in bed.nodes + ["localhost"]:
            assert (result := login(bed, src, dst)), repr(result)


def failures(run):
    return [(d["host"], d["res"].get("msg", "")) for d in run.results("runner_on_failed")]


def test_a_deleted_private_key_is_replaced_and_published_on_the_first_run(bed3, site, meshed):
    old = bed3.ssh("node2", "cat ~/.ssh/id_ed25519.pub").stdout.split()[1]
    bed3.ssh("node2", "rm ~/.ssh/id_ed25519")
    run = site(meshed, TAGS)
    assert run.status == "successful", failures(run)
    new = bed3.ssh("node2", "ssh-keygen -y -f ~/.ssh/id_ed25519").stdout.split()[1]
    assert new != old and bed3.ssh("node2", "cat ~/.ssh/id_ed25519.pub").stdout.split()[1] == new
    assert old not in bed3.ssh("node1", "cat ~/.ssh/authorized_keys").stdout
    all_logins_work(bed3)
    again = site(meshed, TAGS)
    assert again.status == "successful" and again.changed() == 0


def test_an_open_private_key_is_set_to_0600_and_works_again(bed3, site, meshed):
    bed3.ssh("node3", "chmod 0644 ~/.ssh/id_ed25519")
    assert not login(bed3, "node3", "node1")
    run = site(meshed, TAGS)
    assert run.status == "successful", failures(run)
    assert bed3.ssh("node3", "stat -c %a ~/.ssh/id_ed25519").stdout.strip() == "600"
    all_logins_work(bed3)


def test_crlf_authorized_keys_keep_one_block_and_revocation_holds(bed3, site, meshed, tmp_path):
    node3_key = bed3.ssh("node3", "cat ~/.ssh/id_ed25519.pub").stdout.split()[1]
    bed3.ssh("node1", "sed -i 's/$/\\r/' ~/.ssh/authorized_keys")
    (tmp_path / "two").mkdir()
    run = site(bed3.inventory_for(bed3.nodes[:2], tmp_path / "two"), TAGS)
    assert run.status == "successful", failures(run)
    text = bed3.ssh("node1", "cat ~/.ssh/authorized_keys").stdout
    assert text.count("# BEGIN ") == 1 and node3_key not in text
    assert not login(bed3, "node3", "node1"), "the removed node's key still logs in"


def test_symlinked_files_are_written_through(bed3, site, meshed):
    bed3.ssh(
        "node2",
        "mkdir -p ~/dotfiles && mv ~/.ssh/known_hosts ~/dotfiles/known_hosts && ln -s ~/dotfiles/known_hosts "
        "~/.ssh/known_hosts && sed -i '/BEGIN gtsfm/,/END gtsfm/d' ~/dotfiles/known_hosts",
    )
    run = site(meshed, TAGS)
    assert run.status == "successful", failures(run)
    assert bed3.ssh("node2", "test -L ~/.ssh/known_hosts && grep -c BEGIN ~/dotfiles/known_hosts").stdout.strip() == "1"
    all_logins_work(bed3)


def test_a_stalled_node_fails_by_name_instead_of_hanging(bed3, site, meshed):
    # A FIFO where the home marker should be blocks any reader, as a hung NFS home does.
    bed3.ssh("node3", "mv ~/.ssh/gtsfm_cluster_home_id ~/.ssh/home_id.saved && mkfifo ~/.ssh/gtsfm_cluster_home_id")
    try:
        run = site(meshed, TAGS, extravars={"cluster_facts_timeout": 10})
        assert run.status == "failed"
        hosts = dict(failures(run))
        assert "node3" in hosts, hosts
        assert any("node3 did not answer" in msg and "nothing was written" in msg for msg in hosts.values()), hosts
    finally:
        # Release the reader the timed-out module left blocked on the FIFO, then restore the marker.
        bed3.ssh(
            "node3",
            "timeout 2 sh -c ': > ~/.ssh/gtsfm_cluster_home_id'; rm ~/.ssh/gtsfm_cluster_home_id && "
            "mv ~/.ssh/home_id.saved ~/.ssh/gtsfm_cluster_home_id",
            check=False,
        )
    all_logins_work(bed3)


def test_a_fifo_authorized_keys_fails_by_name_and_the_fix(bed3, site, meshed):
    bed3.ssh("node2", "mv ~/.ssh/authorized_keys ~/.ssh/ak.saved && mkfifo ~/.ssh/authorized_keys")
    try:
        run = site(meshed, TAGS)
        assert run.status == "failed"
        hosts = dict(failures(run))
        assert "is not a regular file" in hosts.get("node2", "") and "Fix: move it away" in hosts["node2"], hosts
    finally:
        bed3.ssh("node2", "rm ~/.ssh/authorized_keys && mv ~/.ssh/ak.saved ~/.ssh/authorized_keys")
    all_logins_work(bed3)


def test_a_file_where_ssh_dir_should_be_fails_clearly_and_is_left_alone(bed3, site, meshed):
    bed3.ssh("node3", "mv ~/.ssh ~/ssh.saved && echo x > ~/.ssh && chmod 0644 ~/.ssh")
    try:
        run = site(meshed, TAGS)
        assert run.status == "failed"
        hosts = dict(failures(run))
        assert "/home/gtsfm/.ssh exists but is not a directory" in hosts.get("node3", ""), hosts
        assert bed3.ssh("node3", "stat -c %a ~/.ssh").stdout.strip() == "644"
    finally:
        bed3.ssh("node3", "rm -f ~/.ssh && mv ~/ssh.saved ~/.ssh")
    all_logins_work(bed3)


def test_role_parameters_the_stage_cannot_see_are_still_applied(bed3, site, meshed):
    playbook = Path(__file__).parent / "playbooks" / "roles_with_params.yml"
    first = site(meshed, playbook=playbook)
    assert first.status == "successful", failures(first)
    listed = bed3.ssh("node1", "cat ~/.ssh/known_hosts_cluster").stdout
    assert all(node in listed for node in bed3.nodes)
    again = site(meshed, playbook=playbook)
    assert again.status == "successful" and again.changed() == 0
