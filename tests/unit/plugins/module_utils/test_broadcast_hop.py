# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hop program without a bed: identity of files and trees, records, and one hop fed through a pipe."""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import re
import stat
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
    chunks = [payload[i : i + chunk] for i in range(0, len(payload), chunk)]
    info = {"digest": digest or "sha256:" + hashlib.sha256(payload).hexdigest(), "bytes": len(payload)}
    return b"".join(hop.frames(chunks)) + hop.trailer(info)


def file_cfg(dest: Path, payload: bytes, **more) -> dict:
    cfg = {
        "chain": ["me"],
        "path": str(dest),
        "kind": "file",
        "token": "t1",
        "timeout": 5,
        "bufsize": 4096,
        "digest": "sha256:" + hashlib.sha256(payload).hexdigest(),
        "size": len(payload),
        "mode": 0o640,
        "mtime_ns": 1_700_000_000_000_000_000,
        "compress": False,
    }
    cfg.update(more)
    return cfg


def tree_cfg(dest: Path, digest: str, size: int, **more) -> dict:
    return file_cfg(dest, b"", kind="tree", digest=digest, size=size, mode=0o755, mtime_ns=0, **more)


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
    cfg = tree_cfg(dest, digest, size, token="t2")
    rc, events = run_hop(cfg, stream_of(tar_of(src)))
    assert rc == 0, events
    assert hop.tree_manifest(str(dest))[0] == digest and not (dest / "stale").exists()
    assert os.stat(dest / "a").st_ino == os.stat(dest / "sub" / "hard").st_ino
    assert hop.leftovers(str(dest)) == []


@pytest.mark.skipif(not hop._which("zstd"), reason="zstd not installed")
def test_one_hop_decompresses_and_verifies_the_uncompressed_bytes(tmp_path):
    payload = b"compressible " * 20000
    packed = subprocess.run(["zstd", "-q", "-c"], input=payload, capture_output=True, check=True).stdout
    chunks = [packed[i : i + 1000] for i in range(0, len(packed), 1000)]
    stream = b"".join(hop.frames(chunks)) + hop.trailer(
        {"digest": "sha256:" + hashlib.sha256(payload).hexdigest(), "bytes": len(payload)}
    )
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


# --- exclude ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, rel, is_dir, left_out",
    [
        ("__pycache__/", "gtsfm/utils/__pycache__", True, True),
        ("__pycache__/", "__pycache__", False, False),  # a trailing slash matches directories only
        ("*.pyc", "gtsfm/a.cpython-311.pyc", False, True),
        ("*.pyc", "gtsfm/a.py", False, False),
        ("/results/", "results", True, True),
        ("/results/", "gtsfm/results", True, False),  # anchored at the tree's top
        ("thirdparty/vggt/weights/model.pt", "thirdparty/vggt/weights/model.pt", False, True),
        ("thirdparty/vggt/weights/model.pt", "x/thirdparty/vggt/weights/model.pt", False, False),
        ("thirdparty/*/weights/.model.pt.gtsfm-*", "thirdparty/vggt/weights/.model.pt.gtsfm-partial", False, True),
        ("thirdparty/*/model.pt", "thirdparty/a/b/model.pt", False, False),  # * stays within one component
        ("[c]ache", "cache", True, True),
    ],
)
def test_exclude_patterns_match_like_gitignore(pattern, rel, is_dir, left_out):
    assert hop.Exclude([pattern]).excluded(rel, is_dir) is left_out


@pytest.mark.parametrize(
    "pattern, message",
    [
        ("", "empty; give a name"),
        ("/", "empty; give a name"),
        ("a/**/b", "'**' is not supported"),
        ("a/../b", "'.', '..' and empty components are not allowed"),
        ("a//b", "'.', '..' and empty components are not allowed"),
        ("a\\*", "backslashes are not supported"),
    ],
)
def test_bad_exclude_patterns_are_refused_with_the_reason(pattern, message):
    with pytest.raises(hop.HopError, match=re.escape(f"exclude pattern {pattern!r}: {message}")):
        hop.Exclude([pattern])


CHECKOUT_EXCLUDE = [
    "__pycache__/",
    "*.pyc",
    "/results/",
    "thirdparty/vggt/weights/model.pt",
    "thirdparty/vggt/weights/.model.pt.gtsfm-*",
]


