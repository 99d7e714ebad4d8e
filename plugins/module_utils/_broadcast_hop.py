# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One hop of gtsfm.cluster.broadcast's chain. Private to this collection: no stable interface.

This file is also a program. The broadcast module (on the source node) ships its source text to every target over
ssh, as an argument of ``python3 -c`` (see ``bootstrap_command``), so a node needs nothing but OpenSSH, python3 and
tar. Standard library only; Python 3.6+.

``probe`` (one ssh per target, in parallel): does the node already hold the content (record beside the
destination, checked against the destination's current state), is there room, is zstd there.

``receive`` (one ssh per hop, chained): reads the framed stream from stdin, passes every byte on at once to the next
hop's ssh stdin, writes what it gets to a temporary path beside the destination while hashing it, compares the hash
with the source's, then renames the verified copy into place (a tree is swapped whole) and writes the record.
Status lines (JSON, one per line) go to stdout, which is the previous hop's ssh: the source hears from every node.
A broken downstream never stops this node's own copy; a silent upstream ends the hop after ``timeout`` seconds.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import errno
import fcntl
import fnmatch
import glob
import hashlib
import json
import os
import select
import shutil
import stat
import struct
import subprocess
import sys
import threading
import time
import zlib

# ansible-core 2.21's sanity asks for AnsibleModule.run_command; a hop streams through its children's pipes while
# they run and has no AnsibleModule, which run_command needs.
# pylint: disable=ansible-bad-function

RECORD_SUFFIX = ".gtsfm-broadcast.json"
TMP_MARK = ".gtsfm-broadcast-tmp."
OLD_MARK = ".gtsfm-broadcast-old."
LOCK_SUFFIX = ".gtsfm-broadcast.lock"
HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 26
HASH_CHUNK = 1 << 20
PROGRESS_EVERY = 1.0
BOOTSTRAP = "import base64,sys,zlib;exec(zlib.decompress(base64.b64decode(sys.argv[1])))"


class HopError(Exception):
    """A failure this hop reports upstream as one sentence."""


class UpstreamTimeout(HopError):
    """Nothing arrived from the previous hop for `timeout` seconds."""


# --- paths beside the destination ---------------------------------------------------------------------------------


def side_path(path, suffix, prefix=""):
    """A file beside path: '<dir>/.<prefix><name><suffix>'."""
    head, name = os.path.split(path.rstrip("/") or "/")
    return os.path.join(head, "." + prefix + name + suffix)


def record_path(path):
    """Where the record of what was placed at path lives: '<dir>/.<name>.gtsfm-broadcast.json'."""
    return side_path(path, RECORD_SUFFIX)


def lock_path(path):
    return side_path(path, LOCK_SUFFIX)


def temp_path(path, token):
    return side_path(path, TMP_MARK + token)


def leftovers(path):
    """Temporary or old copies an interrupted run left beside path."""
    head, name = os.path.split(path.rstrip("/"))
    found = []
    for mark in (TMP_MARK, OLD_MARK):
        found.extend(glob.glob(os.path.join(glob.escape(head), "." + glob.escape(name) + mark + "*")))
    return sorted(found)


# --- content identity ---------------------------------------------------------------------------------------------


def hash_file(path, algorithm="sha256", chunk=HASH_CHUNK, progress=None):
    """The hex digest (algorithm: a hashlib name) of a file, read in chunks; progress(bytes hashed) is called after
    each chunk.

    The collection's one file hasher: this file must stand alone on a node, so fetch, python_env, the stage's read
    and the controller's plans import it from here."""
    digest = hashlib.new(algorithm)
    done = 0
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                break
            digest.update(block)
            done += len(block)
            if progress is not None:
                progress(done)
    return digest.hexdigest()


def file_digest(path):
    """sha256 of a file's bytes, as 'sha256:<hex>'."""
    return "sha256:" + hash_file(path)


# --- exclusion -----------------------------------------------------------------------------------------------------


class Exclude:
    """Which entries of a tree the broadcast leaves alone (gitignore-like patterns, relative to the tree's top).

    A pattern without a slash (``__pycache__``, ``*.pyc``) matches an entry of that name at any depth; a pattern with
    a slash at its start or in its middle (``/results``, ``thirdparty/vggt/weights/model.pt``) matches the path from
    the top; a trailing slash matches directories only. ``*``, ``?`` and ``[...]`` match within one path component.
    An excluded directory is left out with everything in it; so is a directory holding excluded entries and nothing
    else (the folder a weight file was put in). The same rule runs on the source and on every target.
    """

    def __init__(self, patterns=None):
        self.patterns = list(patterns or [])
        self.rules = []
        for pattern in self.patterns:
            problem = exclude_problem(pattern)
            if problem:
                raise HopError(f"exclude pattern {pattern!r}: {problem}")
            dir_only = pattern.endswith("/")
            body = pattern.rstrip("/")
            if "/" in body:
                self.rules.append((tuple(body.lstrip("/").split("/")), dir_only))
            else:
                self.rules.append((body, dir_only))

    def __bool__(self):
        return bool(self.rules)

    __nonzero__ = __bool__

    def excluded(self, rel, is_dir):
        """Whether the entry at rel (relative to the top, '/'-separated) is left out by a pattern."""
        parts = None
        for rule, dir_only in self.rules:
            if dir_only and not is_dir:
                continue
            if isinstance(rule, tuple):
                parts = parts or rel.split("/")
                if len(parts) == len(rule) and all(fnmatch.fnmatchcase(p, r) for p, r in zip(parts, rule)):
                    return True
            elif fnmatch.fnmatchcase(rel.rsplit("/", 1)[-1], rule):
                return True
        return False


def exclude_problem(pattern):
    """Why pattern cannot be an exclude pattern (a sentence), or None when it can."""
    if not isinstance(pattern, str) or not pattern.strip("/"):
        return "empty; give a name (__pycache__) or a path from the tree's top (/results)"
    if "**" in pattern:
        return "'**' is not supported; a pattern without a slash matches at any depth"
    if "\\" in pattern:
        return "backslashes are not supported"
    if any(part in (".", "..") for part in pattern.strip("/").split("/")) or "//" in pattern.strip("/"):
        return "'.', '..' and empty components are not allowed; give the path as it is below the tree's top"
    return None


def _exclude(patterns):
    """An Exclude for patterns (None or a list; an Exclude is passed through)."""
    return patterns if isinstance(patterns, Exclude) else Exclude(patterns)


def _kept(root, rel, exclude):
    """(entries kept below directory rel in walk order, whether anything below it was left out)."""
    base = os.path.join(root, rel) if rel else root
    lines, subtrees, left_out = [], [], False
    for name in sorted(os.listdir(base)):
        child = os.path.join(rel, name) if rel else name
        st = os.lstat(os.path.join(root, child))
        is_dir = stat.S_ISDIR(st.st_mode)
        if exclude.excluded(child, is_dir):
            left_out = True
            continue
        if is_dir:
            below, below_left_out = _kept(root, child, exclude)
            if below_left_out and not below:
                left_out = True
                continue
            subtrees.append(below)
        lines.append((child, st))
    for below in subtrees:
        lines.extend(below)
    return lines, left_out


def _walk(root, exclude=None):
    """(relative path, lstat) of every entry under root, root first, names sorted: the same order on every node.

    With exclude, the entries it leaves out are skipped (the order of the rest is the same)."""
    exclude = _exclude(exclude)
    yield ".", os.lstat(root)
    if exclude:
        yield from _kept(root, "", exclude)[0]
        return
    stack = [""]
    while stack:
        rel = stack.pop()
        base = os.path.join(root, rel) if rel else root
        names = sorted(os.listdir(base))
        subdirs = []
        for name in names:
            child = os.path.join(rel, name) if rel else name
            st = os.lstat(os.path.join(root, child))
            yield child, st
            if stat.S_ISDIR(st.st_mode):
                subdirs.append(child)
        stack.extend(reversed(subdirs))


def tree_manifest(root, content=True, exclude=None):
    """Identity of a directory tree: (digest, total file bytes, entries), leaving out what exclude leaves out.

    With content=True the digest covers every entry's relative path, type and mode bits, each regular file's size
    and sha256, each symlink's target, and which files are hard links of one another (by the first path of the
    group): what a tar stream carries, without owners and times. With content=False it covers paths, types, modes,
    sizes, mtimes and inode numbers instead of file contents: a cheap signature of the tree as it sits on disk.
    Raises HopError naming an entry tar would not carry faithfully (a socket, device or fifo).
    """
    digest = hashlib.sha256()
    links = {}
    total = 0
    count = 0
    for rel, st in _walk(root, exclude):
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            line = ["d", rel, f"{mode:o}"]
        elif stat.S_ISLNK(st.st_mode):
            line = ["l", rel, os.readlink(os.path.join(root, rel))]
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                line = ["h", rel, links[key]]
            else:
                if st.st_nlink > 1:
                    links[key] = rel
                total += st.st_size
                if content:
                    line = ["f", rel, f"{mode:o}", str(st.st_size), file_digest(os.path.join(root, rel))]
                else:
                    line = ["f", rel, f"{mode:o}", str(st.st_size), str(st.st_mtime_ns), str(st.st_ino)]
        else:
            raise HopError(f"{root}: {rel} is neither a file, a directory nor a symlink; broadcast carries only those")
        if not content and line[0] in ("d", "l"):
            line.append(str(st.st_ino))
        digest.update(("\0".join(line) + "\n").encode("utf-8", "surrogateescape"))
        count += 1
    return "sha256:" + digest.hexdigest(), total, count


def signature(path, kind, exclude=None):
    """Cheap identity of what sits at path now (no content read), or None when nothing of that kind is there."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if kind == "file":
        if not stat.S_ISREG(st.st_mode):
            return None
        return f"file:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{stat.S_IMODE(st.st_mode):o}"
    if not stat.S_ISDIR(st.st_mode):
        return None
    return "tree:" + tree_manifest(path, content=False, exclude=exclude)[0]


def content_digest(path, kind, exclude=None):
    """Full identity of the content at path (reads every byte)."""
    if kind == "file":
        return file_digest(path)
    return tree_manifest(path, exclude=exclude)[0]


def read_record(path):
    """The record beside path, or None if missing or unreadable."""
    try:
        with open(record_path(path)) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_record(path, record):
    """Write the record beside path atomically."""
    target = record_path(path)
    tmp = target + f".{os.getpid()}.tmp"
    with open(tmp, "w") as handle:
        json.dump(record, handle, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, target)


def held_digest(path, kind, checksum=False, exclude=None):
    """(digest, why): the content path holds by its record, if the destination still is what was placed; else None.

    With checksum=True the destination is re-hashed instead (reads every byte).
    """
    if checksum:
        if signature(path, kind) is None:
            return None, "nothing of this kind at the destination"
        try:
            return content_digest(path, kind, exclude), "content hashed"
        except (OSError, HopError) as exc:
            return None, f"cannot read the destination: {exc}"
    record = read_record(path)
    if not record or record.get("kind") != kind or not record.get("digest"):
        return None, "no record of a copy here"
    current = signature(path, kind, exclude)
    if current is None or current != record.get("signature"):
        return None, "destination changed since the record was written"
    return record["digest"], "record and destination agree"


def holds(path, kind, digest, checksum=False, exclude=None):
    """(True, why) if path already holds content of identity digest."""
    held, why = held_digest(path, kind, checksum, exclude)
    if held is None:
        return False, why
    if held != digest:
        return False, "holds other content"
    return True, why


# --- probe ----------------------------------------------------------------------------------------------------------


def _free_bytes(path):
    probe = os.path.dirname(path.rstrip("/")) or "/"
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    st = os.statvfs(probe)
    return st.f_bavail * st.f_frsize, probe


def probe(cfg):
    """What this node holds at path and whether it can take a copy; the source decides (see decide())."""
    path, kind = cfg["path"], cfg["kind"]
    held, why = held_digest(path, kind, cfg.get("checksum", False), cfg.get("exclude"))
    free, where = _free_bytes(path)
    try:
        st = os.lstat(path)
        dest = "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
    except OSError:
        dest = None
    return {
        "held": held,
        "why": why,
        "zstd": bool(_which("zstd")),
        "tar": bool(_which("tar")),
        "free": free,
        "free_path": where,
        "dest": dest,
        "python": sys.version.split()[0],
    }


def decide(answer, path, kind, digest, size):
    """('have' | 'need' | 'error', why) for one node's probe answer and the source's content."""
    if answer.get("error"):
        return "error", answer["error"]
    if answer.get("held") == digest:
        return "have", answer.get("why", "")
    if kind == "file" and answer.get("dest") == "dir":
        return "error", f"{path} is a directory there; the source holds a file. Remove it or broadcast a tree."
    if kind == "tree" and not answer.get("tar"):
        return "error", "tar is not installed there; directory trees travel as a tar stream. Install tar."
    if answer.get("free", 0) < size:
        return "error", (
            f"not enough space for {path}: {size} bytes needed, {answer.get('free', 0)} free on the filesystem of "
            f"{answer.get('free_path')} there. Free some space."
        )
    return "need", answer.get("why", "")


def _which(name):
    for folder in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep):
        candidate = os.path.join(folder, name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


# --- errors ---------------------------------------------------------------------------------------------------------

# What a full file system (or a spent quota) says, in an OSError's text and in tar's or zstd's.
DISK_FULL = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT))


def summary(text):
    """A program's stderr in one line: its first line that says the disk is full, else its first line (tar names
    the first file it could not write), how many more, and the last one; a tar that fills the disk writes a line or
    two per file after that."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) <= 2:
        return "; ".join(lines)
    lead = next((line for line in lines if any(words in line for words in DISK_FULL)), lines[0])
    return f"{lead[:300]} (and {len(lines) - 1} more lines, the last: {lines[-1][:300]})"


