"""What the benchmark scripts share: progress lines, output tails, and scripts/testbed."""

from __future__ import annotations

import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import ansible_runner

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
sys.path.insert(0, str(ROOT / "tests"))
# What counts as a remote call: the one rule the multihost tests assert on (tests/play_record.py).
from play_record import PlayRecord  # noqa: E402  pylint: disable=wrong-import-position


class BenchError(RuntimeError):
    """A step of a benchmark failed; the message says which and shows its output."""


def log(msg: str) -> None:
    """A time-stamped progress line on stderr (the table goes to stdout)."""
    print(f"[{datetime.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def tail(text: str, lines: int = 40) -> str:
    return "\n".join((text or "").rstrip().splitlines()[-lines:])


def markdown_table(header: str, align: str, lines) -> str:
    """A Markdown table: its header row, its alignment row, then one line a row."""
    return "\n".join([header, align, *lines])


def testbed(*args: str) -> str:
    """Run scripts/testbed; its stdout, or BenchError with its stderr's tail."""
    res = subprocess.run(
        [str(ROOT / "scripts" / "testbed"), *args], cwd=ROOT, text=True, capture_output=True, check=False
    )
    if res.returncode != 0:
        raise BenchError(f"scripts/testbed {' '.join(args)} failed ({res.returncode}):\n{tail(res.stderr)}")
    return res.stdout


def fresh_bed(name: str, nodes: int, link_rate: str | None = None) -> tuple[Path, list[str]]:
    """Bring the bed called name down and up again with `nodes` nodes (nothing left from before), each node's link
    shaped to link_rate if given: its directory and its node names."""
    testbed("down", "--name", name)
    started = time.monotonic()
    shaping = ["--link-rate", link_rate] if link_rate else []
    bed = Path(testbed("up", "--nodes", str(nodes), "--name", name, *shaping).strip().splitlines()[-1])
    names = [n["name"] for n in json.loads((bed / "state.json").read_text())["nodes"]]
    log(f"bed '{name}' up with {nodes} node(s) in {time.monotonic() - started:.0f} s: {bed}")
    return bed, names


class PeakMemory:
    """The controller's peak memory during a run: the ansible-playbook process's own high-water mark (VmHWM), read
    from /proc while it runs (its forks share most of its pages, so their RSS is not added)."""

    def __init__(self, marker: str) -> None:
        self.marker, self.peak_kib = marker, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for proc in Path("/proc").iterdir():
                try:
                    cmd = (proc / "cmdline").read_bytes().split(b"\0")
                    ours = self.marker.encode() in b" ".join(cmd)
                    if not ours or not any(b"ansible-playbook" in part for part in cmd[:2]):
                        continue
                    for line in (proc / "status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            self.peak_kib = max(self.peak_kib, int(line.split()[1]))
                except (OSError, ValueError):
                    continue

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_play(
    bed: Path, hosts: list[str], tags: str | None, extravars: dict | None = None, playbook: Path | None = None
) -> dict:
    """Run site.yml (or another playbook; with these tags, or all) on the bed, with the bed's vars.yml and then
    extravars; BenchError with the runner's output tail unless it succeeded. Remote calls per host and per role are
    counted by tests/play_record.py."""
    playbook = playbook or ROOT / "site.yml"
    record = PlayRecord(hosts)
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as pdd:
        envvars = {
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            # ansible-runner finds ansible-playbook on PATH: this checkout's venv first.
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        # A control-master directory of this run's own (an extra var outranks the bed's inventory setting):
        # no connection is reused from an earlier run or bed.
        cmdline = f"-e ansible_control_path_dir={shlex.quote(str(Path(pdd) / 'cp'))}"
        if (bed / "vars.yml").exists():
            cmdline += f" -e @{shlex.quote(str(bed / 'vars.yml'))}"
        if extravars:
            # After vars.yml: the benchmark's own values replace the bed's.
            (Path(pdd) / "bench_vars.json").write_text(json.dumps(extravars))
            cmdline += f" -e @{shlex.quote(str(Path(pdd) / 'bench_vars.json'))}"
        started = time.time()
        with PeakMemory(pdd) as memory:
            result = ansible_runner.run(
                private_data_dir=pdd,
                playbook=str(playbook),
                inventory=str(bed / "inventory.yml"),
                tags=tags,
                envvars=envvars,
                cmdline=cmdline,
                quiet=True,
                event_handler=record.handle,
            )
        wall = time.time() - started
        if result.status != "successful" or result.rc != 0:
            raise BenchError(
                f"{playbook.name} --tags {tags or '(all)'} ended {result.status} (rc {result.rc}):\n"
                f"{tail(result.stdout.read(), 60)}"
            )
    stats = record.stats
    counts = list(record.per_host.values())
    return {
        "wall_s": round(wall, 3),
        "startup_s": round(record.first_play - started, 3) if record.first_play else None,
        "remote_min": min(counts),
        "remote_max": max(counts),
        "remote_per_host": record.per_host,
        "remote_per_role": record.per_role,
        "controller_peak_mib": round(memory.peak_kib / 1024, 1),
        "changed": sum((stats.get("changed") or {}).values()),
        "tasks": record.task_rows(),
    }
