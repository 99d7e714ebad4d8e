# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ansible_collections.gtsfm.cluster.plugins.module_utils.ssh_keypair import KeyPairError, ensure_keypair
from ansible_collections.gtsfm.cluster.plugins.module_utils.ssh_node import (
    ensure_ssh_dir, global_addresses, home_identity, publish_once)

pytestmark = pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen")


def run_command(cmd):
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return res.returncode, res.stdout, res.stderr


def test_new_key_is_made_with_private_modes(tmp_path):
    path = str(tmp_path / "id_ed25519")
    result = ensure_keypair(path, "ed25519", "c", False, run_command)
    assert result["created"] and result["changed"]
    assert result["public_key"].startswith("ssh-ed25519 ")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".gtsfm-keygen-")]


def test_existing_key_is_never_replaced(tmp_path):
    path = str(tmp_path / "id_ed25519")
    first = ensure_keypair(path, "ed25519", "c", False, run_command)
    before = open(path).read()
    second = ensure_keypair(path, "ed25519", "c", False, run_command)
    assert not second["changed"] and second["public_key"] == first["public_key"]
    assert open(path).read() == before


def test_missing_public_half_is_derived(tmp_path):
    path = str(tmp_path / "id_ed25519")
    first = ensure_keypair(path, "ed25519", "c", False, run_command)
    os.unlink(path + ".pub")
    assert ensure_keypair(path, "ed25519", "c", False, run_command)["public_key"] == first["public_key"]


def test_check_mode_writes_nothing(tmp_path):
    path = str(tmp_path / "id_ed25519")
    result = ensure_keypair(path, "ed25519", "c", True, run_command)
    assert result == {"public_key": None, "created": True, "changed": True}
    assert not os.listdir(tmp_path)


def test_loser_of_a_race_adopts_the_winners_key(tmp_path):
    path = str(tmp_path / "id_ed25519")

    def racing(cmd):
        # Another node on the shared home publishes its key while we run ssh-keygen.
        if not os.path.exists(path):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "winner", "-f", path], check=True)
        return run_command(cmd)

    result = ensure_keypair(path, "ed25519", "loser", False, racing)
    assert not result["created"] and result["public_key"].endswith("winner")


def test_bad_key_type_is_refused(tmp_path):
    with pytest.raises(KeyPairError, match="not one of"):
        ensure_keypair(str(tmp_path / "k"), "dsa", "c", False, run_command)


def test_home_identity_is_shared_through_the_marker(tmp_path):
    first, changed = home_identity(str(tmp_path), True)
    assert changed and first
    assert home_identity(str(tmp_path), True) == (first, False)
    assert home_identity(str(tmp_path / "nowhere"), False) == (None, False)


def test_ssh_dir_is_made_0700_and_fixed(tmp_path):
    ssh_dir = tmp_path / ".ssh"
    assert ensure_ssh_dir(str(ssh_dir), True) and not ssh_dir.exists()
    assert ensure_ssh_dir(str(ssh_dir), False) and ssh_dir.stat().st_mode & 0o777 == 0o700
    ssh_dir.chmod(0o775)
    assert ensure_ssh_dir(str(ssh_dir), False) and ssh_dir.stat().st_mode & 0o777 == 0o700
    assert not ensure_ssh_dir(str(ssh_dir), False)


def test_global_addresses_skip_loopback_and_link_local():
    assert global_addresses(["127.0.0.1", "10.0.0.1", "fe80::1%eth0", "::1", "10.0.0.1", "x", "2001:db8::5"]) == [
        "10.0.0.1", "2001:db8::5"]


def test_garbage_public_key_is_refused_with_the_fix(tmp_path):
    path = str(tmp_path / "id_ed25519")
    ensure_keypair(path, "ed25519", "c", False, run_command)
    with open(path + ".pub", "w") as handle:
        handle.write("hello\n")
    with pytest.raises(KeyPairError, match=r"id_ed25519.pub: not an SSH public key.*Fix: restore the public key"):
        ensure_keypair(path, "ed25519", "c", False, run_command)


def test_publish_once_lets_exactly_one_writer_win(tmp_path):
    first, second, dst = tmp_path / "a", tmp_path / "b", tmp_path / "dst"
    first.write_text("a")
    second.write_text("b")
    assert publish_once(str(first), str(dst)) and not publish_once(str(second), str(dst))
    assert dst.read_text() == "a"
