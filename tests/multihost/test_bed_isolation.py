"""Two test beds up at once never cross (issue 12): each play touches only its own bed's nodes.

Every bed names its nodes node1..N and Ansible names its SSH control sockets
after host, port and user; without a control-path directory per bed, a play
meant for bed B ran over bed A's open connections and reported success.
"""

from __future__ import annotations

from conftest import fresh_bed


def test_two_beds_up_at_once_each_play_touches_only_its_own_nodes(site, tmp_path):
    with fresh_bed("it-iso-a", 2) as bed_a, fresh_bed("it-iso-b", 2) as bed_b:
        run_a = site(bed_a.path / "inventory.yml", "ssh_mesh")
        assert run_a.status == "successful", run_a.results("runner_on_failed")
        # Within ControlPersist's 60 s of bed A's use: the trap needed exactly this.
        run_b = site(bed_b.path / "inventory.yml", "ssh_mesh")
        assert run_b.status == "successful", run_b.results("runner_on_failed")
        for bed in (bed_a, bed_b):
            own_ips = {bed.ip(n) for n in bed.nodes}
            for node in bed.nodes:
                keys = bed.ssh(node, "cat ~/.ssh/authorized_keys").stdout
                assert keys.count("ssh-ed25519 ") == 2, (bed.name, node, keys)
                listed = keys.split('from="')[1].split('"')[0].split(",")
                assert own_ips <= set(listed) and not (set(listed) - own_ips - {"127.0.0.1", "::1"}), listed
            assert bed.ssh("node1", "hostname -f").stdout.strip().endswith(f"{bed.name}.gtsfm.test")
