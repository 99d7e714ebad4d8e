"""Remote calls per node do not grow with N (issue 26), counted from ansible-runner's events at N=2 and N=16.

The setup roles that touch users' files on fresh nodes, then again. A first run of ssh_mesh + known_hosts costs two
calls per node: the stage's read, which also makes the missing key pair (it must exist before its public half goes
into the peers' authorized_keys, and it never leaves its node), and managed_blocks' one write of authorized_keys and
known_hosts together. bashrc_init adds its own write: a first run of all three on fresh nodes costs three. The no-op
re-run costs the stage's one read per node and nothing more (each writer answers from that read on the controller).
What the whole site.yml costs per role is in docs/benchmarks.md (benchmarks/site.py).
"""

from __future__ import annotations

import pytest

from conftest import fresh_bed, remote_calls

MESH = "ssh_mesh,known_hosts"
TAGS = "ssh_mesh,known_hosts,bashrc_init"


@pytest.mark.parametrize("nodes", [2, 16])
def test_a_first_run_costs_two_calls_per_node_and_a_no_op_re_run_one(nodes, site, tmp_path):
    with fresh_bed(f"it-calls{nodes}", nodes) as bed:
        inventory = bed.path / "inventory.yml"
        first = site(inventory, MESH)
        assert first.status == "successful", first.results("runner_on_failed")
        # The stage's read (making the key pairs) and one write of both files: two, whatever N.
        assert set(remote_calls(bed, first).values()) == {2}, remote_calls(bed, first)
        made = [d["host"] for d in first.results("runner_on_ok") if (d["res"].get("keypair") or {}).get("created")]
        assert sorted(made) == sorted(bed.nodes), made
        # bashrc_init's first run: the read, and its block (on fresh nodes all three together cost three).
        bashrc = site(inventory, TAGS)
        assert bashrc.status == "successful", bashrc.results("runner_on_failed")
        assert set(remote_calls(bed, bashrc).values()) == {2}, remote_calls(bed, bashrc)
        second = site(inventory, TAGS)
        assert second.status == "successful", second.results("runner_on_failed")
        assert second.changed() == 0, [d["task"] for d in second.results("runner_on_ok") if d["res"].get("changed")]
        assert set(remote_calls(bed, second).values()) == {1}, remote_calls(bed, second)
        answered = [d for d in second.results("runner_on_ok") if d["res"].get("decided_from") == "observed"]
        # Every writer on every node answered from the read: the key pair, the two mesh files (one task), ~/.bashrc.
        assert len(answered) == 3 * nodes, [(d["host"], d["task"]) for d in answered]
