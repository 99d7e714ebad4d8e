# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hop program without a bed: identity of files and trees, records, and one hop fed through a pipe."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from ansible_collections.gtsfm.cluster.plugins.module_utils import _broadcast_hop as hop


def make_tree(root: Path) -> Path:
    (root / "sub" / "empty").mkdir(parents=True)
    (root / "a").write_bytes(os.urandom(70000))
    os.link(root / "a", root / "sub" / "hard")
    (root / "sub" / "rel").symlink_to("../a")
    (root / "run.sh").write_text("#!/bin/sh\necho ok\n")
    (root / "run.sh").chmod(0o755)
    (root / "ro").mkdir()
    (root / "ro" / "f").write_text("x")
    (root / "ro").chmod(0o555)
    return root


def tar_of(root: Path) -> bytes:
    return subprocess.run(["tar", "-C", str(root), "-cf", "-", "."], check=True, capture_output=True).stdout


class Events:
    """An Upstream over a pipe, read by a thread: the status lines a hop sends back."""

    def __init__(self):
        read, write = os.pipe()
        self.upstream = hop.Upstream(write)
        self.write_fd = write
        self.lines: list[dict] = []
        self.thread = threading.Thread(target=self._read, args=(read,))
        self.thread.start()

    def _read(self, fd):
        with os.fdopen(fd, "rb") as stream:
            for raw in stream:
                self.lines.append(json.loads(raw))

    def close(self):
        os.close(self.write_fd)
        self.thread.join()
        return self.lines


def run_hop(cfg: dict, stream: bytes, close: bool = True) -> tuple[int, list[dict]]:
    read, write = os.pipe()
    events = Events()

    def feed():
        with os.fdopen(write, "wb") as pipe:
            pipe.write(stream)
            if not close:
                threading.Event().wait(cfg["timeout"] + 2)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    rc = hop.receive(cfg, "unused", stdin_fd=read, upstream=events.upstream)
    os.close(read)
    return rc, events.close()


def stream_of(payload: bytes, digest: str | None = None, chunk: int = 8192) -> bytes:
    chunks = [payload[i:i + chunk] for i in range(0, len(payload), chunk)]
    info = {"digest": digest or "sha256:" + hashlib.sha256(payload).hexdigest(), "bytes": len(payload)}
    return b"".join(hop.frames(chunks)) + hop.trailer(info)


def file_cfg(dest: Path, payload: bytes, **more) -> dict:
    cfg = {"chain": ["me"], "path": str(dest), "kind": "file", "token": "t1", "timeout": 5, "bufsize": 4096,
           "digest": "sha256:" + hashlib.sha256(payload).hexdigest(), "size": len(payload), "mode": 0o640,
           "mtime_ns": 1_700_000_000_000_000_000, "compress": False}
    cfg.update(more)
    return cfg


def test_same_tree_same_digest_and_every_difference_shows(tmp_path):
    one, two = make_tree(tmp_path / "one"), tmp_path / "two"
    subprocess.run(f"cp -a {one} {two}", shell=True, check=True)
    digest, size, count = hop.tree_manifest(str(one))
    assert hop.tree_manifest(str(two))[0] == digest and size == 70000 + 18 + 1 and count == 9
    (two / "run.sh").chmod(0o644)
    assert hop.tree_manifest(str(two))[0] != digest
    (two / "run.sh").chmod(0o755)
    (two / "sub" / "hard").unlink()
    (two / "sub" / "hard").write_bytes((one / "a").read_bytes())  # same bytes, no longer a hard link
    assert hop.tree_manifest(str(two))[0] != digest


