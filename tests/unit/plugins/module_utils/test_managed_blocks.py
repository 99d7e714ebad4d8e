# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Several files' blocks in one call: each by its own writer's rule, all planned before any is written."""

from __future__ import annotations

import os

import pytest

from ansible_collections.gtsfm.cluster.plugins.module_utils import _managed_blocks, managed_block
from ansible_collections.gtsfm.cluster.plugins.module_utils._managed_blocks import apply_blocks
from ansible_collections.gtsfm.cluster.plugins.module_utils.known_hosts import render_lines
from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import (
    BlockError,
    markers,
    read_block,
    replace_block,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
ENTRIES = [{"names": ["node1", "10.0.0.1"], "keys": [KEY]}]


def two(tmp_path, hash_hosts=False):
    return [
        {"path": str(tmp_path / "authorized_keys"), "marker": "m", "lines": ["a", "b"], "mode": "0600"},
        {"path": str(tmp_path / "known_hosts"), "marker": "k", "entries": ENTRIES, "hash_hosts": hash_hosts},
    ]


def test_each_file_gets_its_block_by_its_writers_rule_then_nothing_changes(tmp_path):
    (tmp_path / "known_hosts").write_text("mine\r\n")
    done = apply_blocks(two(tmp_path, hash_hosts=True), False)
    assert all(d["changed"] for d in done.values())
    assert read_block(str(tmp_path / "authorized_keys"), "m")["block"] == ["a", "b"]
    assert (tmp_path / "authorized_keys").stat().st_mode & 0o777 == 0o600
    text = (tmp_path / "known_hosts").read_bytes().decode()
    assert text.startswith("mine\r\n") and text.count("|1|") == 2
    # Hashed lines that still stand for the same name and key are reused, as known_hosts_block does.
    again = apply_blocks(two(tmp_path, hash_hosts=True), False)
    assert not any(d["changed"] for d in again.values())
    assert (tmp_path / "known_hosts").read_bytes().decode() == text


def test_the_entries_render_as_known_hosts_block_renders_them(tmp_path):
    apply_blocks(two(tmp_path), False)
    assert read_block(str(tmp_path / "known_hosts"), "k")["block"] == render_lines(ENTRIES, False)


def test_a_mode_is_applied_to_an_existing_file_whose_block_is_already_right(tmp_path):
    apply_blocks(two(tmp_path), False)
    (tmp_path / "authorized_keys").chmod(0o644)
    done = apply_blocks(two(tmp_path), False)
    assert done[str(tmp_path / "authorized_keys")]["changed"] and not done[str(tmp_path / "known_hosts")]["changed"]
    assert (tmp_path / "authorized_keys").stat().st_mode & 0o777 == 0o600


def test_check_mode_reports_and_writes_nothing(tmp_path):
    done = apply_blocks(two(tmp_path), True)
    assert all(d["changed"] for d in done.values()) and list(tmp_path.iterdir()) == []


def test_damaged_markers_in_the_second_file_leave_the_first_untouched(tmp_path):
    begin, _end = markers("k")
    (tmp_path / "known_hosts").write_text(begin + "\nx\n")
    with pytest.raises(BlockError) as err:
        apply_blocks(two(tmp_path), False)
    assert str(tmp_path / "known_hosts") in str(err.value) and "markers of block 'k' are damaged" in str(err.value)
    assert not (tmp_path / "authorized_keys").exists()


def test_a_failed_write_names_the_file_and_the_files_already_whole(tmp_path, monkeypatch):
    real = managed_block.write_text

    def full_disk(path, text, mode=0o644):
        if path.endswith("known_hosts"):
            raise BlockError(f"{path}: No space left on device. Fix: free some space and re-run.")
        return real(path, text, mode)

    monkeypatch.setattr(managed_block, "write_text", full_disk)
    (tmp_path / "known_hosts").write_text("mine\n")
    with pytest.raises(BlockError) as err:
        apply_blocks(two(tmp_path), False)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'known_hosts'}: No space left on device. Fix:")
    assert f"The files before it are whole: {tmp_path / 'authorized_keys'} (changed)." in message
    assert message.endswith(f"{tmp_path / 'known_hosts'} is as it was.")
    assert (tmp_path / "known_hosts").read_text() == "mine\n"
    assert read_block(str(tmp_path / "authorized_keys"), "m")["block"] == ["a", "b"]
    assert not [p for p in os.listdir(tmp_path) if ".gtsfm-" in p]


def test_a_mode_that_is_not_octal_is_refused_before_anything_is_written(tmp_path):
    blocks = two(tmp_path)
    blocks[1]["mode"] = "u=rw"
    with pytest.raises(BlockError) as err:
        apply_blocks(blocks, False)
    assert "mode 'u=rw' is not an octal file mode. Fix: give it as four octal digits" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_bad_entries_name_the_file(tmp_path):
    blocks = two(tmp_path)
    blocks[1]["entries"] = [{"names": ["n"], "keys": ["junk"]}]
    with pytest.raises(BlockError) as err:
        apply_blocks(blocks, False)
    assert str(err.value).startswith(f"{tmp_path / 'known_hosts'}: not an SSH public key")


def test_a_block_already_right_plans_no_change(tmp_path):
    (tmp_path / "authorized_keys").write_text(replace_block("mine\n", "m", ["a", "b"]))
    (tmp_path / "authorized_keys").chmod(0o600)
    plans = _managed_blocks.plan_blocks(two(tmp_path)[:1])
    assert not plans[0]["changed"] and not plans[0]["mode_changed"]
