# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os

from ansible_collections.gtsfm.cluster.plugins.modules.known_hosts_block import main

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
KEY2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMsrZ9wasNSaZu8Bfob5PDjBGpuuTRY1ARKnQcEO0aNS"
USER_LINE = "github.com " + KEY2 + "\n"


def args(path, keys=(KEY,), **extra):
    return dict(path=str(path), entries=[{"names": ["node1", "10.0.0.1"], "keys": list(keys)}], **extra)


def test_creates_file_and_directory_then_is_idempotent(tmp_path, run_module):
    path = tmp_path / ".ssh" / "known_hosts"
    failed, result = run_module(main, args(path))
    assert not failed and result["changed"] and result["lines"] == 1
    assert path.read_text().splitlines()[1] == "node1,10.0.0.1 " + KEY
    assert oct(path.stat().st_mode & 0o777) == "0o644" and oct(path.parent.stat().st_mode & 0o777) == "0o700"
    failed, result = run_module(main, args(path))
    assert not failed and not result["changed"]


def test_user_lines_kept_and_changed_key_replaced(tmp_path, run_module):
    path = tmp_path / "known_hosts"
    path.write_text(USER_LINE)
    os.chmod(path, 0o600)
    run_module(main, args(path))
    failed, result = run_module(main, args(path, keys=[KEY2]))
    assert not failed and result["changed"]
    text = path.read_text()
    assert text.startswith(USER_LINE) and "node1,10.0.0.1 " + KEY2 in text and KEY not in text.replace(USER_LINE, "")
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_hashed_block_is_idempotent(tmp_path, run_module):
    path = tmp_path / "known_hosts"
    run_module(main, args(path, hash_hosts=True))
    before = path.read_text()
    assert "node1" not in before and before.count("|1|") == 2
    failed, result = run_module(main, args(path, hash_hosts=True))
    assert not failed and not result["changed"] and path.read_text() == before


def test_check_mode_and_diff_write_nothing(tmp_path, run_module):
    path = tmp_path / "known_hosts"
    failed, result = run_module(main, dict(args(path), _ansible_check_mode=True, _ansible_diff=True))
    assert not failed and result["changed"] and "node1,10.0.0.1" in result["diff"]["after"]
    assert not path.exists()


def test_absent_removes_only_the_block(tmp_path, run_module):
    path = tmp_path / "known_hosts"
    path.write_text(USER_LINE)
    run_module(main, args(path))
    failed, result = run_module(main, dict(args(path), state="absent"))
    assert not failed and result["changed"] and path.read_text() == USER_LINE


def test_bad_key_fails_naming_the_file(tmp_path, run_module):
    path = tmp_path / "known_hosts"
    failed, result = run_module(main, args(path, keys=["not a key"]))
    assert failed and str(path) in result["msg"] and "not an SSH public key" in result["msg"]
    assert not path.exists()


def test_unreadable_file_fails_instead_of_being_taken_for_empty(tmp_path, run_module):
    path = tmp_path / "known_hosts"
    path.mkdir()
    failed, result = run_module(main, args(path))
    assert failed and str(path) in result["msg"]
    assert path.is_dir()


def test_absent_needs_no_entries(tmp_path, run_module):
    path = tmp_path / "known_hosts"
    run_module(main, args(path))
    failed, result = run_module(main, dict(path=str(path), state="absent"))
    assert not failed and result["changed"] and path.read_text() == ""


def test_present_without_entries_is_refused(tmp_path, run_module):
    failed, result = run_module(main, dict(path=str(tmp_path / "known_hosts")))
    assert failed and "entries" in result["msg"]


def test_user_crlf_lines_are_kept_byte_for_byte(tmp_path, run_module):
    # Issue 13 case 7: the file was read in text mode and CRLF came back as LF.
    path = tmp_path / "known_hosts"
    path.write_bytes(USER_LINE.replace("\n", "\r\n").encode())
    failed, result = run_module(main, args(path))
    assert not failed and result["changed"]
    assert path.read_bytes().startswith(USER_LINE.replace("\n", "\r\n").encode())
    failed, result = run_module(main, args(path))
    assert not failed and not result["changed"]


def test_a_symlinked_file_is_written_through(tmp_path, run_module):
    # Issue 13 case 6: a dotfile manager's symlink was replaced by a regular file.
    real = tmp_path / "dotfiles" / "known_hosts"
    real.parent.mkdir()
    real.write_text(USER_LINE)
    link = tmp_path / "known_hosts"
    link.symlink_to(real)
    failed, result = run_module(main, args(link))
    assert not failed and result["changed"] and result["path"] == str(real)
    assert link.is_symlink() and "node1,10.0.0.1 " + KEY in real.read_text()


def test_a_full_disk_leaves_no_temporary_file_and_names_the_file(tmp_path, run_module, monkeypatch):
    # Issue 13 case 8: an empty .known_hosts.XXXXXXXX was left behind on every failed write.
    from ansible_collections.gtsfm.cluster.plugins.module_utils import managed_block

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(managed_block.os, "fsync", full)
    path = tmp_path / "known_hosts"
    path.write_text(USER_LINE)
    failed, result = run_module(main, args(path))
    assert failed and result["msg"].startswith(f"known_hosts_block: {path}: No space left on device. Fix: free")
    assert sorted(os.listdir(tmp_path)) == ["known_hosts"] and path.read_text() == USER_LINE


def test_mode_is_a_standard_file_option(tmp_path, run_module):
    path = tmp_path / "known_hosts"
    failed, result = run_module(main, args(path, mode="0600"))
    assert not failed and oct(path.stat().st_mode & 0o777) == "0o600"
    path.chmod(0o644)
    failed, result = run_module(main, args(path, mode="0600"))
    assert not failed and result["changed"] and oct(path.stat().st_mode & 0o777) == "0o600"
