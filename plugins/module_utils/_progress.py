# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The progress record of a long step: one writer, one reader, one summary line. Private to this collection.

Every long step (an environment build or copy, a broadcast, a download, a Dask job) keeps one small JSON record on
the node that does the work, keyed by a run id. gtsfm.cluster.follow (on the controller) and
gtsfm.cluster.progress_info (on the node) read it; both go through read_text() below, so there is one rule for a
record that is missing, half-written or another run's: it reads as "not written yet" (None).

Fields: run_id, what, phase, done, total, unit (C(B) for bytes, else a plural noun), rate (units per second),
started, updated, pid, pid_start (the writer's start time, so a recycled pid is not taken for it), finished,
failed, msg, result, nodes ({host: {state, done}}).

Standard library only: gtsfm.cluster's job agent ships this file to the scheduler and imports it there as a plain
module, outside Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import fcntl
import json
import os
import tempfile
import threading
import time

# A record no writer touched for this long, whose writer is gone, is a lost step.
FINAL_PHASES = ("done", "finished", "failed", "timeout", "stopped", "lost")
# Up to this many nodes a progress line names each; beyond, it counts them per state.
NODES_SHOWN = 4


def stat_start(text):
    """The start time (field 22) in the text of a /proc/<pid>/stat, or None where the text holds none."""
    # The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def pid_start(pid):
    """Start time of pid in clock ticks since boot (/proc/<pid>/stat field 22), or None where it cannot be read."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as handle:
            text = handle.read().decode("ascii", "replace")
    except (OSError, ValueError, TypeError):
        return None
    return stat_start(text)


def hold(path, waiting=None, poll=1.0, sleep=time.sleep):
    """An exclusive flock on path (created 0600), held until release() or the end of its process.

    The one writer of a long step takes it before it looks at its target again, so a second writer (a re-run whose
    controller lost the first, or a second controller) waits for the first and then finds its work done instead of
    writing over it. The kernel drops the lock with its process, so a killed writer leaves nothing stale. While
    another process holds it, waiting(pid) is called every poll seconds with the holder's pid (None if unknown).
    release() removes the file: a lock taken on a file that was removed meanwhile is not the lock, and is taken again.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            if waiting is not None:
                try:
                    holder = int(os.pread(fd, 32, 0).split()[0])
                except (ValueError, IndexError, OSError):
                    holder = None
                waiting(holder)
            os.close(fd)
            sleep(poll)
            continue
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except OSError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, (f"{os.getpid()}\n").encode("ascii"), 0)
    return fd


def release(fd, path):
    """Give up a lock hold() took, leaving no file behind (a waiter then takes a new one)."""
    try:
        os.unlink(path)
    except OSError:
        pass
    os.close(fd)


def write_json(path, data, durable=False, temp_prefix=None):
    """Write data as JSON atomically (a reader sees the old file or the new one, never half of one).

    The folder is made (0700) when missing; the temp file sits beside the target so the rename stays on one disk,
    named ".NAME.*.tmp" unless temp_prefix names it (a side file whose temp must match the side files' pattern).
    durable: the bytes reach the disk before the rename (a record a later run trusts after a crash)."""
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        os.makedirs(folder, 0o700)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix or f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    with replacing(tmp, path), os.fdopen(fd, "w") as handle:
        json.dump(data, handle, sort_keys=True)
        handle.write("\n")
        if durable:
            handle.flush()
            os.fsync(handle.fileno())


@contextlib.contextmanager
def replacing(tmp, path):
    """Around the writing of tmp: rename it over path when the block ends, remove it when the block raises anything
    (an interrupt included), so a reader of path sees the old file or the whole new one, never a part."""
    try:
        yield
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_text(text, run_id=None):
    """The record in text, or None: the one rule for an empty, half-written, foreign or another run's record."""
    if not text or not text.strip():
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    if run_id is not None and record.get("run_id") != run_id:
        return None
    return record


def read(path, run_id=None):
    """The record at path, or None when there is none yet (see read_text()). Other read errors are raised."""
    try:
        with open(path) as handle:
            text = handle.read()
    except OSError as exc:
        if getattr(exc, "errno", None) == 2:
            return None
        raise
    return read_text(text, run_id)


def read_async(text):
    """(finished, result) of an async job's result file text (the async_wrapper's), as async_status reads it."""
    job = read_text(text)
    if job is None:
        return False, None
    # A result without 'started' is the module's own, final one.
    if "started" not in job or job.get("finished") in (True, 1):
        return True, job
    return False, None


