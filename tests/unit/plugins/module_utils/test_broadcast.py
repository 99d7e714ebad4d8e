# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The source side of the broadcast and the status reader, without a bed."""
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.gtsfm.cluster.plugins.module_utils import _broadcast as bc
from ansible_collections.gtsfm.cluster.plugins.module_utils import _broadcast_hop as hop
from ansible_collections.gtsfm.cluster.plugins.module_utils._broadcast_status import read_status, summary

PARAMS = {"connect_timeout": 10, "keepalive": 5, "cipher": "aes128-gcm@openssh.com", "ssh_args": ["-o", "Port=2222"]}


def test_ssh_options_are_batch_strict_with_keepalives_and_the_cipher():
    opts = bc.ssh_options(PARAMS)
    joined = " ".join(opts)
    for part in ("BatchMode=yes", "StrictHostKeyChecking=yes", "ConnectTimeout=10", "ServerAliveInterval=5",
                 "ServerAliveCountMax=3", "-c aes128-gcm@openssh.com"):
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


def test_tree_source_is_identified_by_its_manifest(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "f").write_text("hello")
    src = bc.describe_source(str(tmp_path / "t"))
    assert src["kind"] == "tree" and src["size"] == 5
    assert src["digest"] == hop.tree_manifest(str(tmp_path / "t"))[0]


def test_status_file_is_written_and_summarised(tmp_path):
    path = tmp_path / "s.json"
    status = bc.Status(str(path), {"path": "/d", "kind": "file", "size": 100}, ["n2", "n3"])
    status.node("n2", state="receiving", bytes=50)
    status.phase("sending")
    data = json.loads(path.read_text())
    assert data["phase"] == "sending" and data["nodes"]["n2"]["bytes"] == 50 and data["finished"] is False
    assert summary(data) == "sending 25%: n2 receiving 0.0 MB, n3 pending 0.0 MB"
    out = read_status(None, str(path), None, str(tmp_path))
    assert out["finished"] is False and out["nodes"]["n2"]["state"] == "receiving"


def test_status_default_file_follows_the_path():
    assert bc.default_status_file("/a") == bc.default_status_file("/a") != bc.default_status_file("/b")


def test_status_with_a_job_id_is_finished_only_when_the_job_is(tmp_path):
    status = tmp_path / "s.json"
    status.write_text(json.dumps({"phase": "done", "finished": True, "nodes": {}, "size": 1}))
    out = read_status(None, str(status), "123.456", str(tmp_path))
    assert out["finished"] is False  # the job's file is not there yet: a stale status must not end the wait
    (tmp_path / "123.456").write_text(json.dumps({"started": True, "finished": False}))
    assert read_status(None, str(status), "123.456", str(tmp_path))["finished"] is False
    (tmp_path / "123.456").write_text(json.dumps({"changed": True, "msg": "/d: 2 received", "received": ["a"]}))
    out = read_status(None, str(status), "123.456", str(tmp_path))
    assert out["finished"] is True and out["result"]["received"] == ["a"] and out["msg"] == "/d: 2 received"


def test_status_rejects_a_job_id_that_is_a_path(tmp_path):
    with pytest.raises(ValueError, match="is not an async job id"):
        read_status(None, str(tmp_path / "s"), "../../etc/passwd", str(tmp_path))


def test_status_before_the_run_is_waiting(tmp_path):
    out = read_status(None, str(tmp_path / "none.json"), None, str(tmp_path))
    assert out["finished"] is False and out["phase"] == "waiting"


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
    params, ctx = chain_ctx(tmp_path, "#!/bin/sh\necho 'ssh: connect to host here port 22: No route to host' >&2\n"
                                      "exit 255\n")
    data = tmp_path / "data"
    data.write_bytes(b"x" * 1000)
    source = bc.describe_source(str(data))
    events = bc.Chain(["here"], source, params, ctx, bc.Status(None, source, ["here"]), False).run()
    assert events["here"]["e"] == "lost"
    assert "connection lost during the transfer (ssh exit 255: ssh: connect to host here port 22: No route" in \
        events["here"]["error"]


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
    with pytest.raises(bc.BroadcastError, match=r"exclude applies to a directory tree, but .*/f is a file on the "
                                                r"source node. Fix: drop exclude, or broadcast the directory."):
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
    events = bc.Chain(["here"], source, dict(params, exclude=EXCLUDE), ctx, bc.Status(None, source, ["here"]),
                      False).run()
    assert events["here"]["e"] == "done", events
    assert events["here"]["b"] < 100_000, "the excluded weight travelled"
    assert os.lstat(tree / "weights" / "model.pt").st_ino == weight.st_ino
    assert (tree / "pkg" / "__pycache__" / "mod.pyc").exists() and (tree / "results").is_dir()
    # Run outputs appearing in excluded places change nothing: the source is still identified by its record.
    (tree / "results" / "out.txt").write_text("x")
    (tree / "pkg" / "__pycache__" / "other.pyc").write_text("x")
    again = bc.stat_source(str(tree), EXCLUDE)
    assert again["cached"] is True and again["digest"] == source["digest"]
    result = bc.broadcast(dict(params, path=str(tree), hosts=["here"], order="given", exclude=EXCLUDE, checksum=False,
                               repair_rounds=0, status_file=None, compress=False), False, ctx, lambda msg: None)
    assert result["changed"] is False and result["held"] == ["here"] and result["received"] == []


def test_status_wait_answers_as_soon_as_the_job_is_over_and_not_later_than_wait(tmp_path):
    import threading
    import time
    from ansible_collections.gtsfm.cluster.plugins.module_utils._broadcast_status import wait_status
    status = tmp_path / "s.json"
    status.write_text(json.dumps({"phase": "sending", "finished": False, "nodes": {}, "size": 1}))
    started = time.monotonic()
    assert wait_status(None, str(status), "1.2", str(tmp_path), 0)["finished"] is False
    assert wait_status(None, str(status), "1.2", str(tmp_path), 0.5)["finished"] is False
    assert 0.3 < time.monotonic() - started < 2
    ends = threading.Timer(0.5, lambda: (tmp_path / "1.2").write_text(json.dumps({"changed": False, "msg": "done"})))
    ends.start()
    started = time.monotonic()
    out = wait_status(None, str(status), "1.2", str(tmp_path), 30)
    assert out["finished"] is True and out["msg"] == "done" and time.monotonic() - started < 2
