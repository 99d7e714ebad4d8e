"""The progress record: one writer, one reader rule, one line a person reads."""

from __future__ import annotations

import json
import os

from ansible_collections.gtsfm.cluster.plugins.module_utils import _progress


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_writer_writes_atomically_and_throttles(tmp_path):
    clock = Clock()
    path = tmp_path / "p" / "rec.json"
    writer = _progress.Writer(str(path), run_id="r1", what="environment", total=3_100_000_000, clock=clock)
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    first = path.read_text()
    clock.now += 0.5
    writer.update(done=10)  # within the interval: kept in memory only
    assert path.read_text() == first
    clock.now += 1.0
    writer.update(done=1_200_000_000, phase="sending")
    record = _progress.read(str(path), "r1")
    assert record["done"] == 1_200_000_000 and record["phase"] == "sending" and record["pid"] == os.getpid()
    assert record["pid_start"] is not None
    assert record["pid_start"] == _progress.pid_start(os.getpid())
    assert record["rate"] == round(1_200_000_000 / 1.5, 1)
    assert [p.name for p in path.parent.iterdir()] == ["rec.json"]  # no temp file left beside it


def test_one_rule_for_missing_half_written_foreign_and_other_runs(tmp_path):
    path = tmp_path / "rec.json"
    assert _progress.read(str(path)) is None
    path.write_text('{"run_id": "r1", "phase": "send')
    assert _progress.read(str(path)) is None
    path.write_text("[1, 2]")
    assert _progress.read(str(path)) is None
    path.write_text(json.dumps({"run_id": "r0", "phase": "done"}))
    assert _progress.read(str(path), "r1") is None and _progress.read(str(path))["phase"] == "done"


def test_async_result_rules():
    assert _progress.read_async("") == (False, None)
    assert _progress.read_async('{"started": true, "finished": false, "ansible_job_id": "j1.2"}') == (False, None)
    assert _progress.read_async('{"started": 1, "finished": 1, "changed": true}')[0] is True
    assert _progress.read_async('{"changed": false, "msg": "ok"}') == (True, {"changed": False, "msg": "ok"})


def test_summary_reads_like_a_sentence():
    record = {
        "what": "environment",
        "phase": "sending",
        "done": 1_200_000_000,
        "total": 3_100_000_000,
        "unit": "B",
        "rate": 96_000_000,
        "started": 100.0,
        "finished": False,
    }
    assert _progress.summary(record, now=113.0) == (
        "environment sending, 1.2 / 3.1 GB, 96.0 MB/s, about 19 s left, 13 s elapsed"
    )
    job = {
        "what": "job demo",
        "phase": "running",
        "done": 6,
        "total": 8,
        "unit": "workers",
        "started": 0.0,
        "nodes": {"node1": {"done": 2}, "node2": {"done": 4}},
    }
    assert _progress.summary(job, now=200.0) == (
        "job demo running, 6 / 8 workers, node1 x2, node2 x4, 3 min 20 s elapsed"
    )
    done = dict(record, finished=True, phase="done", done=3_100_000_000, updated=150.0)
    assert _progress.summary(done) == "environment done, 3.1 / 3.1 GB, after 50 s"
    failed = dict(done, phase="failed", failed=True, msg="node3: disk full")
    assert _progress.summary(failed).endswith("after 50 s, node3: disk full")


def test_a_line_stays_one_line_at_any_number_of_nodes():
    nodes = {f"node{i}": {"state": "received" if i % 4 else "receiving", "done": 5} for i in range(2, 34)}
    line = _progress.summary(
        {"what": "env", "phase": "sending", "done": 5, "total": 10, "nodes": nodes, "started": 0.0}, now=1.0
    )
    assert line == "env sending, 5 / 10 B, 24 received, 8 receiving, 1 s elapsed"


def test_a_failing_write_never_fails_the_step(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    writer = _progress.Writer(str(blocked / "rec.json"))  # its folder cannot be made
    writer.update(force=True, done=5)
    writer.finish(msg="ok")
    assert writer.data["finished"] and writer.data["done"] == 5


def test_pid_start_of_a_pid_that_is_gone():
    assert _progress.pid_start(2**22 + 12345) is None


def test_hold_waits_for_the_holder_names_it_then_takes_the_lock_and_release_leaves_nothing(tmp_path):
    path = str(tmp_path / ".env.gtsfm-build.lock")
    first = _progress.hold(path)
    seen = []
    # flock locks belong to open file descriptions: a second open in this process contends like another process.
    second = _progress.hold(path, waiting=seen.append, sleep=lambda _s: _progress.release(first, path))
    assert seen == [os.getpid()]
    assert (tmp_path / ".env.gtsfm-build.lock").read_text() == f"{os.getpid()}\n"
    _progress.release(second, path)
    assert list(tmp_path.iterdir()) == []


def test_hold_takes_again_a_lock_whose_file_was_removed_under_it(tmp_path, monkeypatch):
    path = str(tmp_path / "x.lock")
    real_flock, calls = _progress.fcntl.flock, []

    def flock(fd, op):
        real_flock(fd, op)
        calls.append(fd)
        if len(calls) == 1:  # another holder released (removed) the file between our open and our flock
            os.unlink(path)

    monkeypatch.setattr(_progress.fcntl, "flock", flock)
    fd = _progress.hold(path)
    assert len(calls) == 2 and os.path.samestat(os.fstat(fd), os.stat(path))
    _progress.release(fd, path)