def disk_full(error, path, size):
    """error said again, first, as what it means when the disk filled while this node wrote path; else error."""
    if not any(words in error for words in DISK_FULL):
        return error
    return (
        f"no space left on the file system of {os.path.dirname(path.rstrip('/')) or '/'} there: it filled while the "
        f"copy of {size} bytes was written, and the unfinished copy was removed (nothing was placed). Free at least "
        f"that much there, then run again. ({error})"
    )


# --- the stream -----------------------------------------------------------------------------------------------------


class Reader:
    """Reads the framed stream from a file descriptor, giving up after `timeout` seconds of silence."""

    def __init__(self, fd, timeout, bufsize):
        self.fd = fd
        self.timeout = timeout
        self.bufsize = bufsize
        self.buf = bytearray()

    def _fill(self):
        ready = select.select([self.fd], [], [], self.timeout)[0]
        if not ready:
            raise UpstreamTimeout(f"nothing arrived from the previous hop for {int(self.timeout)} s")
        data = os.read(self.fd, self.bufsize)
        if not data:
            raise HopError("the previous hop closed the stream before its end (it failed or was stopped)")
        self.buf += data

    def exact(self, size):
        while len(self.buf) < size:
            self._fill()
        out = bytes(self.buf[:size])
        del self.buf[:size]
        return out

    def some(self, limit):
        if not self.buf:
            self._fill()
        out = bytes(self.buf[:limit])
        del self.buf[:limit]
        return out


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def frames(payload_chunks):
    """Encode chunks as frames (for tests and the source): header per chunk, then the end mark."""
    for chunk in payload_chunks:
        if chunk:
            yield HEADER.pack(len(chunk)) + chunk