class Writer:
    """Keeps a step's record: fields updated in memory, written at most once per interval unless forced.

    Progress is a courtesy: a write that fails (a full disk, say) never fails the step itself."""

    rate_field = "done"  # the field whose growth per second is the rate

    def __init__(self, path, run_id=None, what="", unit="B", interval=1.0, clock=time.time, **fields):
        self.path = path
        self.interval = interval
        self.clock = clock
        self.lock = threading.Lock()
        self.last = None
        now = clock()
        self.rate_mark = (now, 0)
        self.data = {
            "run_id": run_id,
            "what": what,
            "phase": "starting",
            "done": 0,
            "total": None,
            "unit": unit,
            "rate": 0.0,
            "started": now,
            "updated": now,
            "pid": os.getpid(),
            "pid_start": pid_start(os.getpid()),
            "finished": False,
            "failed": False,
            "msg": "",
            "nodes": {},
        }
        self.data.update(fields)
        self.write(force=True)

    def update(self, force=False, **fields):
        with self.lock:
            self.data.update(fields)
        self.write(force=force)

    def node(self, host, force=False, **fields):
        with self.lock:
            self.data["nodes"].setdefault(host, {}).update(fields)
        self.write(force=force)

    def finish(self, failed=False, msg="", result=None, phase=None):
        self.update(
            force=True,
            finished=True,
            failed=bool(failed),
            msg=msg,
            result=result,
            phase=phase or ("failed" if failed else "done"),
        )

    def write(self, force=False):
        if not self.path:
            return
        now = self.clock()
        with self.lock:
            if not force and self.last is not None and now - self.last < self.interval:
                return
            self.last = now
            # The rate over the last interval or more, so a stall shows as a falling rate, not an average.
            mark_time, mark_done = self.rate_mark
            done = self.data.get(self.rate_field) or 0
            if now - mark_time >= max(self.interval, 1e-3):
                self.data["rate"] = round(max(0, done - mark_done) / (now - mark_time), 1)
                self.rate_mark = (now, done)
            self.data["updated"] = now
            text = dict(self.data)
        try:
            write_json(self.path, text)
        except OSError:
            pass


# ---------------------------------------------------------------- the line a person reads


def _scale(amount):
    """(divisor, unit name) that shows amount bytes in 1 to 999 of a unit."""
    divisor = 1
    for name in ("B", "kB", "MB", "GB"):
        if amount < 1000 * divisor:
            return divisor, name
        divisor *= 1000
    return divisor, "TB"


def human(amount, unit, of=None):
    """1.2 GB for bytes, else the bare count with the unit; with of, both in of's unit: '1.2 / 3.1 GB'."""
    if amount is None:
        return "?"
    if unit != "B":
        return f"{int(amount)} / {int(of)} {unit}" if of else f"{int(amount)} {unit}"
    divisor, name = _scale(float(of if of else amount))
    text = (lambda v: f"{int(v)}") if name == "B" else (lambda v: f"{v / float(divisor):.1f}")
    if of:
        return f"{text(amount)} / {text(of)} {name}"
    return f"{text(amount)} {name}"


def duration(seconds):
    """A duration as a person says it: 42 s, 3 min 20 s, 2 h 5 min."""
    seconds = int(max(0, seconds or 0))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {(seconds % 3600) // 60} min"


def summary(record, now=None):
    """One line of progress, e.g. 'environment 1.2 / 3.1 GB, 96.0 MB/s, about 20 s left'."""
    if record is None:
        return "starting"
    now = time.time() if now is None else now
    unit = record.get("unit", "B")
    done, total, rate = record.get("done") or 0, record.get("total"), record.get("rate") or 0
    what = record.get("what") or "step"
    parts = [f"{what} {record.get('phase') or '?'}"]
    if unit == "B":
        parts.append(human(done, unit, of=total))
        if not record.get("finished") and rate > 0:
            parts.append(f"{human(rate, unit)}/s")
            if total and rate > 0 and total > done:
                parts.append(f"about {duration(max(1, (total - done) / rate))} left")
    elif unit and total:
        parts.append(human(done, unit, of=total))
    nodes = record.get("nodes") or {}
    if 0 < len(nodes) <= NODES_SHOWN:
        parts.append(", ".join(f"{host} {_node_text(node, unit)}" for host, node in sorted(nodes.items())))
    elif nodes:
        # Many nodes: how many are in each state, so the line stays one line at any N.
        states = {}
        for node in nodes.values():
            key = node.get("state") or f"x{node.get('done') or 0}"
            states[key] = states.get(key, 0) + 1
        parts.append(", ".join(f"{n} {state}" for state, n in sorted(states.items())))
    started = record.get("started")
    started = now if started is None else started
    if record.get("finished"):
        ended = record.get("updated")
        parts.append(f"after {duration((now if ended is None else ended) - started)}")
    else:
        parts.append(f"{duration(now - started)} elapsed")
    if record.get("failed") and record.get("msg"):
        parts.append(record["msg"])
    return ", ".join(parts)


def _node_text(node, unit):
    if node.get("state") in ("pending", "held"):
        return node["state"]
    if unit == "B":
        return f"{node.get('state', '?')} {human(node.get('done') or 0, unit)}"
    return f"x{node.get('done') or 0}"
