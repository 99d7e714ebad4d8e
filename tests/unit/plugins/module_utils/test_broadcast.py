# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The source side of the broadcast and the status reader, without a bed."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.gtsfm.cluster.plugins.module_utils import _broadcast as bc
from ansible_collections.gtsfm.cluster.plugins.module_utils import _broadcast_hop as hop
from ansible_collections.gtsfm.cluster.plugins.module_utils import _progress

PARAMS = {"connect_timeout": 10, "keepalive": 5, "cipher": "aes128-gcm@openssh.com", "ssh_args": ["-o", "Port=2222"]}


def test_ssh_options_are_batch_strict_with_keepalives_and_the_cipher():
    opts = bc.ssh_options(PARAMS)
    joined = " ".join(opts)
    for part in (
        "BatchMode=yes",
        "StrictHostKeyChecking=yes",
        "ConnectTimeout=10",
        "ServerAliveInterval=5",
        "ServerAliveCountMax=3",
        "-c aes128-gcm@openssh.com",
    ):
        assert part in joined
    assert opts[-2:] == ["-o", "Port=2222"]
    assert "-c" not in bc.ssh_options(dict(PARAMS, cipher=""))


def test_chain_order_keeps_the_given_order_without_duplicates():
    assert bc.order_hosts(["n3", "n1", "n3", "n2"], "given") == ["n3", "n1", "n2"]
    assert bc.order_hosts(["n3", "n1", "n2"], "sorted") == ["n1", "n2", "n3"]
    assert sorted(bc.order_hosts(["n3", "n1", "n2"], "shuffle")) == ["n1", "n2", "n3"]


def test_source_must_be_absolute_and_exist_with_a_fix():
    with pytest.raises(bc.BroadcastError, match="must be absolute"):
        bc.describe_source("rel/path")
    with pytest.raises(bc.BroadcastError, match=r"/no/such: No such file or directory on the source node. Fix"):
        bc.describe_source("/no/such")


def test_source_digest_is_cached_beside_it_until_it_changes(tmp_path):
    data = tmp_path / "data"
    data.write_bytes(b"one")
    first = bc.describe_source(str(data))
    assert first["kind"] == "file" and first["cached"] is False and first["size"] == 3
    assert bc.describe_source(str(data))["cached"] is True
    data.write_bytes(b"two!")
    again = bc.describe_source(str(data))
    assert again["cached"] is False and again["digest"] != first["digest"] and again["size"] == 4


def test_check_mode_writes_no_record_at_the_source(tmp_path):
    data = tmp_path / "data"
    data.write_bytes(b"x")
    bc.describe_source(str(data), check_mode=True)
    assert not (tmp_path / ".data.gtsfm-broadcast.json").exists()


def test_check_mode_before_the_source_exists_sends_to_every_target_without_asking_them(tmp_path):
    params = {"path": str(tmp_path / "env.abc"), "hosts": ["n3", "n2", "n3"], "order": "as_given"}
    result = bc.broadcast(params, True, {}, warn=None)
    assert (result["changed"], result["would_receive"], result["received"], result["failed_nodes"]) == (
        True,
        ["n3", "n2"],
        [],
        [],
    )
    assert result["msg"] == f"{tmp_path}/env.abc: 0 received, 0 already held it, 2 would receive"
    with pytest.raises(bc.BroadcastError, match="No such file or directory on the source node"):
        bc.broadcast(params, False, {"ssh": "ssh"}, warn=None)


def test_tree_source_is_identified_by_its_manifest(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "f").write_text("hello")
    src = bc.describe_source(str(tmp_path / "t"))
    assert src["kind"] == "tree" and src["size"] == 5
    assert src["digest"] == hop.tree_manifest(str(tmp_path / "t"))[0]


def test_status_file_is_written_and_summarised(tmp_path):
    path = tmp_path / "s.json"
    status = bc.Status(str(path), {"path": "/d/env", "kind": "tree", "size": 100 * 10**6}, ["n2", "n3"], run_id="r1")
    status.node("n2", state="receiving", bytes=50 * 10**6)
    status.phase("sending")
    data = _progress.read(str(path), "r1")
    assert data["phase"] == "sending" and data["nodes"]["n2"]["done"] == 50 * 10**6 and data["finished"] is False
    assert data["done"] == 25 * 10**6 and data["total"] == 100 * 10**6 and data["what"] == "env"
    assert _progress.summary(data, now=data["started"] + 3).startswith("env sending, 25.0 / 100.0 MB, ")
    assert _progress.read(str(path), "another run") is None
    status.phase("done", finished=True, msg="/d/env: 2 received", result={"received": ["n2", "n3"]})
    data = _progress.read(str(path))
    assert data["finished"] and not data["failed"] and data["result"] == {"received": ["n2", "n3"]}


def test_status_default_file_follows_the_path():
    assert bc.default_status_file("/a") == bc.default_status_file("/a") != bc.default_status_file("/b")


FAKE_SSH = """#!/bin/sh
# Stands in for ssh: drops the options and the host name, runs the remote command here.
while [ $# -gt 0 ]; do case "$1" in -o|-c) shift 2;; -*) shift;; *) break;; esac; done
shift
exec sh -c "$*"
"""


def chain_ctx(tmp_path, script=FAKE_SSH):
    from pathlib import Path

    fake = tmp_path / "bin" / "ssh"
    fake.parent.mkdir()
    fake.write_text(script)
    fake.chmod(0o755)
    code = hop.shipped_code(Path(hop.__file__).read_text())
    params = dict(PARAMS, ssh_args=[], buffer_size=65536, timeout=10, remote_python="python3", compress_level=3)
    return params, {"ssh": str(fake), "tar": "tar", "zstd": None, "code": code, "opts": bc.ssh_options(params)}