def trailer(info):
    """The end of a stream: an empty frame, then the source's JSON trailer (digest, bytes) as one frame."""
    body = json.dumps(info, sort_keys=True).encode()
    return HEADER.pack(0) + HEADER.pack(len(body)) + body


class Upstream:
    """Status lines to the previous hop (stdout); a gone upstream is ignored, the copy goes on."""

    def __init__(self, fd=1):
        self.fd = fd
        self.lock = threading.Lock()
        self.broken = False

    def line(self, raw):
        with self.lock:
            if self.broken:
                return
            try:
                write_all(self.fd, raw)
            except OSError:
                self.broken = True

    def emit(self, **event):
        self.line((json.dumps(event, sort_keys=True) + "\n").encode())


class Downstream:
    """The next hop: its ssh process, our copy of the stream to its stdin, its status lines relayed upstream."""

    def __init__(self, argv, upstream, next_node):
        self.next_node = next_node
        self.upstream = upstream
        self.finals = set()
        self.error = None
        self.stderr_tail = []
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.fd = self.proc.stdin.fileno()
        self.relay = threading.Thread(target=self._relay)
        self.relay.daemon = True
        self.relay.start()
        self.errors = threading.Thread(target=self._stderr)
        self.errors.daemon = True
        self.errors.start()

    def _relay(self):
        for raw in self.proc.stdout:
            try:
                event = json.loads(raw.decode())
            except ValueError:
                continue
            if event.get("e") in ("done", "failed", "lost"):
                self.finals.add(event.get("n"))
            self.upstream.line(raw)

    def _stderr(self):
        for raw in self.proc.stderr:
            self.stderr_tail = (self.stderr_tail + [raw.decode("utf-8", "replace").strip()])[-5:]

    def send(self, data):
        if self.error is not None:
            return
        try:
            write_all(self.fd, data)
        except OSError as exc:
            self.error = f"the stream to it broke ({os.strerror(exc.errno) if exc.errno else exc})"

    def finish(self):
        """Close our side, wait for the rest of the chain, report the next node if it went silent."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        rc = self.proc.wait()
        self.relay.join()
        self.errors.join()
        if self.next_node not in self.finals:
            detail = "; ".join(line for line in self.stderr_tail if line) or self.error or f"exit code {rc}"
            self.upstream.emit(
                n=self.next_node, e="lost", error=f"connection lost during the transfer (ssh exit {rc}: {detail})"
            )


class FileSink:
    """Writes the payload to a new temporary file, 0600 until it is verified."""

    FLUSH_EVERY = 32 << 20

    def __init__(self, tmp):
        self.tmp = tmp
        self.fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.unflushed = 0
        self.wake = threading.Event()
        self.stop = False
        # Flushes as the data arrives, beside the writes, so the final fsync has little left to do.
        self.flusher = threading.Thread(target=self._flush)
        self.flusher.daemon = True
        self.flusher.start()

    def _flush(self):
        while True:
            self.wake.wait()
            self.wake.clear()
            if self.stop:
                return
            try:
                os.fdatasync(self.fd)
            except OSError:
                return

    def write(self, data):
        write_all(self.fd, data)
        self.unflushed += len(data)
        if self.unflushed >= self.FLUSH_EVERY:
            self.unflushed = 0
            self.wake.set()

    def _stop(self):
        self.stop = True
        self.wake.set()
        self.flusher.join()

    def finish(self):
        self._stop()
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = None

    def abort(self):
        if self.fd is not None:
            self._stop()
            os.close(self.fd)
            self.fd = None


class ProcessSink:
    """Feeds the payload to a program's stdin (tar -x, zstd -d) and checks its exit code."""

    def __init__(self, argv, what, stdout=None):
        self.what = what
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=stdout, stderr=subprocess.PIPE)
        self.fd = self.proc.stdin.fileno()
        self.err = b""
        self.errors = threading.Thread(target=self._stderr)
        self.errors.daemon = True
        self.errors.start()

    def _stderr(self):
        self.err = self.proc.stderr.read()

    def write(self, data):
        try:
            write_all(self.fd, data)
        except OSError:
            raise HopError(f"{self.what} stopped reading: {self._message()}")

    def _message(self):
        self.proc.wait()
        self.errors.join()
        return summary(self.err.decode("utf-8", "replace")) or f"exit code {self.proc.returncode}"

    def finish(self):
        self.proc.stdin.close()
        if self.proc.wait() != 0:
            raise HopError(f"{self.what} failed: {self._message()}")
        self.errors.join()

    def abort(self):
        try:
            self.proc.kill()
        except OSError:
            pass
        self.proc.wait()


