# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import shutil

import pytest

from ansible_collections.gtsfm.cluster.plugins.modules.ssh_keypair import main

pytestmark = pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen")


def test_makes_the_key_the_ssh_dir_and_the_home_marker_then_changes_nothing(tmp_path, run_module):
    path = tmp_path / ".ssh" / "id_ed25519"
    failed, result = run_module(main, dict(path=str(path)))
    assert not failed and result["changed"] and result["created"]
    assert result["public_key"].startswith("ssh-ed25519 ") and result["home_id"]
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    failed, again = run_module(main, dict(path=str(path)))
    assert not failed and not again["changed"] and again["public_key"] == result["public_key"]
    assert again["home_id"] == result["home_id"] and again["repaired"] == []


def test_check_mode_writes_nothing(tmp_path, run_module):
    path = tmp_path / ".ssh" / "id_ed25519"
    failed, result = run_module(main, dict(path=str(path), _ansible_check_mode=True))
    assert not failed and result["changed"] and result["public_key"] is None and result["home_id"] is None
    assert not path.parent.exists()


def test_an_open_key_is_repaired_and_said_so(tmp_path, run_module):
    path = tmp_path / ".ssh" / "id_ed25519"
    run_module(main, dict(path=str(path)))
    path.chmod(0o644)
    failed, result = run_module(main, dict(path=str(path)))
    assert not failed and result["changed"] and result["repaired"] == ["mode 0644 -> 0600"]


def test_a_file_where_ssh_dir_should_be_fails_clearly(tmp_path, run_module):
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.write_text("x")
    failed, result = run_module(main, dict(path=str(ssh_dir / "id_ed25519")))
    assert failed and result["msg"].startswith(f"ssh_keypair: {ssh_dir} exists but is not a directory. Fix:")
