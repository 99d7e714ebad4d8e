# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os

from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import read_block
from ansible_collections.gtsfm.cluster.plugins.modules.managed_blocks import main

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def blocks(tmp_path):
    return [
        {"path": str(tmp_path / "a"), "marker": "m", "lines": ["x"], "mode": "0600"},
        {"path": str(tmp_path / "k"), "marker": "k", "entries": [{"names": ["n1"], "keys": [KEY]}]},
    ]


def test_writes_every_file_in_one_call_then_changes_nothing(tmp_path, run_module):
    failed, result = run_module(main, dict(blocks=blocks(tmp_path), _ansible_diff=True))
    assert not failed and result["changed"], result
    assert result["files"][str(tmp_path / "a")] == {"changed": True, "path": str(tmp_path / "a"), "lines": 1}
    assert [d["after"] for d in result["diff"]] == ["x\n", f"n1 {KEY}\n"]
    assert read_block(str(tmp_path / "k"), "k")["block"] == [f"n1 {KEY}"]
    failed, again = run_module(main, dict(blocks=blocks(tmp_path)))
    assert not failed and not again["changed"]


def test_check_mode_writes_nothing(tmp_path, run_module):
    failed, result = run_module(main, dict(blocks=blocks(tmp_path), _ansible_check_mode=True))
    assert not failed and result["changed"] and os.listdir(tmp_path) == []


def test_a_block_needs_lines_or_entries_not_both(tmp_path, run_module):
    both = blocks(tmp_path)[:1]
    both[0]["entries"] = [{"names": ["n1"], "keys": [KEY]}]
    failed, result = run_module(main, dict(blocks=both))
    assert failed and "mutually exclusive: lines|entries" in result["msg"], result
    failed, result = run_module(main, dict(blocks=[{"path": str(tmp_path / "a"), "marker": "m"}]))
    assert failed and "one of the following is required: lines, entries" in result["msg"], result


def test_a_fifo_fails_naming_it_and_nothing_is_written(tmp_path, run_module):
    os.mkfifo(tmp_path / "k")
    failed, result = run_module(main, dict(blocks=blocks(tmp_path)))
    assert failed and result["msg"].startswith(f"managed_blocks: {tmp_path / 'k'} is not a regular file"), result
    assert "Fix: move it away" in result["msg"] and not (tmp_path / "a").exists()
