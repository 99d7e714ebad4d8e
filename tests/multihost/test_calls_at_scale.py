"""Remote calls per node do not grow with N (issue 26), counted from ansible-runner's events at N=2 and N=16.

The setup roles that touch users' files (ssh_mesh, known_hosts, bashrc_init) on fresh nodes, then again: the no-op
re-run costs the stage's one read per node and nothing more (each writer answers from that read on the controller),
and the first run the read plus one write per file. What the whole site.yml costs per role is in
docs/benchmarks.md (benchmarks/site.py).
"""

from __future__ import annotations

import pytest

from conftest import fresh_bed, remote_calls

TAGS = "ssh_mesh,known_hosts,bashrc_init"


@pytest.mark.parametrize("nodes", [2, 16])
def test_a_no_op_re_run_costs_one_remote_call_per_node(nodes, site, tmp_path):
    with fresh_bed(f"it-calls{nodes}", nodes) as bed:
        inventory = bed.path / "inventory.yml"
        first = site(inventory, TAGS)
        assert first.status == "successful", first.results("runner_on_failed")
        # The stage's read, the key pair, authorized_keys, known_hosts and ~/.bashrc: five, whatever N.
        assert set(remote_calls(bed, first).values()) == {5}, remote_calls(bed, first)
        second = site(inventory, TAGS)
        assert second.status == "successful", second.results("runner_on_failed")
        assert second.changed() == 0, [d["task"] for d in second.results("runner_on_ok") if d["res"].get("changed")]
        assert set(remote_calls(bed, second).values()) == {1}, remote_calls(bed, second)
        answered = [d for d in second.results("runner_on_ok") if d["res"].get("decided_from") == "observed"]
        # Every writer on every node answered from the read: three files on each of N nodes.
        assert len(answered) == 3 * nodes, [(d["host"], d["task"]) for d in answered]
