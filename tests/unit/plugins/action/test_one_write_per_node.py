"""A first run in two calls per node, as site.yml makes it (issue 26): the stage's read makes the missing key pair,
ssh_keypair answers from that read, and managed_blocks writes authorized_keys and known_hosts in one call; run
again, every writer answers from the read. Played on localhost (connection local), as the other action tests."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from localhost_play import run_localhost  # tests/, put on sys.path by conftest.py

from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import read_block

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
pytestmark = pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen")


def tasks(ssh: Path, check: bool = False) -> str:
    keys, known, key = (str(ssh / n) for n in ("authorized_keys", "known_hosts", "id_ed25519"))
    return f"""
    - name: Read, making the key pair
      gtsfm.cluster.cluster_node_info:
        ssh_dir: {str(ssh)!r}
        host_key_types: []
        keypair: {key!r}
        keypair_create: {{type: ed25519, comment: test}}
        files: [{{path: {keys!r}, marker: m}}, {{path: {known!r}, marker: k}}]
      register: read
    - name: Key pair
      gtsfm.cluster.ssh_keypair:
        path: {key!r}
        observed: "{{{{ read.keypair }}}}"
      register: pair
    - name: Both files in one call
      gtsfm.cluster.managed_blocks:
        blocks:
          - {{path: {keys!r}, marker: m, lines: ["{{{{ pair.public_key }}}}"], mode: "0600",
              observed: "{{{{ read.files[{keys!r}] }}}}"}}
          - {{path: {known!r}, marker: k, hash_hosts: true, entries: [{{names: [node1], keys: [{KEY!r}]}}],
              observed: "{{{{ read.files[{known!r}] }}}}"}}
      register: wrote
    - name: Keep the results
      ansible.builtin.copy:
        content: "{{{{ {{'read': read, 'pair': pair, 'wrote': wrote}} | to_json }}}}"
        dest: {str(ssh.parent / "result.json")!r}
        mode: "0600"
      check_mode: false
"""


def play(tmp_path: Path, check: bool = False) -> dict:
    book = tmp_path / "play.yml"
    book.write_text(
        "- hosts: localhost\n  gather_facts: false\n" + ("  check_mode: true\n" if check else "") + "  tasks:\n"
    )
    book.write_text(book.read_text() + tasks(tmp_path / ".ssh"))
    out = run_localhost(book)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads((tmp_path / "result.json").read_text())


def test_a_first_run_is_the_read_and_one_write_then_nothing(tmp_path):
    first = play(tmp_path)
    ssh = tmp_path / ".ssh"
    assert first["read"]["changed"] and first["read"]["keypair"]["created"]
    assert (ssh / "id_ed25519").stat().st_mode & 0o777 == 0o600 and (ssh / "gtsfm_cluster_home_id").exists()
    # The key pair the read made answers ssh_keypair on the controller: no call.
    assert first["pair"]["decided_from"] == "observed" and first["pair"]["public_key"].startswith("ssh-ed25519 ")
    assert first["wrote"]["changed"] and "decided_from" not in first["wrote"]
    assert read_block(str(ssh / "authorized_keys"), "m")["block"] == [first["pair"]["public_key"]]
    assert (ssh / "authorized_keys").stat().st_mode & 0o777 == 0o600
    assert len(read_block(str(ssh / "known_hosts"), "k")["block"]) == 1
    second = play(tmp_path)
    assert not second["read"]["changed"] and not second["read"]["keypair"]["created"]
    assert second["pair"]["decided_from"] == "observed" and second["pair"]["public_key"] == first["pair"]["public_key"]
    # Hashed known_hosts lines are reused, so the read shows both files done.
    assert second["wrote"] == {**second["wrote"], "changed": False, "decided_from": "observed"}, second["wrote"]


def test_only_the_file_that_changed_is_sent(tmp_path):
    play(tmp_path)
    ssh = tmp_path / ".ssh"
    (ssh / "known_hosts").write_text("# mine\n")
    again = play(tmp_path)
    files = again["wrote"]["files"]
    assert again["wrote"]["changed"] and files[str(ssh / "authorized_keys")]["decided_from"] == "observed"
    assert files[str(ssh / "known_hosts")]["changed"] and (ssh / "known_hosts").read_text().startswith("# mine\n")


def test_check_mode_makes_no_key_pair_and_writes_nothing(tmp_path):
    result = play(tmp_path, check=True)
    assert result["read"]["changed"] and result["read"]["keypair"]["created"]
    assert result["pair"]["public_key"] is None and "decided_from" not in result["pair"]
    assert result["wrote"]["changed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["play.yml", "result.json"]


def test_a_failed_write_names_the_node_and_the_file(tmp_path):
    fifo = tmp_path / "known_hosts"
    os.mkfifo(fifo)
    book = tmp_path / "play.yml"
    book.write_text(f"""- hosts: localhost
  gather_facts: false
  tasks:
    - name: Both files in one call
      gtsfm.cluster.managed_blocks:
        blocks:
          - {{path: {str(tmp_path / "authorized_keys")!r}, marker: m, lines: [a]}}
          - {{path: {str(fifo)!r}, marker: k, entries: [{{names: [node1], keys: [{KEY!r}]}}]}}
""")
    out = run_localhost(book, ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    assert out.returncode != 0
    assert f"managed_blocks on localhost: {fifo} is not a regular file" in out.stdout, out.stdout
    assert not (tmp_path / "authorized_keys").exists()
