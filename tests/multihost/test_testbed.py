"""The test bed's contract (scripts/testbed): what a new cluster looks like from a node."""

from __future__ import annotations

import subprocess

import pytest

from conftest import bed_output, fresh_bed, run_testbed


@pytest.fixture(scope="module")
def bed2():
    """Two fresh nodes, removed afterwards."""
    with fresh_bed("it-testbed", 2) as bed:
        yield bed


def test_bed_directory_holds_what_users_need(bed2):
    for name in ("cluster.yaml", "inventory.yml", "ssh_config", "known_hosts", "id_ed25519", "vars.yml"):
        assert (bed2.path / name).is_file(), name
    assert (bed2.path / "cluster.yaml").read_text().splitlines()[1:] == ["workers:", "  - node1", "  - node2"]
    assert oct((bed2.path / "id_ed25519").stat().st_mode & 0o777) == "0o600"


def test_nodes_are_a_new_cluster_of_distinct_machines(bed2):
    keys = {n: bed2.ssh(n, "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1] for n in bed2.nodes}
    assert len(set(keys.values())) == len(bed2.nodes), "every node must have its own host key"
    for node in bed2.nodes:
        probe = bed2.ssh(
            node,
            "id -u; test -e ~/.ssh && echo has-ssh || echo no-ssh; command -v sudo || echo no-sudo;"
            " cmp -s ~/.bashrc /etc/skel/.bashrc && echo stock-bashrc; getent hosts node2",
        )
        lines = probe.stdout.split("\n")
        assert lines[0] != "0" and "no-ssh" in lines and "no-sudo" in lines and "stock-bashrc" in lines
        assert bed2.ip("node2") in probe.stdout, "cluster.yaml names must resolve on the nodes"


def test_link_rate_shapes_both_directions_and_can_be_removed(bed2):
    veth = bed_output("status", "--name", bed2.name)[0].split("\t")[3]

    def qdiscs():
        host = subprocess.run(["tc", "qdisc", "show", "dev", veth], capture_output=True, text=True, check=True).stdout
        node = subprocess.run(
            ["podman", "exec", f"gtsfm-{bed2.name}-node1", "tc", "qdisc", "show", "dev", "eth0"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return host, node

    run_testbed("up", "--nodes", "2", "--name", bed2.name, "--link-rate", "100mbit")
    assert all("tbf" in q and "rate 100Mbit" in q for q in qdiscs())
    run_testbed("up", "--nodes", "2", "--name", bed2.name)
    assert all("tbf" in q for q in qdiscs()), "a later up keeps the bed's link rate"
    run_testbed("up", "--nodes", "2", "--name", bed2.name, "--link-rate", "none")
    assert not any("tbf" in q for q in qdiscs())
