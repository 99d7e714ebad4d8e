"""The controller's follow loop: what one poll reads, how it is parsed, and that polls do not pile up."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

import pytest

from ansible_collections.gtsfm.cluster.plugins.module_utils import _progress
from ansible_collections.gtsfm.cluster.plugins.plugin_utils._follow import (
    Follower,
    FollowError,
    Step,
    parse,
    read_command,
)


def sh(command: str) -> str:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout


def test_one_poll_reads_record_async_result_log_and_writer_here(tmp_path):
    record = tmp_path / "rec.json"
    _progress.Writer(str(record), run_id="r1", what="x", total=10).update(force=True, done=4)
    (tmp_path / "job").write_text('{"started": true, "finished": false, "ansible_job_id": "j1"}')
    (tmp_path / "log").write_text("first\nsecond line\n\n")
    step = Step(
        "weights", status=str(record), run_id="r1", results_file=str(tmp_path / "job"), log=str(tmp_path / "log")
    )
    (snap,) = parse([step], sh(read_command([step])))
    assert snap.record["done"] == 4 and not snap.finished and snap.log_line == "second line"
    assert snap.writer_alive is None
    step.pid, step.pid_start = snap.record["pid"], snap.record["pid_start"]
    (snap,) = parse([step], sh(read_command([step])))
    assert snap.writer_alive is True  # this test's own process wrote it
    step.pid_start += 1
    assert parse([step], sh(read_command([step])))[0].writer_alive is False  # a recycled pid is not the writer
    (tmp_path / "job").write_text('{"changed": true, "msg": "ok"}')
    (snap,) = parse([step], sh(read_command([step])))
    assert snap.finished and snap.result == {"changed": True, "msg": "ok"}


def test_paths_with_spaces_quotes_and_home(tmp_path, monkeypatch):
    odd = tmp_path / "a b'c"
    odd.mkdir()
    _progress.write_json(str(odd / "r.json"), {"phase": "x", "finished": True, "result": {"ok": 1}})
    monkeypatch.setenv("HOME", str(odd))
    steps = [Step("a", status=str(odd / "r.json")), Step("b", status="~/r.json"), Step("c", status="/nonexistent")]
    snaps = parse(steps, sh(read_command(steps)))
    assert [s.finished for s in snaps] == [True, True, False] and snaps[0].result == {"ok": 1}
    assert snaps[2].record is None


class World:
    """A step that ends after `rounds` polls; the clock moves by the sleeps the follower asks for."""

    def __init__(self, rounds: int, record: dict | None = None) -> None:
        self.rounds, self.polls, self.now, self.lines = rounds, 0, 0.0, []
        self.record = record or {
            "run_id": "r",
            "what": "x",
            "phase": "running",
            "unit": "B",
            "done": 0,
            "total": 100,
            "started": 0.0,
        }
        self.depths: dict[int, int] = {}

    def run(self, command: str) -> str:
        self.polls += 1
        if self.polls in (10, 2000):
            self.depths[self.polls] = len(_stack())
        record = dict(self.record, done=min(100, self.polls), phase="running")
        if self.polls >= self.rounds:
            record.update(finished=True, phase="done", result={"changed": True})
        return "\n\x1egtsfm-follow 0 record\n" + json.dumps(record) + "\n"

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def follower(self, **kwargs) -> Follower:
        return Follower(
            host="node1",
            steps=[Step("x", status="/r", run_id="r")],
            run=self.run,
            say=self.lines.append,
            clock=lambda: self.now,
            wall=lambda: self.now,
            sleep=self.sleep,
            **kwargs,
        )


def _stack() -> list:
    frames, frame = [], sys._getframe()  # pylint: disable=protected-access
    while frame:
        frames.append(frame)
        frame = frame.f_back
    return frames


def test_two_thousand_polls_cost_what_ten_cost():
    world = World(rounds=2000)
    follower = world.follower(poll=0.01, report_every=1.0)
    tracemalloc.start()
    sizes = {}
    real_run = world.run

    def measured(command: str) -> str:
        if world.polls + 1 in (10, 2000):
            sizes[world.polls + 1] = tracemalloc.get_traced_memory()[0]
        return real_run(command)

    follower.run = measured
    snaps = follower.follow()
    tracemalloc.stop()
    assert follower.polls == 2000 and snaps[0].finished and snaps[0].result == {"changed": True}
    assert world.depths[10] == world.depths[2000]  # no nesting: the same stack depth at poll 10 and poll 2000
    assert sizes[2000] - sizes[10] < 64 * 1024  # memory flat: no per-poll history kept
    # Lines at a steady pace (one a second of the follower's clock), not one per poll.
    assert 15 <= len(world.lines) <= 30, len(world.lines)
    assert world.lines[-1].startswith("node1 -> ") is False and world.lines[-1].startswith("node1: x done")
    assert "FAILED" not in "".join(world.lines)


def test_a_short_step_ends_in_well_under_a_second_with_one_line():
    world = World(rounds=3)
    world.follower(poll=2.0, report_every=10.0).follow()
    assert world.now < 1.0 and len(world.lines) == 1 and "x done" in world.lines[0]


def test_a_writer_gone_without_a_result_fails_naming_host_and_step():
    world = World(rounds=10**9)
    follower = world.follower(poll=0.01)
    follower.steps[0].pid, follower.steps[0].pid_start = 424242, 1

    def dead(command: str) -> str:
        assert "cat /proc/424242/stat" in command
        return world.run(command)

    follower.run = dead
    with pytest.raises(FollowError, match=r"node1: x ended without a result \(its process 424242 is gone\)"):
        follower.follow()
    assert world.polls == 2  # seen dead twice in a row, so a last write is not missed


def test_a_host_that_stops_answering_fails_after_the_grace():
    world = World(rounds=10**9)

    def down(command: str) -> str:
        raise ConnectionError("ssh: connect to host node1 port 22: No route to host")

    follower = world.follower(poll=5.0, unreachable_grace=60.0)
    follower.run = down
    with pytest.raises(FollowError, match=r"node1 did not answer for 1 min .* while x ran there \(ssh: connect"):
        follower.follow()


def test_timeout_leaves_the_step_running_and_says_so():
    world = World(rounds=10**9)
    with pytest.raises(FollowError, match=r"node1: x still running after 1 min 0 s .* goes on in the background"):
        world.follower(poll=1.0, timeout=60.0).follow()


def test_a_notice_is_printed_once_when_the_record_allows_it_filled_from_the_record():
    world = World(rounds=6)
    follower = world.follower(poll=0.01, report_every=100.0)
    step = follower.steps[0]
    step.notice = ["ssh -N -L 8787:localhost:{dashboard_port} node1", "then open it"]
    step.notice_when = "dashboard_port"
    seen = []
    real_run = world.run

    def run(command: str) -> str:
        out = real_run(command)
        if world.polls >= 3:  # the scheduler serves its dashboard from the third read on, on a port Dask chose
            record = json.loads(out.split("\n")[2])
            out = out.replace(json.dumps(record), json.dumps(dict(record, dashboard_port=8790)))
        seen.append(out)
        return out

    follower.run = run
    follower.follow()
    assert world.lines[:2] == ["ssh -N -L 8787:localhost:8790 node1", "then open it"]
    assert sum("then open it" in line for line in world.lines) == 1


def test_an_async_step_is_not_judged_by_an_earlier_runs_record(tmp_path):
    """A record left by an earlier run names a writer long gone; the async result file decides, not that pid."""
    record = tmp_path / "rec.json"
    _progress.write_json(str(record), {"phase": "done", "finished": True, "pid": 2**22 + 7, "pid_start": 1})
    job = tmp_path / "job"
    job.write_text('{"started": true, "finished": false, "ansible_job_id": "j1"}')
    polls = []

    def run(command: str) -> str:
        polls.append(command)
        if len(polls) == 4:
            job.write_text('{"changed": true, "msg": "2 received"}')
        return sh(command)

    follower = Follower(
        host="node1",
        steps=[Step("checkout", status=str(record), results_file=str(job))],
        run=run,
        say=lambda line: None,
        poll=0.01,
        sleep=lambda s: None,
    )
    snaps = follower.follow()
    assert snaps[0].result == {"changed": True, "msg": "2 received"} and len(polls) == 4
    assert all("/proc/" not in command for command in polls)
