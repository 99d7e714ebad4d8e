# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os

from ansible_collections.gtsfm.cluster.plugins.modules.bashrc_block import main

BLOCK = 'export VIRTUAL_ENV=/opt/env\nexport PATH="/opt/env/bin:$PATH"\n'
STOCK = "# mine\ncase $- in\n    *i*) ;;\n      *) return;;\nesac\nalias ll='ls -l'\n"


def args(path, **extra):
    return dict(dict(path=str(path), block=BLOCK), **extra)


def test_missing_file_is_created_then_idempotent(tmp_path, run_module):
    path = tmp_path / ".bashrc"
    failed, result = run_module(main, args(path))
    assert not failed and result["changed"] and result["created"]
    assert "export VIRTUAL_ENV=/opt/env" in path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert not (tmp_path / ".bashrc.gtsfm-cluster.orig").exists()
    failed, result = run_module(main, args(path))
    assert not failed and not result["changed"]


def test_backup_made_once_with_the_users_own_file(tmp_path, run_module):
    path = tmp_path / ".bashrc"
    path.write_text(STOCK)
    os.chmod(path, 0o600)
    failed, result = run_module(main, args(path))
    backup = tmp_path / ".bashrc.gtsfm-cluster.orig"
    assert not failed and result["backup_file"] == str(backup) and backup.read_text() == STOCK
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    failed, result = run_module(main, args(path, block="export OTHER=1"))
    assert not failed and result["changed"] and "backup_file" not in result and backup.read_text() == STOCK
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".gtsfm")] == []


def test_symlink_is_edited_through_the_link(tmp_path, run_module):
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "bashrc"
    real.write_text(STOCK)
    link = tmp_path / ".bashrc"
    link.symlink_to("dotfiles/bashrc")
    failed, result = run_module(main, args(link))
    assert not failed and result["changed"] and result["target"] == str(real)
    assert link.is_symlink() and os.readlink(link) == "dotfiles/bashrc"
    assert real.read_text().index("VIRTUAL_ENV") < real.read_text().index("case $- in")
    assert [p.name for p in dotfiles.iterdir()] == ["bashrc"]
    failed, result = run_module(main, args(link))
    assert not failed and not result["changed"]


def test_dangling_symlink_is_refused(tmp_path, run_module):
    link = tmp_path / ".bashrc"
    link.symlink_to(tmp_path / "nowhere")
    failed, result = run_module(main, args(link))
    assert failed and "which does not exist" in result["msg"] and "not changed" in result["msg"]
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()


def test_unrecognised_guard_leaves_the_file_alone(tmp_path, run_module):
    path = tmp_path / ".bashrc"
    text = '[ -n "$PS1" ] || { echo hi; return; }\nalias x=y\n'
    path.write_text(text)
    failed, result = run_module(main, args(path))
    assert failed and str(path) in result["msg"] and "line 1" in result["msg"] and "Fix:" in result["msg"]
    assert path.read_text() == text and not (tmp_path / ".bashrc.gtsfm-cluster.orig").exists()


def test_directory_is_refused(tmp_path, run_module):
    path = tmp_path / ".bashrc"
    path.mkdir()
    failed, result = run_module(main, args(path))
    assert failed and "not a regular file" in result["msg"]


def test_check_mode_and_diff_write_nothing(tmp_path, run_module):
    path = tmp_path / ".bashrc"
    path.write_text(STOCK)
    failed, result = run_module(main, dict(args(path), _ansible_check_mode=True, _ansible_diff=True))
    assert not failed and result["changed"] and "VIRTUAL_ENV" in result["diff"]["after"]
    assert result["diff"]["before"] == STOCK and path.read_text() == STOCK
    assert not (tmp_path / ".bashrc.gtsfm-cluster.orig").exists()


def test_absent_removes_the_block(tmp_path, run_module):
    path = tmp_path / ".bashrc"
    path.write_text(STOCK)
    run_module(main, args(path))
    failed, result = run_module(main, dict(path=str(path), state="absent"))
    assert not failed and result["changed"] and path.read_text() == STOCK


def test_non_utf8_bytes_survive(tmp_path, run_module):
    path = tmp_path / ".bashrc"
    raw = b"export NAME='caf\xe9'\r\n[[ $- != *i* ]] && return\r\n"
    path.write_bytes(raw)
    failed, result = run_module(main, args(path))
    assert not failed and result["changed"]
    data = path.read_bytes()
    assert data.startswith(b"export NAME='caf\xe9'\r\n# BEGIN") and data.endswith(raw.split(b"\r\n", 1)[1])
