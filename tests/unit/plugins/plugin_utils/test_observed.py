# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The judges of plugin_utils/_observed.py: when the stage's read answers a write without the module."""

from __future__ import annotations

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._observed import keypair_unchanged

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