def test_tree_with_a_fifo_is_refused_by_name(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(hop.HopError, match="pipe is neither a file, a directory nor a symlink"):
        hop.tree_manifest(str(tmp_path))


def test_record_decides_holds_and_a_touched_destination_does_not(tmp_path):
    dest = tmp_path / "f"
    dest.write_bytes(b"data")
    digest = hop.file_digest(str(dest))
    assert hop.holds(str(dest), "file", digest) == (False, "no record of a copy here")
    hop.write_record(str(dest), {"kind": "file", "digest": digest, "signature": hop.signature(str(dest), "file")})
    assert (tmp_path / ".f.gtsfm-broadcast.json").exists()
    assert hop.holds(str(dest), "file", digest)[0]
    assert hop.holds(str(dest), "file", "sha256:other") == (False, "holds other content")
    dest.write_bytes(b"DATA")
    assert hop.holds(str(dest), "file", digest) == (False, "destination changed since the record was written")
    assert hop.holds(str(dest), "file", digest, checksum=True)[0] is False


def test_probe_reports_what_the_node_holds_and_decide_names_missing_space_with_a_fix(tmp_path):
    out = hop.probe({"path": str(tmp_path / "x" / "big"), "kind": "file"})
    assert out["held"] is None and out["dest"] is None and out["free"] > 0
    verdict, why = hop.decide(out, "/x/big", "file", "sha256:0", 1 << 62)
    assert verdict == "error" and "not enough space for /x/big" in why and "Free some space" in why
    assert hop.decide(out, "/x/big", "file", "sha256:0", 1) == ("need", "no record of a copy here")
    assert hop.decide(dict(out, held="sha256:0"), "/x/big", "file", "sha256:0", 1 << 62)[0] == "have"
    assert "is a directory there" in hop.decide(dict(out, dest="dir"), "/x/big", "file", "sha256:1", 1)[1]
    assert hop.decide({"error": "unreachable"}, "/x", "file", "sha256:0", 1) == ("error", "unreachable")


def test_one_hop_places_a_verified_file_with_the_source_mode(tmp_path):
    payload = os.urandom(100_000)
    dest = tmp_path / "deep" / "dest.bin"
    rc, events = run_hop(file_cfg(dest, payload), stream_of(payload))
    assert rc == 0 and events[-1]["e"] == "done" and events[-1]["b"] == len(payload)
    assert dest.read_bytes() == payload
    assert dest.stat().st_mode & 0o777 == 0o640 and dest.stat().st_mtime_ns == 1_700_000_000_000_000_000
    assert hop.holds(str(dest), "file", file_cfg(dest, payload)["digest"])[0]
    assert hop.leftovers(str(dest)) == []


def test_corrupt_stream_leaves_the_old_file_and_no_temp(tmp_path):
    payload = os.urandom(50_000)
    dest = tmp_path / "dest.bin"
    dest.write_bytes(b"old")
    rc, events = run_hop(file_cfg(dest, payload), stream_of(payload[:-1] + b"X", digest=None))
    assert rc == 1 and events[-1]["e"] == "failed" and "verification failed" in events[-1]["error"]
    assert dest.read_bytes() == b"old" and hop.leftovers(str(dest)) == []


def test_stream_cut_short_fails_fast_and_leaves_nothing(tmp_path):
    payload = os.urandom(50_000)
    dest = tmp_path / "dest.bin"
    rc, events = run_hop(file_cfg(dest, payload), stream_of(payload)[:30_000])
    assert rc == 1 and "closed the stream before its end" in events[-1]["error"]
    assert not dest.exists() and hop.leftovers(str(dest)) == []


def test_silent_upstream_times_out(tmp_path):
    payload = os.urandom(5000)
    dest = tmp_path / "dest.bin"
    rc, events = run_hop(file_cfg(dest, payload, timeout=1), stream_of(payload)[:100], close=False)
    assert rc == 1 and "nothing arrived from the previous hop for 1 s" in events[-1]["error"]
    assert not dest.exists() and hop.leftovers(str(dest)) == []


def test_one_hop_swaps_a_tree_whole_over_an_old_one_with_a_read_only_dir(tmp_path):
    src = make_tree(tmp_path / "src")
    dest = make_tree(tmp_path / "dest")
    (dest / "stale").write_text("gone after the swap")
    digest, size, dummy = hop.tree_manifest(str(src))
    cfg = {"chain": ["me"], "path": str(dest), "kind": "tree", "token": "t2", "timeout": 5, "bufsize": 4096,
           "digest": digest, "size": size, "mode": 0o755, "mtime_ns": 0, "compress": False}
    rc, events = run_hop(cfg, stream_of(tar_of(src)))
    assert rc == 0, events
    assert hop.tree_manifest(str(dest))[0] == digest and not (dest / "stale").exists()
    assert os.stat(dest / "a").st_ino == os.stat(dest / "sub" / "hard").st_ino
    assert hop.leftovers(str(dest)) == []


@pytest.mark.skipif(not hop._which("zstd"), reason="zstd not installed")
def test_one_hop_decompresses_and_verifies_the_uncompressed_bytes(tmp_path):
    payload = b"compressible " * 20000
    packed = subprocess.run(["zstd", "-q", "-c"], input=payload, capture_output=True, check=True).stdout
    chunks = [packed[i:i + 1000] for i in range(0, len(packed), 1000)]
    stream = b"".join(hop.frames(chunks)) + hop.trailer(
        {"digest": "sha256:" + hashlib.sha256(payload).hexdigest(), "bytes": len(payload)})
    dest = tmp_path / "z"
    rc, events = run_hop(file_cfg(dest, payload, compress=True), stream)
    assert rc == 0, events
    assert dest.read_bytes() == payload and events[-1]["b"] == len(packed)


def test_hop_command_is_shell_safe_and_the_program_fits_one_argument():
    text = Path(hop.__file__).read_text()
    code = hop.shipped_code(text)
    command = hop.hop_command({"python": "python3", "path": "/a b/'c"}, code)
    assert len(command) < 100_000
    assert "'" not in command.split(hop.BOOTSTRAP + "' ", 1)[1]  # after the bootstrap, only base64
    assert hop.hop_command({"python": "/opt/my py/python3"}, code).startswith("'/opt/my py/python3' -c ")
    cfg = json.loads(base64.b64decode(command.split()[-1]))
    assert cfg["path"] == "/a b/'c"


def test_shipped_program_runs_a_probe_as_python3_c(tmp_path):
    code = hop.shipped_code(Path(hop.__file__).read_text())
    cfg = {"mode_of_run": "probe", "path": str(tmp_path / "p"), "kind": "file", "python": "python3"}
    out = subprocess.run(["sh", "-c", hop.hop_command(cfg, code)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["held"] is None