def make_checkout(root: Path) -> Path:
    (root / "gtsfm").mkdir(parents=True)
    (root / "gtsfm" / "runner.py").write_text("print('run')\n")
    (root / "thirdparty" / "vggt").mkdir(parents=True)
    (root / "thirdparty" / "vggt" / "setup.py").write_text("")
    (root / "empty").mkdir()
    return root


def add_run_outputs(root: Path, tag: str) -> None:
    """What a run and the model_weights role leave in a checkout: all of it excluded by CHECKOUT_EXCLUDE."""
    (root / "gtsfm" / "__pycache__").mkdir(exist_ok=True)
    (root / "gtsfm" / "__pycache__" / "runner.cpython-311.pyc").write_text(tag)
    (root / "results" / "ba_output").mkdir(parents=True, exist_ok=True)
    (root / "results" / "ba_output" / "cameras.txt").write_text(tag)
    (root / "thirdparty" / "vggt" / "weights").mkdir(exist_ok=True)
    (root / "thirdparty" / "vggt" / "weights" / "model.pt").write_text(tag)
    (root / "thirdparty" / "vggt" / "weights" / ".model.pt.gtsfm-broadcast.json").write_text("{}")
    (root / "stray.pyc").write_text(tag)


def test_excluded_entries_and_folders_holding_only_them_leave_the_identity_alone(tmp_path):
    root = make_checkout(tmp_path / "co")
    plain = hop.tree_manifest(str(root))
    # Patterns that match nothing change nothing: the same walk, the same digests as without exclude.
    assert hop.tree_manifest(str(root), exclude=CHECKOUT_EXCLUDE) == plain
    assert hop.signature(str(root), "tree", CHECKOUT_EXCLUDE) == hop.signature(str(root), "tree")
    cheap = hop.signature(str(root), "tree", CHECKOUT_EXCLUDE)
    add_run_outputs(root, "one")
    assert hop.tree_manifest(str(root), exclude=CHECKOUT_EXCLUDE) == plain
    assert hop.signature(str(root), "tree", CHECKOUT_EXCLUDE) == cheap
    assert hop.tree_manifest(str(root))[0] != plain[0]
    # A kept file in the weights folder keeps the folder (and changes the identity).
    (root / "thirdparty" / "vggt" / "weights" / "README").write_text("tracked")
    assert hop.tree_manifest(str(root), exclude=CHECKOUT_EXCLUDE)[0] != plain[0]
    # An empty folder is content, not a leftover of exclusion.
    (root / "thirdparty" / "vggt" / "weights" / "README").unlink()
    (root / "new-empty").mkdir()
    assert hop.tree_manifest(str(root), exclude=CHECKOUT_EXCLUDE)[0] != plain[0]


