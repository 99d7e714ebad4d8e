# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import markers
from ansible_collections.gtsfm.cluster.plugins.modules.cluster_node_info import main
from ansible_collections.gtsfm.cluster.plugins.modules.ssh_keypair import main as keypair_main

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def tree(tmp_path):
    """A snapshot of every path under tmp_path with its mode and content, to show nothing was written."""
    out = {}
    for root, dirs, files in os.walk(tmp_path):
        for name in dirs + files:
            path = os.path.join(root, name)
            info = os.lstat(path)
            content = open(path, "rb").read() if os.path.isfile(path) and not os.path.islink(path) else None
            out[path] = (info.st_mode, content)
    return out


def test_reports_keys_names_home_and_python(tmp_path, run_module):
    (tmp_path / "ssh_host_ed25519_key.pub").write_text(KEY + " root@node1\n")
    failed, result = run_module(
        main,
        dict(
            host_key_dir=str(tmp_path),
            ssh_dir=str(tmp_path / ".ssh"),
            aliases=["node1.cluster"],
            port=2222,
            free_paths=[str(tmp_path / "x/y")],
        ),
    )
    assert not failed, result
    assert not result["changed"] and result["host_keys"] == [KEY]
    assert result["entry"]["names"][0] == "[node1.cluster]:2222"
    assert result["self_names"] == ["[localhost]:2222", "[127.0.0.1]:2222", "[::1]:2222"]
    node = result["node"]
    assert node["home_id"] is None and node["ssh_dir_state"] == "missing"
    assert node["python"] and os.path.isabs(node["python"]) and node["python_version"].count(".") == 2
    assert node["free"][str(tmp_path / "x/y")] > 0
    assert result["keypair"] is None and result["files"] == {}
    assert not (tmp_path / ".ssh").exists()


def test_never_writes_even_where_the_old_probe_did(tmp_path, run_module):
    # Issue 12: ssh_host_keys, given a known_hosts path in a 0775 directory, chmod-ed it 0700 and wrote the marker.
    ssh_dir = tmp_path / "shared"
    ssh_dir.mkdir()
    ssh_dir.chmod(0o775)
    (tmp_path / "ssh_host_ed25519_key.pub").write_text(KEY + "\n")
    before = tree(tmp_path)
    failed, result = run_module(
        main,
        dict(
            host_key_dir=str(tmp_path),
            ssh_dir=str(ssh_dir),
            keypair=str(ssh_dir / "id_ed25519"),
            files=[{"path": str(ssh_dir / "known_hosts"), "marker": "t"}],
        ),
    )
    assert not failed and not result["changed"]
    assert result["node"]["ssh_dir_state"] == "open"
    assert result["keypair"]["needs_write"] and not result["keypair"]["exists"]
    assert tree(tmp_path) == before


def test_reads_blocks_keyed_by_the_path_as_given(tmp_path, run_module, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "ssh_host_ed25519_key.pub").write_text(KEY + "\n")
    begin, end = markers("t")
    (tmp_path / "f").write_text("mine\r\n" + begin + "\r\na\r\n" + end + "\r\n")
    failed, result = run_module(main, dict(host_key_dir=str(tmp_path), files=[{"path": "~/f", "marker": "t"}]))
    assert not failed and result["files"]["~/f"]["block"] == ["a"]
    assert result["files"]["~/f"]["path"] == str(tmp_path / "f")


def test_a_fifo_is_refused_instead_of_hanging_the_read(tmp_path, run_module):
    # Issue 13 case 4: mkfifo ~/.ssh/authorized_keys hung the play.
    (tmp_path / "ssh_host_ed25519_key.pub").write_text(KEY + "\n")
    fifo = tmp_path / "authorized_keys"
    os.mkfifo(fifo)
    failed, result = run_module(main, dict(host_key_dir=str(tmp_path), files=[{"path": str(fifo), "marker": "t"}]))
    assert failed and f"{fifo} is not a regular file" in result["msg"] and "Fix: move it away" in result["msg"]


@pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen")
def test_reports_a_key_pair_whose_halves_do_not_match(tmp_path, run_module):
    (tmp_path / "ssh_host_ed25519_key.pub").write_text(KEY + "\n")
    key = tmp_path / ".ssh" / "id_ed25519"
    run_module(keypair_main, dict(path=str(key)))
    failed, result = run_module(main, dict(host_key_dir=str(tmp_path), ssh_dir=str(key.parent), keypair=str(key)))
    assert not failed and not result["keypair"]["needs_write"] and result["node"]["home_id"]
    (key.parent / "id_ed25519.pub").write_text(KEY + " stale\n")
    failed, result = run_module(main, dict(host_key_dir=str(tmp_path), ssh_dir=str(key.parent), keypair=str(key)))
    assert not failed and result["keypair"]["needs_write"] and not result["keypair"]["pub_ok"]
    assert result["keypair"]["public_key"].split()[1] != KEY.split()[1]


def test_no_host_key_reports_none_and_bad_port_fails_clearly(tmp_path, run_module):
    failed, result = run_module(main, dict(host_key_dir=str(tmp_path)))
    assert not failed and result["host_keys"] == []
    failed, result = run_module(main, dict(host_key_dir=str(tmp_path), port=0))
    assert failed and "port must be 1-65535" in result["msg"]


def test_a_file_where_ssh_dir_should_be_is_named_with_the_fix(tmp_path, run_module):
    (tmp_path / "ssh_host_ed25519_key.pub").write_text(KEY + "\n")
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.write_text("x")
    failed, result = run_module(
        main, dict(host_key_dir=str(tmp_path), ssh_dir=str(ssh_dir), keypair=str(ssh_dir / "id_ed25519"))
    )
    assert failed and f"{ssh_dir} exists but is not a directory" in result["msg"] and "Fix: move" in result["msg"]


def test_reads_checksums_broadcast_records_and_the_environment_in_the_same_call(tmp_path, run_module, monkeypatch):
    from ansible_collections.gtsfm.cluster.plugins.module_utils import _broadcast_hop as hop

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "a.tar").write_bytes(b"archive")
    (tmp_path / "a.tar").chmod(0o600)
    checkout = tmp_path / "gtsfm"
    (checkout / "results").mkdir(parents=True)
    (checkout / "x.py").write_text("x")
    signature = hop.signature(str(checkout), "tree", ["/results/"])
    hop.write_record(str(checkout), {"kind": "tree", "digest": "sha256:d", "signature": signature, "written": 5.0})
    (checkout / "results" / "out").write_text("an excluded path changes nothing")
    before = tree(tmp_path)
    failed, result = run_module(
        main,
        dict(
            host_key_dir=str(tmp_path),
            checksums=["~/a.tar", "~/none"],
            trees=[{"path": "~/gtsfm", "exclude": ["/results/"]}, {"path": str(tmp_path / "none")}],
            python_env={"prefix": "~/env", "requirements": ["dask"], "python": "/no/python3"},
        ),
    )
    assert not failed, result
    assert result["checksums"]["~/a.tar"] == {
        "path": str(tmp_path / "a.tar"),
        "exists": True,
        "mode": "0600",
        "checksum": hashlib.sha1(b"archive").hexdigest(),
        "mtime": os.stat(tmp_path / "a.tar").st_mtime,
    }
    assert not result["checksums"]["~/none"]["exists"] and result["checksums"]["~/none"]["checksum"] is None
    held = result["trees"]["~/gtsfm"]
    assert (held["held"], held["written"], held["path"], held["exclude"]) == (
        "sha256:d",
        5.0,
        str(checkout),
        ["/results/"],
    )
    assert result["trees"][str(tmp_path / "none")]["held"] is None
    # The probe's errors are data in the module's own terms: the role's own probe then asks the node and words them.
    assert result["python_env"] == {
        "error": "python_env: the interpreter /no/python3 is missing on this node. Fix: install it at the same path "
        "on every node, or set option python"
    }
    assert tree(tmp_path) == before


