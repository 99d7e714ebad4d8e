# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ansible_collections.gtsfm.cluster.plugins.module_utils.ssh_keypair import (
    KeyPairError,
    ensure_keypair,
    ensure_member,
    inspect_keypair,
    inspect_member,
)
from ansible_collections.gtsfm.cluster.plugins.module_utils.ssh_node import (
    NotADirectory,
    ensure_home_id,
    ensure_ssh_dir,
    global_addresses,
    publish_once,
    read_home_id,
)

pytestmark = pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen")
KEYGEN = shutil.which("ssh-keygen")


def run_command(cmd):
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return res.returncode, res.stdout, res.stderr


def ensure(path, check=False, runner=run_command, comment="c"):
    return ensure_keypair(str(path), "ed25519", comment, check, KEYGEN, runner)


def test_new_key_is_made_with_private_modes(tmp_path):
    path = str(tmp_path / "id_ed25519")
    result = ensure(path)
    assert result["created"] and result["changed"]
    assert result["public_key"].startswith("ssh-ed25519 ")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".gtsfm-keygen-")]


def test_existing_key_is_never_replaced(tmp_path):
    path = str(tmp_path / "id_ed25519")
    first = ensure(path)
    before = open(path).read()
    second = ensure(path)
    assert not second["changed"] and second["public_key"] == first["public_key"]
    assert open(path).read() == before


def test_missing_public_half_is_rebuilt(tmp_path):
    path = str(tmp_path / "id_ed25519")
    first = ensure(path)
    os.unlink(path + ".pub")
    assert inspect_keypair(path, KEYGEN, run_command)["needs_write"]
    again = ensure(path)
    assert again["changed"] and again["public_key"].split()[:2] == first["public_key"].split()[:2]
    assert open(path + ".pub").read().split()[:2] == first["public_key"].split()[:2]
    assert not inspect_keypair(path, KEYGEN, run_command)["needs_write"]


def test_a_deleted_private_key_gets_a_new_pair_and_the_stale_pub_is_replaced(tmp_path):
    # Issue 13 case 1: rm ~/.ssh/id_ed25519 left the old .pub, which was then published to every peer.
    path = str(tmp_path / "id_ed25519")
    old = ensure(path)["public_key"]
    os.unlink(path)
    state = inspect_keypair(path, KEYGEN, run_command)
    assert not state["exists"] and state["needs_write"]
    new = ensure(path)
    assert new["created"] and new["public_key"] != old
    assert open(path + ".pub").read().strip() == new["public_key"]
    derived = run_command([KEYGEN, "-y", "-f", path])[1].split()[:2]
    assert new["public_key"].split()[:2] == derived


def test_a_pub_that_does_not_match_its_private_key_is_rebuilt_from_it(tmp_path):
    path = str(tmp_path / "id_ed25519")
    ensure(path)
    other = str(tmp_path / "other")
    ensure(other)
    shutil.copyfile(other + ".pub", path + ".pub")
    state = inspect_keypair(path, KEYGEN, run_command)
    derived = run_command([KEYGEN, "-y", "-f", path])[1].strip()
    assert not state["pub_ok"] and state["needs_write"] and state["public_key"] == derived
    result = ensure(path)
    assert result["changed"] and any("rebuilt" in r for r in result["repaired"])
    assert open(path + ".pub").read().split()[:2] == derived.split()[:2]


def test_an_open_private_key_is_set_to_0600_and_read_without_a_passphrase_hint(tmp_path):
    # Issue 13 case 3: mode 0644 made ssh refuse the key while the role reported nothing.
    path = str(tmp_path / "id_ed25519")
    first = ensure(path)
    os.chmod(path, 0o644)
    os.unlink(path + ".pub")
    state = inspect_keypair(path, KEYGEN, run_command)
    assert state["needs_write"] and state["mode"] == "0644"
    assert state["public_key"].split()[:2] == first["public_key"].split()[:2]
    result = ensure(path)
    assert "mode 0644 -> 0600" in result["repaired"] and os.stat(path).st_mode & 0o777 == 0o600
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".gtsfm-keycheck-")]


def test_check_mode_writes_nothing(tmp_path):
    path = str(tmp_path / "id_ed25519")
    result = ensure(path, check=True)
    assert result == {"public_key": None, "created": True, "changed": True, "repaired": []}
    assert not os.listdir(tmp_path)
    ensure(path)
    os.chmod(path, 0o640)
    assert ensure(path, check=True)["changed"] and os.stat(path).st_mode & 0o777 == 0o640


