# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Following long steps from the controller: the loop under gtsfm.cluster.follow. Private to this collection.

One poll is one shell command on the node that prints, for each step followed there, its progress record, its async
result file, the tail of its log and its writer's /proc stat; parse() turns that back into snapshots with the same
rules the node-side reader uses (module_utils/_progress). The loop is a plain while loop: its stack depth, memory
and work per poll do not grow with the number of polls.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.gtsfm.cluster.plugins.module_utils import _progress

MARK = "\x1egtsfm-follow"
SECTION_RE = re.compile(r"^\x1egtsfm-follow (\d+) (record|async|log|stat)$")
LOG_TAIL_BYTES = 2048
# A step that ends within this many seconds prints only its last line.
QUIET_START = 2.0


class FollowError(Exception):
    """The step cannot be followed (bad input, a node that stopped answering, a writer that vanished)."""


@dataclass
class Step:
    """One background step on one host: where its record, async result and log are."""

    label: str
    status: str | None = None
    run_id: str | None = None
    results_file: str | None = None
    log: str | None = None
    pid: int | None = None  # the record's writer, once a record named it
    pid_start: int | None = None
    notice: list[str] = field(default_factory=list)  # lines printed once, as they are, when the record allows
    notice_when: str | None = None  # the record field that must be set first ({field} in a line is its value)


@dataclass
class Snapshot:
    record: dict | None
    finished: bool
    result: dict | None
    log_line: str
    writer_alive: bool | None  # None: no writer known yet


def shell_path(path: str) -> str:
    """path quoted for sh, a leading ~/ kept as the remote user's $HOME."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def read_command(steps: list[Step]) -> str:
    """The one command a poll runs on the node; read-only, and answers even where a file is missing."""
    parts = []
    for index, step in enumerate(steps):
        for name, path in (("record", step.status), ("async", step.results_file), ("log", step.log)):
            if not path:
                continue
            reader = (
                f"tail -c {LOG_TAIL_BYTES} -- {shell_path(path)}" if name == "log" else f"cat -- {shell_path(path)}"
            )
            parts.append(f"printf '\\n{MARK} {index} {name}\\n'; {reader} 2>/dev/null")
        if step.pid:
            parts.append(f"printf '\\n{MARK} {index} stat\\n'; cat /proc/{int(step.pid)}/stat 2>/dev/null")
    parts.append("true")
    return "; ".join(parts)


def parse(steps: list[Step], stdout: str) -> list[Snapshot]:
    """Snapshots of steps from one poll's output (see read_command)."""
    sections: dict[tuple[int, str], list[str]] = {}
    current = None
    for line in stdout.split("\n"):
        match = SECTION_RE.match(line)
        if match:
            current = (int(match.group(1)), match.group(2))
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    snaps = []
    for index, step in enumerate(steps):
        text = {name: "\n".join(sections.get((index, name), [])) for name in ("record", "async", "log", "stat")}
        record = _progress.read_text(text["record"], step.run_id) if step.status else None
        if step.results_file:
            finished, result = _progress.read_async(text["async"])
        else:
            finished = bool(record and record.get("finished"))
            result = (record or {}).get("result") if finished else None
        lines = [line for line in text["log"].splitlines() if line.strip()]
        alive = None
        if step.pid:
            start = _progress.stat_start(text["stat"]) if text["stat"].strip() else None
            alive = start is not None and (step.pid_start is None or start == step.pid_start)
        snaps.append(Snapshot(record, finished, result, lines[-1].strip() if lines else "", alive))
    return snaps


def notice_lines(step: Step, record: dict | None) -> list[str]:
    """The step's notice, filled from the record, once the record holds notice_when; else nothing yet."""
    if not step.notice:
        return []
    if step.notice_when and not (record or {}).get(step.notice_when):
        return []
    values = record or {}
    return [re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), m.group(0))), line) for line in step.notice]


def line_for(host: str, step: Step, snap: Snapshot, now: float) -> str:
    """The progress line a person reads for one step."""
    record = snap.record
    targets = len((record or {}).get("nodes") or {})
    head = (
        f"{host} -> {targets} node{'' if targets == 1 else 's'}"
        if targets and (record or {}).get("unit") == "B"
        else host
    )
    text = _progress.summary(dict(record, what=step.label), now) if record else f"{step.label} starting"
    if snap.log_line:
        text += f"; log: {snap.log_line[:160]}"
    return f"{head}: {text}"


