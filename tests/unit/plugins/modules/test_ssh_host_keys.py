# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible_collections.gtsfm.cluster.plugins.modules.ssh_host_keys import main

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def test_reports_keys_and_every_name_peers_use(tmp_path, run_module):
    (tmp_path / "ssh_host_ed25519_key.pub").write_text(KEY + " root@node1\n")
    failed, result = run_module(main, dict(host_key_dir=str(tmp_path), ssh_dir=str(tmp_path / ".ssh"),
                                           aliases=["node1.cluster"], port=2222))
    assert not failed, result
    assert result["host_keys"] == [KEY]
    assert result["entry"]["names"][0] == "[node1.cluster]:2222"
    assert all(n.startswith("[") and n.endswith("]:2222") for n in result["entry"]["names"])
    assert result["self_names"] == ["[localhost]:2222", "[127.0.0.1]:2222", "[::1]:2222"]
    assert result["changed"] and (tmp_path / ".ssh" / "gtsfm_cluster_home_id").exists()
    failed, again = run_module(main, dict(host_key_dir=str(tmp_path), ssh_dir=str(tmp_path / ".ssh")))
    assert not again["changed"] and again["node"]["home_id"] == result["node"]["home_id"]


def test_no_host_key_and_bad_port_fail_clearly(tmp_path, run_module):
    failed, result = run_module(main, dict(host_key_dir=str(tmp_path), ssh_dir=str(tmp_path / ".ssh")))
    assert failed and "is an SSH server installed" in result["msg"]
    failed, result = run_module(main, dict(host_key_dir=str(tmp_path), port=0))
    assert failed and "port must be 1-65535" in result["msg"]


def test_reports_the_known_hosts_block_it_finds(tmp_path, run_module):
    (tmp_path / "ssh_host_ed25519_key.pub").write_text(KEY + "\n")
    known = tmp_path / "known_hosts"
    known.write_text("# BEGIN gtsfm.cluster.known_hosts (managed by Ansible: edits here are overwritten)\nx\n"
                     "# END gtsfm.cluster.known_hosts (managed by Ansible: edits here are overwritten)\n")
    failed, result = run_module(main, dict(host_key_dir=str(tmp_path), ssh_dir=str(tmp_path / ".ssh"),
                                           known_hosts=str(known)))
    assert not failed and result["known_hosts"]["block"] == ["x"] and result["known_hosts"]["exists"]