def test_loser_of_a_race_adopts_the_winners_key(tmp_path):
    path = str(tmp_path / "id_ed25519")

    def racing(cmd):
        # Another node on the shared home publishes its key while we run ssh-keygen.
        if not os.path.exists(path) and "-t" in cmd:
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "winner", "-f", path], check=True)
        return run_command(cmd)

    result = ensure(path, runner=racing, comment="loser")
    assert not result["created"] and result["public_key"].endswith("winner")


def test_bad_key_type_is_refused(tmp_path):
    with pytest.raises(KeyPairError, match="not one of"):
        ensure_keypair(str(tmp_path / "k"), "dsa", "c", False, KEYGEN, run_command)


def test_a_passphrase_key_without_pub_is_refused_with_the_fix(tmp_path):
    path = str(tmp_path / "id_ed25519")
    subprocess.run([KEYGEN, "-q", "-t", "ed25519", "-N", "secret", "-f", path], check=True)
    os.unlink(path + ".pub")
    with pytest.raises(KeyPairError, match=r"has a passphrase.*ssh-keygen -y -f"):
        inspect_keypair(path, KEYGEN, run_command)


def test_home_id_is_shared_through_the_marker(tmp_path):
    assert read_home_id(str(tmp_path)) is None
    first, changed = ensure_home_id(str(tmp_path))
    assert changed and first
    assert ensure_home_id(str(tmp_path)) == (first, False)
    assert read_home_id(str(tmp_path)) == first
    assert read_home_id(str(tmp_path / "nowhere")) is None


def test_ssh_dir_is_made_0700_and_fixed(tmp_path):
    ssh_dir = tmp_path / ".ssh"
    assert ensure_ssh_dir(str(ssh_dir), True) and not ssh_dir.exists()
    assert ensure_ssh_dir(str(ssh_dir), False) and ssh_dir.stat().st_mode & 0o777 == 0o700
    ssh_dir.chmod(0o775)
    assert ensure_ssh_dir(str(ssh_dir), False) and ssh_dir.stat().st_mode & 0o777 == 0o700
    assert not ensure_ssh_dir(str(ssh_dir), False)


def test_a_file_at_ssh_dir_is_refused_and_left_as_it_is(tmp_path):
    # Issue 13 case 9: the file's mode was changed to 0700 before an unhelpful failure.
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.write_text("not a dir")
    ssh_dir.chmod(0o644)
    with pytest.raises(NotADirectory, match=r"\.ssh exists but is not a directory\. Fix: move that file away"):
        ensure_ssh_dir(str(ssh_dir), False)
    assert ssh_dir.stat().st_mode & 0o777 == 0o644 and ssh_dir.read_text() == "not a dir"


def test_global_addresses_skip_loopback_and_link_local():
    assert global_addresses(["127.0.0.1", "10.0.0.1", "fe80::1%eth0", "::1", "10.0.0.1", "x", "2001:db8::5"]) == [
        "10.0.0.1",
        "2001:db8::5",
    ]


def test_garbage_public_key_is_replaced_from_the_private_key(tmp_path):
    path = str(tmp_path / "id_ed25519")
    first = ensure(path)
    with open(path + ".pub", "w") as handle:
        handle.write("hello\n")
    result = ensure(path)
    assert result["changed"] and result["public_key"].split()[:2] == first["public_key"].split()[:2]


def test_publish_once_lets_exactly_one_writer_win(tmp_path):
    first, second, dst = tmp_path / "a", tmp_path / "b", tmp_path / "dst"
    first.write_text("a")
    second.write_text("b")
    assert publish_once(str(first), str(dst)) and not publish_once(str(second), str(dst))
    assert dst.read_text() == "a"


def test_inspect_member_says_what_ensure_member_would_do(tmp_path):
    path = str(tmp_path / ".ssh" / "id_ed25519")
    state = inspect_member(path, KEYGEN, run_command)
    assert state["needs_write"] and state["dir_state"] == "missing" and state["home_id"] is None
    made = ensure_member(path, "ed25519", "c", False, KEYGEN, run_command)
    assert made["created"] and made["changed"] and made["home_id"]
    state = inspect_member(path, KEYGEN, run_command)
    assert not state["needs_write"] and state["home_id"] == made["home_id"] and state["dir_state"] == "ok"
    os.chmod(os.path.dirname(path), 0o755)
    assert inspect_member(path, KEYGEN, run_command)["needs_write"]
    again = ensure_member(path, "ed25519", "c", False, KEYGEN, run_command)
    assert again["changed"] and not again["created"] and again["public_key"] == made["public_key"]


def test_ensure_member_without_home_marker_makes_none(tmp_path):
    path = str(tmp_path / "id_ed25519")
    made = ensure_member(path, "ed25519", "c", False, KEYGEN, run_command, home_marker=False)
    assert made["home_id"] is None and read_home_id(str(tmp_path)) is None
