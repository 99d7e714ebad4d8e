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
