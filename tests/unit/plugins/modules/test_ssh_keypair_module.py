# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import shutil

import pytest

from ansible_collections.gtsfm.cluster.plugins.modules.ssh_keypair import main

pytestmark = pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen")


def test_makes_the_key_and_the_ssh_dir_then_changes_nothing(tmp_path, run_module):
    path = tmp_path / ".ssh" / "id_ed25519"
    failed, result = run_module(main, dict(path=str(path)))
    assert not failed and result["changed"] and result["created"]
    assert result["public_key"].startswith("ssh-ed25519 ") and result["node"]["home_id"]
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    failed, again = run_module(main, dict(path=str(path)))
    assert not failed and not again["changed"] and again["public_key"] == result["public_key"]


def test_check_mode_writes_nothing(tmp_path, run_module):
    path = tmp_path / ".ssh" / "id_ed25519"
    failed, result = run_module(main, dict(path=str(path), _ansible_check_mode=True))
    assert not failed and result["changed"] and result["public_key"] is None
    assert not path.parent.exists()


def test_reports_the_authorized_keys_block_without_touching_it(tmp_path, run_module):
    path = tmp_path / ".ssh" / "id_ed25519"
    failed, result = run_module(main, dict(path=str(path), authorized_keys=str(tmp_path / ".ssh" / "authorized_keys")))
    assert not failed and result["authorized_keys"] == {"exists": False, "mode": None, "block": None}
    assert not (tmp_path / ".ssh" / "authorized_keys").exists()


def test_damaged_mesh_markers_fail_before_anything_is_written(tmp_path, run_module):
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    keys = ssh_dir / "authorized_keys"
    keys.write_text("# BEGIN gtsfm.cluster.ssh_mesh (managed by Ansible: edits here are overwritten)\nx\n")
    failed, result = run_module(main, dict(path=str(ssh_dir / "id_ed25519"), authorized_keys=str(keys)))
    assert failed and "%s: the markers of block 'gtsfm.cluster.ssh_mesh' are damaged" % keys in result["msg"]
    assert keys.read_text().endswith("x\n")
