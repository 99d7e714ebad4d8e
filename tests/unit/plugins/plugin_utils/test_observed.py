# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The judges of plugin_utils/_observed.py: when the stage's read answers a write without the module."""

from __future__ import annotations

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._observed import decide, keypair_unchanged

READ = {
    "requested": "~/.ssh/id_ed25519",
    "path": "/home/u/.ssh/id_ed25519",
    "exists": True,
    "needs_write": False,
    "public_key": "ssh-ed25519 AAAA c",
    "home_id": "h1",
    "created": True,
    "repaired": [],
}


def test_a_key_pair_the_read_shows_in_place_is_answered_with_what_the_module_would_return():
    answer = keypair_unchanged({"path": "~/.ssh/id_ed25519"}, READ)
    assert answer == {
        "public_key": "ssh-ed25519 AAAA c",
        "path": "/home/u/.ssh/id_ed25519",
        "created": True,
        "repaired": [],
        "home_id": "h1",
    }
    assert keypair_unchanged({"path": "~/.ssh/id_ed25519", "home_marker": False}, READ)["home_id"] is None


def test_a_read_of_another_key_or_with_work_left_runs_the_module():
    assert keypair_unchanged({"path": "~/.ssh/id_rsa"}, READ) is None
    assert keypair_unchanged({"path": "~/.ssh/id_ed25519"}, dict(READ, needs_write=True)) is None
    # A read made without the marker's and directory's state (an older stage) never answers.
    assert (
        keypair_unchanged({"path": "~/.ssh/id_ed25519"}, {k: v for k, v in READ.items() if k != "needs_write"}) is None
    )
    assert keypair_unchanged({"path": "~/.ssh/id_ed25519"}, dict(READ, public_key=None)) is None


def _nothing_to_change(args, observed):
    return {"path": observed["path"]}


def test_decide_answers_from_the_read_without_observed_in_the_args():
    given = {"path": "/h/f", "observed": {"path": "/h/f"}}
    args, answer = decide(given, _nothing_to_change)
    assert args == {"path": "/h/f"}
    assert answer == {"path": "/h/f", "changed": False, "decided_from": "observed"}
    assert "observed" in given  # the task's own arguments stay as they were


def test_decide_asks_the_node_when_the_read_cannot_tell():
    read = {"path": "/h/f"}
    assert decide({"path": "/h/f"}, _nothing_to_change) == ({"path": "/h/f"}, None)
    assert decide({"observed": "not a mapping"}, _nothing_to_change) == ({}, None)
    assert decide({"observed": read}, _nothing_to_change, ask_node=True) == ({}, None)
    assert decide({"owner": "alice", "observed": read}, _nothing_to_change) == ({"owner": "alice"}, None)
    assert decide({"observed": read}, lambda args, observed: None) == ({}, None)