def test_the_environment_read_is_what_python_env_probe_returns(tmp_path, run_module, monkeypatch):
    from ansible_collections.gtsfm.cluster.plugins.modules.python_env import main as env_main

    monkeypatch.setenv("HOME", str(tmp_path))
    options = {"prefix": "~/env", "requirements": ["dask"], "python": shutil.which("python3")}
    failed, read = run_module(main, dict(host_key_dir=str(tmp_path), python_env=options))
    assert not failed, read
    failed, probe = run_module(env_main, dict(options, action="probe"))
    assert not failed, probe
    # Free space moves between the two calls on a busy machine; everything else is the same read.
    assert {k: v for k, v in read["python_env"].items() if k != "free"} == {
        k: v for k, v in probe.items() if k not in ("changed", "invocation", "free")
    }
    assert (
        read["python_env"]["read_with"]["prefix"] == str(tmp_path / "env") and read["python_env"]["state"] == "missing"
    )


def create_args(tmp_path, **extra):
    ssh = tmp_path / ".ssh"
    args = dict(host_key_dir=str(tmp_path), ssh_dir=str(ssh), keypair=str(ssh / "id_ed25519"))
    args["keypair_create"] = {"type": "ed25519", "comment": "gtsfm.cluster node1"}
    return dict(args, **extra)


@pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen")
def test_keypair_create_makes_a_missing_pair_in_the_read_then_changes_nothing(tmp_path, run_module):
    failed, result = run_module(main, create_args(tmp_path))
    ssh = tmp_path / ".ssh"
    assert not failed and result["changed"], result
    pair = result["keypair"]
    assert pair["created"] and pair["exists"] and not pair["needs_write"] and pair["mode"] == "0600"
    assert pair["public_key"].endswith(" gtsfm.cluster node1") and pair["home_id"]
    # The node as it stands after the call: the home marker and ~/.ssh the read made.
    assert result["node"]["home_id"] == pair["home_id"] and result["node"]["ssh_dir_state"] == "ok"
    assert oct(ssh.stat().st_mode & 0o777) == "0o700"
    failed, again = run_module(main, create_args(tmp_path))
    assert not failed and not again["changed"] and not again["keypair"]["created"]
    assert again["keypair"]["public_key"] == pair["public_key"]


@pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen")
def test_keypair_create_never_replaces_a_private_key_and_repairs_an_open_one(tmp_path, run_module):
    key = tmp_path / ".ssh" / "id_ed25519"
    run_module(keypair_main, dict(path=str(key)))
    before = key.read_bytes()
    key.chmod(0o644)
    failed, result = run_module(main, create_args(tmp_path))
    assert not failed and result["changed"] and not result["keypair"]["created"]
    assert result["keypair"]["repaired"] == ["mode 0644 -> 0600"] and key.read_bytes() == before
    assert key.stat().st_mode & 0o777 == 0o600


@pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen")
def test_keypair_create_in_check_mode_makes_nothing_and_says_it_would(tmp_path, run_module):
    failed, result = run_module(main, create_args(tmp_path, _ansible_check_mode=True))
    assert not failed and result["changed"] and result["keypair"]["created"], result
    assert not result["keypair"]["exists"] and result["keypair"]["needs_write"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_keypair_create_needs_a_keypair(tmp_path, run_module):
    args = create_args(tmp_path)
    del args["keypair"]
    failed, result = run_module(main, args)
    assert failed and "keypair_create" in result["msg"] and "keypair" in result["msg"], result


def test_keypair_create_leaves_a_file_where_ssh_dir_should_be_alone(tmp_path, run_module):
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.write_text("x")
    failed, result = run_module(main, create_args(tmp_path))
    assert failed and f"{ssh_dir} exists but is not a directory" in result["msg"] and "Fix: move" in result["msg"]
    assert ssh_dir.read_text() == "x"