def test_one_hop_chain_streams_a_file_and_hears_the_node_report(tmp_path):
    # The hop runs here, so its destination is the source itself: it replaces it with the same verified bytes.
    params, ctx = chain_ctx(tmp_path)
    data = tmp_path / "data"
    data.write_bytes(os.urandom(300_000))
    before = data.read_bytes()
    source = bc.describe_source(str(data))
    status = bc.Status(str(tmp_path / "status.json"), source, ["here"])
    events = bc.Chain(["here"], source, params, ctx, status, False).run()
    assert events["here"]["e"] == "done" and events["here"]["b"] == 300_000, events
    assert data.read_bytes() == before and hop.holds(str(data), "file", source["digest"])[0]
    assert json.loads((tmp_path / "status.json").read_text())["nodes"]["here"]["state"] == "received"


def test_one_hop_chain_streams_a_tree_as_tar(tmp_path):
    params, ctx = chain_ctx(tmp_path)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_bytes(os.urandom(5000))
    (tree / "link").symlink_to("sub/f")
    source = bc.describe_source(str(tree))
    events = bc.Chain(["here"], source, params, ctx, bc.Status(None, source, ["here"]), False).run()
    assert events["here"]["e"] == "done", events
    assert hop.tree_manifest(str(tree))[0] == source["digest"]


def test_a_first_hop_that_cannot_connect_is_named_lost(tmp_path):
    params, ctx = chain_ctx(
        tmp_path, "#!/bin/sh\necho 'ssh: connect to host here port 22: No route to host' >&2\nexit 255\n"
    )
    data = tmp_path / "data"
    data.write_bytes(b"x" * 1000)
    source = bc.describe_source(str(data))
    events = bc.Chain(["here"], source, params, ctx, bc.Status(None, source, ["here"]), False).run()
    assert events["here"]["e"] == "lost"
    assert (
        "connection lost during the transfer (ssh exit 255: ssh: connect to host here port 22: No route"
        in events["here"]["error"]
    )


@pytest.mark.skipif(not hop._which("zstd"), reason="zstd not installed")
def test_one_hop_chain_compresses_on_the_wire(tmp_path):
    params, ctx = chain_ctx(tmp_path)
    ctx["zstd"] = hop._which("zstd")
    data = tmp_path / "data"
    data.write_bytes(b"text compresses well\n" * 50_000)
    before = data.read_bytes()
    source = bc.describe_source(str(data))
    events = bc.Chain(["here"], source, params, ctx, bc.Status(None, source, ["here"]), True).run()
    assert events["here"]["e"] == "done", events
    assert events["here"]["b"] < len(before) // 10 and data.read_bytes() == before


EXCLUDE = ["__pycache__/", "/results/", "weights/model.pt"]


def test_exclude_is_checked_and_only_for_trees(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(
        bc.BroadcastError,
        match=r"exclude applies to a directory tree, but .*/f is a file on the "
        r"source node. Fix: drop exclude, or broadcast the directory.",
    ):
        bc.describe_source(str(tmp_path / "f"), exclude=["*.pyc"])
    with pytest.raises(bc.BroadcastError, match=r"exclude pattern 'a/\*\*': '\*\*' is not supported"):
        bc.describe_source(str(tmp_path), exclude=["a/**"])


def test_a_tree_sends_and_keeps_no_excluded_entry_and_a_no_op_rerun_sends_nothing(tmp_path):
    params, ctx = chain_ctx(tmp_path)
    tree = tmp_path / "tree"
    (tree / "pkg" / "__pycache__").mkdir(parents=True)
    (tree / "pkg" / "mod.py").write_text("x = 1\n")
    (tree / "pkg" / "__pycache__" / "mod.pyc").write_bytes(os.urandom(1000))
    (tree / "weights").mkdir()
    (tree / "weights" / "model.pt").write_bytes(os.urandom(1_000_000))
    (tree / "results").mkdir()
    source = bc.describe_source(str(tree), exclude=EXCLUDE)
    assert source["size"] == 6 and source["exclude"] == EXCLUDE
    weight = os.lstat(tree / "weights" / "model.pt")
    # The hop runs here, so its destination is the source itself: the excluded entries must stay as they are.
    events = bc.Chain(
        ["here"], source, dict(params, exclude=EXCLUDE), ctx, bc.Status(None, source, ["here"]), False
    ).run()
    assert events["here"]["e"] == "done", events
    assert events["here"]["b"] < 100_000, "the excluded weight travelled"
    assert os.lstat(tree / "weights" / "model.pt").st_ino == weight.st_ino
    assert (tree / "pkg" / "__pycache__" / "mod.pyc").exists() and (tree / "results").is_dir()
    # Run outputs appearing in excluded places change nothing: the source is still identified by its record.
    (tree / "results" / "out.txt").write_text("x")
    (tree / "pkg" / "__pycache__" / "other.pyc").write_text("x")
    again = bc.stat_source(str(tree), EXCLUDE)
    assert again["cached"] is True and again["digest"] == source["digest"]
    result = bc.broadcast(
        dict(
            params,
            path=str(tree),
            hosts=["here"],
            order="given",
            exclude=EXCLUDE,
            checksum=False,
            repair_rounds=0,
            status_file=None,
            compress=False,
        ),
        False,
        ctx,
        lambda msg: None,
    )
    assert result["changed"] is False and result["held"] == ["here"] and result["received"] == []