def test_one_hop_with_exclude_keeps_what_the_node_has_there_untouched(tmp_path):
    src = make_checkout(tmp_path / "src")
    add_run_outputs(src, "scheduler's")
    (src / "gtsfm" / "runner.py").write_text("print('new')\n")
    dest = make_checkout(tmp_path / "dest")
    add_run_outputs(dest, "node's own")
    (dest / "results" / "ro").mkdir()
    (dest / "results" / "ro").chmod(0o555)
    (dest / "stale.py").write_text("gone after the swap")
    kept = [
        "gtsfm/__pycache__/runner.cpython-311.pyc",
        "results/ba_output/cameras.txt",
        "thirdparty/vggt/weights/model.pt",
        "thirdparty/vggt/weights/.model.pt.gtsfm-broadcast.json",
        "stray.pyc",
        "results/ro",
    ]
    before = {rel: os.lstat(dest / rel) for rel in kept}
    digest, size, dummy = hop.tree_manifest(str(src), exclude=CHECKOUT_EXCLUDE)
    names = b"".join(
        b"./" + rel.encode() + b"\0" if rel != "." else b".\0" for rel, dummy in hop._walk(str(src), CHECKOUT_EXCLUDE)
    )
    payload = subprocess.run(
        ["tar", "-C", str(src), "-cf", "-", "--no-recursion", "--null", "-T", "-"],
        input=names,
        check=True,
        capture_output=True,
    ).stdout
    cfg = tree_cfg(dest, digest, size, token="t3", exclude=CHECKOUT_EXCLUDE)
    rc, events = run_hop(cfg, stream_of(payload))
    assert rc == 0, events
    assert (dest / "gtsfm" / "runner.py").read_text() == "print('new')\n" and not (dest / "stale.py").exists()
    for rel, st in before.items():
        now = os.lstat(dest / rel)
        # Files are the same inodes (so records beside them still agree); folders are made anew, alike.
        same = (now.st_mode, now.st_mtime_ns) + (() if stat.S_ISDIR(st.st_mode) else (now.st_ino,))
        assert same == (st.st_mode, st.st_mtime_ns) + (() if stat.S_ISDIR(st.st_mode) else (st.st_ino,)), rel
    assert (dest / "thirdparty" / "vggt" / "weights" / "model.pt").read_text() == "node's own"
    assert hop.holds(str(dest), "tree", digest, exclude=CHECKOUT_EXCLUDE)[0]
    assert hop.leftovers(str(dest)) == []
    # The node's own excluded files change; the record still agrees: nothing to send next time.
    (dest / "results" / "more.txt").write_text("x")
    (dest / "gtsfm" / "__pycache__" / "other.pyc").write_text("x")
    assert hop.holds(str(dest), "tree", digest, exclude=CHECKOUT_EXCLUDE) == (True, "record and destination agree")
    (dest / "results" / "ro").chmod(0o755)


def test_probe_reads_the_destination_with_the_exclude_it_is_given(tmp_path):
    dest = make_checkout(tmp_path / "dest")
    digest = hop.tree_manifest(str(dest), exclude=CHECKOUT_EXCLUDE)[0]
    hop.write_record(
        str(dest), {"kind": "tree", "digest": digest, "signature": hop.signature(str(dest), "tree", CHECKOUT_EXCLUDE)}
    )
    add_run_outputs(dest, "x")
    cfg = {"path": str(dest), "kind": "tree"}
    assert hop.probe(dict(cfg, exclude=CHECKOUT_EXCLUDE))["held"] == digest
    assert hop.probe(cfg)["why"] == "destination changed since the record was written"


def test_a_disk_that_fills_while_a_file_arrives_is_named_as_such_and_leaves_nothing(tmp_path, monkeypatch):
    payload = os.urandom(50_000)
    dest = tmp_path / "dest.bin"

    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(hop.FileSink, "write", full)
    rc, events = run_hop(file_cfg(dest, payload), stream_of(payload))
    error = events[-1]["error"]
    assert rc == 1 and events[-1]["e"] == "failed"
    assert error.startswith(f"no space left on the file system of {tmp_path} there"), error
    assert "50000 bytes" in error and "Free at least that much there, then run again" in error
    assert "No space left on device" in error  # what the node's own write said, kept after the sentence
    assert not dest.exists() and hop.leftovers(str(dest)) == []


def test_a_failed_program_is_told_by_its_first_and_last_lines_and_the_count_between():
    script = (
        "cat >/dev/null; echo 'tar: ./a: Wrote only 2048 of 10240 bytes' >&2; for f in a b c; do "
        'echo "tar: ./$f: Cannot write: No space left on device" >&2; '
        "done; echo 'tar: Exiting with failure status due to previous errors' >&2; exit 2"
    )
    sink = hop.ProcessSink(["sh", "-c", script], "tar -x")
    sink.write(b"x" * 1000)
    with pytest.raises(hop.HopError) as err:
        sink.finish()
    # The line that says why leads, though tar's first one only says it wrote less.
    assert str(err.value) == (
        "tar -x failed: tar: ./a: Cannot write: No space left on device (and 4 more lines, "
        "the last: tar: Exiting with failure status due to previous errors)"
    )
    assert hop.disk_full(str(err.value), "/home/u/env", 10).startswith("no space left on the file system of /home/u")
    assert hop.disk_full("tar -x failed: exit code 2", "/home/u/env", 10) == "tar -x failed: exit code 2"
    assert hop.summary("one\n\n two \n") == "one; two"
    assert hop.summary("a\nb\nc\n") == "a (and 2 more lines, the last: c)"