class Hashing:
    """Hashes the payload on its way into a sink."""

    def __init__(self, sink):
        self.sink = sink
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.digest.update(data)
        self.size += len(data)
        self.sink.write(data)

    def finish(self):
        self.sink.finish()
        return "sha256:" + self.digest.hexdigest()

    def abort(self):
        self.sink.abort()


class Decompress:
    """zstd -d between the wire and a Hashing sink; a thread moves its output along."""

    def __init__(self, inner):
        self.inner = inner
        self.zstd = ProcessSink(["zstd", "-d", "-q", "-c"], "zstd -d", stdout=subprocess.PIPE)
        self.failure = None
        self.pump = threading.Thread(target=self._pump)
        self.pump.daemon = True
        self.pump.start()

    def _pump(self):
        out = self.zstd.proc.stdout
        try:
            while True:
                chunk = out.read1(1 << 20) if hasattr(out, "read1") else out.read(1 << 20)
                if not chunk:
                    break
                self.inner.write(chunk)
        except (OSError, HopError) as exc:
            self.failure = exc
            self.zstd.abort()

    def write(self, data):
        if self.failure is not None:
            raise HopError(str(self.failure))
        self.zstd.write(data)

    def finish(self):
        self.zstd.finish()
        self.pump.join()
        if self.failure is not None:
            raise HopError(str(self.failure))
        return self.inner.finish()

    def abort(self):
        self.zstd.abort()
        self.pump.join(5)
        self.inner.abort()