@dataclass
class Follower:
    """Polls steps on one host until each is finished; prints a line per step at a steady pace."""

    host: str
    steps: list[Step]
    run: Callable[[str], str]  # the node's stdout for a command; raises ConnectionError-likes when unreachable
    say: Callable[[str], None]
    timeout: float = 86400.0
    poll: float = 2.0
    report_every: float = 5.0
    unreachable_grace: float = 60.0
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    polls: int = 0
    outcome: list[Snapshot | None] = field(default_factory=list)

    def follow(self) -> list[Snapshot]:
        start = self.clock()
        self.outcome = [None] * len(self.steps)
        last_said: list[tuple[float, Any]] = [(start, None)] * len(self.steps)
        last_line: list[str] = [""] * len(self.steps)  # a line is never printed twice in a row
        gone_since: list[float | None] = [None] * len(self.steps)
        silent_since = None
        delay = min(0.25, self.poll)
        while True:
            pending = [i for i, o in enumerate(self.outcome) if o is None]
            if not pending:
                return self.outcome  # type: ignore[return-value]
            now = self.clock()
            if now - start > self.timeout:
                raise FollowError(
                    f"{self.host}: {', '.join(self.steps[i].label for i in pending)} still running after "
                    f"{_progress.duration(self.timeout)} (the follow's timeout); it goes on in the "
                    "background. Fix: raise the timeout, or follow it again later."
                )
            try:
                stdout = self.run(read_command([self.steps[i] for i in pending]))
                silent_since = None
            except ConnectionError as exc:
                silent_since = silent_since or now
                if now - silent_since > self.unreachable_grace:
                    raise FollowError(
                        f"{self.host} did not answer for {_progress.duration(now - silent_since)} while "
                        f"{', '.join(self.steps[i].label for i in pending)} ran there ({exc}). The step may go on; fix "
                        "the node or its network and run the play again."
                    ) from exc
                self.sleep(self.poll)
                continue
            self.polls += 1
            wall = self.wall()
            for i, snap in zip(pending, parse([self.steps[i] for i in pending], stdout)):
                step = self.steps[i]
                # An async step's own result file says when it ended; only a step without one is judged by whether
                # its record's writer still lives (a record left by an earlier run names a writer long gone).
                if snap.record and snap.record.get("pid") and not step.pid and not step.results_file:
                    step.pid, step.pid_start = snap.record["pid"], snap.record.get("pid_start")
                phase = (snap.record or {}).get("phase")
                if step.notice and not snap.finished:
                    for line in notice_lines(step, snap.record):
                        self.say(line)
                        step.notice = []
                if snap.finished:
                    self.outcome[i] = snap
                    line = line_for(self.host, step, _final(step, snap), wall)
                    if line != last_line[i]:
                        self.say(line)
                    continue
                if snap.writer_alive is False:
                    # Seen dead once: the next poll reads again, so a writer that just wrote its end is not lost.
                    if gone_since[i] is not None:
                        raise FollowError(
                            f"{self.host}: {step.label} ended without a result (its process {step.pid} is gone). Run "
                            "the play again: the step starts over or resumes."
                        )
                    gone_since[i] = now
                else:
                    gone_since[i] = None
                said_at, said_phase = last_said[i]
                if now - start < min(self.report_every, QUIET_START):
                    continue  # a short step shows its end only
                if phase != said_phase or now - said_at >= self.report_every:
                    last_line[i] = line_for(self.host, step, snap, wall)
                    self.say(last_line[i])
                    last_said[i] = (now, phase)
            if all(o is not None for o in self.outcome):
                continue  # done: no pause after the last read
            self.sleep(delay)
            delay = min(self.poll, delay * 2)


def _final(step: Step, snap: Snapshot) -> Snapshot:
    """A finished step shows as finished, even when its record was last written before the end (or never)."""
    record = dict(snap.record or {"what": step.label, "unit": ""})
    record["finished"] = True
    result = snap.result or {}
    if result.get("failed"):
        record.update(failed=True, phase="failed", msg=str(result.get("msg") or record.get("msg") or ""))
    elif record.get("phase") not in _progress.FINAL_PHASES:
        record["phase"] = "done"
    return Snapshot(record, True, snap.result, snap.log_line, snap.writer_alive)
