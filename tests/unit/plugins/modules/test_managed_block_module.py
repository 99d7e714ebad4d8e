# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os

from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import markers, read_block
from ansible_collections.gtsfm.cluster.plugins.modules.managed_block import main

NAME = "example.block"
BEGIN, END = markers(NAME)
MINE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@laptop"
REVOKED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMsrZ9wasNSaZu8Bfob5PDjBGpuuTRY1ARKnQcEO0aNS gone"


def test_writes_the_block_with_mode_then_changes_nothing(tmp_path, run_module):
    path = tmp_path / ".ssh" / "authorized_keys"
    failed, result = run_module(main, dict(path=str(path), marker=NAME, lines=["a"], mode="0600"))
    assert not failed and result["changed"] and oct(path.stat().st_mode & 0o777) == "0o600"
    assert path.read_text() == BEGIN + "\na\n" + END + "\n"
    failed, result = run_module(main, dict(path=str(path), marker=NAME, lines=["a"], mode="0600"))
    assert not failed and not result["changed"]


def test_a_crlf_file_keeps_one_block_and_the_revoked_key_goes(tmp_path, run_module):
    # Issue 13 case 2: the probe matched CRLF markers, blockinfile did not and appended a second block.
    path = tmp_path / "authorized_keys"
    crlf = MINE + "\r\n" + BEGIN + "\r\n" + REVOKED + "\r\n" + END + "\r\n"
    path.write_bytes(crlf.encode())
    assert read_block(str(path), NAME)["block"] == [REVOKED]
    failed, result = run_module(main, dict(path=str(path), marker=NAME, lines=["a"]))
    assert not failed and result["changed"]
    text = path.read_bytes().decode()
    assert text.startswith(MINE + "\r\n") and text.count(BEGIN) == 1 and REVOKED not in text
    assert read_block(str(path), NAME)["block"] == ["a"]
    failed, result = run_module(main, dict(path=str(path), marker=NAME, lines=["a"]))
    assert not failed and not result["changed"]


def test_a_symlinked_file_is_written_through(tmp_path, run_module):
    real = tmp_path / "real"
    real.write_text(MINE + "\n")
    link = tmp_path / "authorized_keys"
    link.symlink_to(real)
    failed, result = run_module(main, dict(path=str(link), marker=NAME, lines=["a"]))
    assert not failed and link.is_symlink() and real.read_text().startswith(MINE + "\n" + BEGIN)


def test_damaged_markers_and_fifos_are_refused_untouched(tmp_path, run_module):
    path = tmp_path / "authorized_keys"
    path.write_text(BEGIN + "\nx\n")
    failed, result = run_module(main, dict(path=str(path), marker=NAME, lines=["a"]))
    assert failed and f"markers of block '{NAME}' are damaged" in result["msg"]
    assert path.read_text() == BEGIN + "\nx\n"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    failed, result = run_module(main, dict(path=str(fifo), marker=NAME, lines=["a"]))
    assert failed and "not a regular file" in result["msg"]


def test_check_mode_and_absent(tmp_path, run_module):
    path = tmp_path / "authorized_keys"
    failed, result = run_module(
        main, dict(path=str(path), marker=NAME, lines=["a"], _ansible_check_mode=True, _ansible_diff=True)
    )
    assert not failed and result["changed"] and result["diff"]["after"] == "a\n" and not path.exists()
    path.write_text(MINE + "\n")
    run_module(main, dict(path=str(path), marker=NAME, lines=["a"]))
    failed, result = run_module(main, dict(path=str(path), marker=NAME, state="absent"))
    assert not failed and result["changed"] and path.read_text() == MINE + "\n"
    failed, result = run_module(main, dict(path=str(path), marker=NAME))
    assert failed and "lines" in result["msg"]