# --- placing a verified copy ----------------------------------------------------------------------------------------


def _rename_exchange(src, dst):
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where the kernel or libc cannot."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError, ImportError):
        return False
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd = -100
    if func(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), 2) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), dst)


def remove_tree(path):
    """Remove a file or tree, making read-only directories writable on the way."""
    if os.path.islink(path) or not os.path.isdir(path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return

    def onerror(func, target, info):
        parent = os.path.dirname(target)
        try:
            os.chmod(parent, stat.S_IMODE(os.lstat(parent).st_mode) | stat.S_IWUSR | stat.S_IXUSR)
            if os.path.isdir(target) and not os.path.islink(target):
                os.chmod(target, stat.S_IMODE(os.lstat(target).st_mode) | stat.S_IRWXU)
            func(target)
        except OSError:
            pass

    shutil.rmtree(path, onerror=onerror)


def keep_excluded(old, new, exclude):
    """Hard-link into the verified copy at new what exclude leaves out of the tree at old (the destination), so the
    swap keeps it as it was: files (and symlinks) are the same inodes, nothing is read, copied or removed; the
    directories they need are made anew with old's modes and times. Returns the number of entries kept."""
    exclude = _exclude(exclude)
    if not exclude or os.path.islink(old) or not os.path.isdir(old):
        return 0
    made = []  # (directory in new, its lstat in old), fixed up deepest first once everything is in
    kept = [0]

    def parents(rel):
        """Make rel's parent directories in new; False when something other than a directory is in the way."""
        parts = rel.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            sub = "/".join(parts[:depth])
            target = os.path.join(new, sub)
            if os.path.isdir(target) and not os.path.islink(target):
                continue
            if os.path.lexists(target):
                return False
            os.mkdir(target, 0o700)
            made.append((target, os.lstat(os.path.join(old, sub))))
        return True

    def carry(rel, st):
        source, target = os.path.join(old, rel), os.path.join(new, rel)
        if os.path.lexists(target) or not parents(rel):
            return  # the source's copy holds something there now; what it holds wins
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(target, 0o700)
            made.append((target, st))
            for name in sorted(os.listdir(source)):
                carry(rel + "/" + name, os.lstat(os.path.join(source, name)))
        else:
            os.link(source, target, follow_symlinks=False)
        kept[0] += 1

    def visit(rel):
        base = os.path.join(old, rel) if rel else old
        for name in sorted(os.listdir(base)):
            child = rel + "/" + name if rel else name
            st = os.lstat(os.path.join(old, child))
            if exclude.excluded(child, stat.S_ISDIR(st.st_mode)):
                carry(child, st)
            elif stat.S_ISDIR(st.st_mode):
                visit(child)

    try:
        visit("")
        for target, st in reversed(made):
            os.chmod(target, stat.S_IMODE(st.st_mode))
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    except OSError as exc:
        raise HopError(
            f"cannot keep the excluded {exc.filename or old} in place: {exc.strerror or exc} (nothing was "
            "changed there)"
        )
    return kept[0]


def place(tmp, path, token):
    """Put the verified copy at tmp into path in one step; whatever was at path before is removed afterwards."""
    if not os.path.lexists(path):
        os.rename(tmp, path)
        return
    if os.path.isdir(tmp) or (os.path.isdir(path) and not os.path.islink(path)):
        if _rename_exchange(tmp, path):
            remove_tree(tmp)
            return
        old = side_path(path, OLD_MARK + token)
        os.rename(path, old)
        os.rename(tmp, path)
        remove_tree(old)
        return
    os.replace(tmp, path)


# --- receive --------------------------------------------------------------------------------------------------------


def hop_command(cfg, code_b64):
    """The remote command line that runs this program on a node with cfg (everything shell-safe base64)."""
    blob = base64.b64encode(json.dumps(cfg, sort_keys=True).encode()).decode()
    quoted = cfg.get("python", "python3").replace("'", "'\\''")
    python = f"'{quoted}'"
    return f"{python} -c '{BOOTSTRAP}' {code_b64} {blob}"


def acquire_lock(path, timeout):
    """An exclusive lock beside path; waits for a stale hop of an earlier run to time out, then gives up."""
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() > deadline:
            os.close(fd)
            raise HopError(
                f"another broadcast is writing {path} (lock {lock_path(path)} held for {int(timeout)} s). If this node "
                "shares its home with another target, pass only one node per home (cluster_facts_home_writers)."
            )
        time.sleep(0.5)


def receive(cfg, code_b64, stdin_fd=0, upstream=None):
    """Run one hop. Returns the exit code: 0 when this node placed a verified copy."""
    upstream = upstream or Upstream()
    chain = cfg["chain"]
    me, rest = chain[0], chain[1:]
    path, kind, token = cfg["path"], cfg["kind"], cfg["token"]
    timeout, bufsize = cfg["timeout"], cfg["bufsize"]
    exclude = cfg.get("exclude") or []
    started = time.monotonic()
    downstream = None
    sink = None
    tmp = temp_path(path, token)
    lock = None
    own_error = None
    stream_error = None
    wire = 0
    try:
        if rest:
            child = dict(cfg, chain=rest)
            downstream = Downstream(cfg["ssh"] + [rest[0], hop_command(child, code_b64)], upstream, rest[0])
        try:
            parent = os.path.dirname(path)
            if not os.path.isdir(parent):
                os.makedirs(parent)
            lock = acquire_lock(path, timeout)
            for stale in leftovers(path):
                remove_tree(stale)
            if kind == "file":
                inner = FileSink(tmp)
            else:
                os.mkdir(tmp, 0o700)
                inner = ProcessSink(["tar", "-x", "-p", "-f", "-", "-C", tmp], "tar -x")
            sink = Hashing(inner)
            if cfg.get("compress"):
                sink = Decompress(sink)
        except (OSError, HopError) as exc:
            own_error = str(exc)
        reader = Reader(stdin_fd, timeout, bufsize)
        last = 0.0
        info = None
        while True:
            head = reader.exact(HEADER.size)
            if downstream:
                downstream.send(head)
            size = HEADER.unpack(head)[0]
            if size == 0:
                head2 = reader.exact(HEADER.size)
                body = reader.exact(HEADER.unpack(head2)[0])
                if downstream:
                    downstream.send(head2 + body)
                info = json.loads(body.decode())
                break
            if size > MAX_FRAME:
                raise HopError(f"corrupt stream: frame of {size} bytes")
            while size:
                data = reader.some(min(size, bufsize))
                size -= len(data)
                wire += len(data)
                if downstream:
                    downstream.send(data)
                if own_error is None:
                    try:
                        sink.write(data)
                    except (OSError, HopError) as exc:
                        own_error = f"writing {tmp} failed: {exc}"
                now = time.monotonic()
                if now - last >= PROGRESS_EVERY:
                    last = now
                    upstream.emit(n=me, e="progress", b=wire)
        if downstream:
            try:
                downstream.proc.stdin.close()
            except OSError:
                pass
        if own_error is None:
            got = sink.finish()
            sink = None
            if got != info["digest"]:
                raise HopError(f"verification failed: received data hashes to {got}, the source sent {info['digest']}")
            if kind == "file":
                if got != cfg["digest"]:
                    raise HopError(f"verification failed: {got} is not the content the source announced")
                os.chmod(tmp, cfg["mode"])
                os.utime(tmp, ns=(cfg["mtime_ns"], cfg["mtime_ns"]))
            else:
                tree = tree_manifest(tmp, exclude=exclude)[0]
                if tree != cfg["digest"]:
                    raise HopError(
                        f"verification failed: the unpacked tree ({tree}) differs from the source's ({cfg['digest']})"
                    )
                # What the source leaves out stays as this node has it (its own weights, caches, results).
                keep_excluded(path, tmp, exclude)
            place(tmp, path, token)
            write_record(
                path,
                {
                    "by": "gtsfm.cluster.broadcast",
                    "path": path,
                    "kind": kind,
                    "digest": cfg["digest"],
                    "size": cfg["size"],
                    "signature": signature(path, kind, exclude),
                    "written": time.time(),
                },
            )
            upstream.emit(n=me, e="done", b=wire, size=cfg["size"], s=round(time.monotonic() - started, 3))
    except (OSError, HopError, ValueError, KeyError) as exc:
        stream_error = str(exc)
    finally:
        if sink is not None:
            sink.abort()
        if os.path.lexists(tmp):
            remove_tree(tmp)
        if own_error or stream_error:
            upstream.emit(n=me, e="failed", b=wire, error=disk_full(own_error or stream_error, path, cfg["size"]))
        if downstream:
            downstream.finish()
        if lock is not None:
            os.close(lock)
    return 0 if not (own_error or stream_error) else 1


def main(argv):
    """python3 -c BOOTSTRAP CODE_B64 CONFIG_B64."""
    code_b64, blob = argv[1], argv[2]
    cfg = json.loads(base64.b64decode(blob).decode())
    if cfg["mode_of_run"] == "probe":
        try:
            out = probe(cfg)
        except (OSError, HopError) as exc:
            out = {"have": False, "error": str(exc)}
        sys.stdout.write(json.dumps(out, sort_keys=True) + "\n")
        return 0
    return receive(cfg, code_b64)


def shipped_code(source_text):
    """This program's source, compressed and base64-encoded for the command line."""
    if not isinstance(source_text, bytes):
        source_text = source_text.encode("utf-8")
    return base64.b64encode(zlib.compress(source_text, 9)).decode()


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[0] == "-c":
    raise SystemExit(main(sys.argv))
