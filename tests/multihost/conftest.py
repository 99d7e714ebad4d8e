"""Fixtures for tests that drive real test-bed nodes through ansible-runner."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import ansible_runner
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from play_record import PlayRecord  # noqa: E402  pylint: disable=wrong-import-position


def pytest_configure(config):
    # The slowest beds live in their own target so that `make test` stays within its time (CI runs both).
    config.addinivalue_line("markers", "scale: N=16 beds and the 2,000-poll follow; `make test-scale`, not `make test`")


@dataclass
class Bed:
    """A running test bed, as scripts/testbed describes it."""

    name: str
    path: Path
    nodes: list[str] = field(default_factory=list)

    def ssh(self, host: str, command: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run command on host as the bed's user, through the bed's ssh_config."""
        return subprocess.run(
            ["ssh", "-F", str(self.path / "ssh_config"), host, command],
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def ip(self, host: str) -> str:
        """The node's address, from the bed's state."""
        nodes = json.loads((self.path / "state.json").read_text())["nodes"]
        return next(n["ip"] for n in nodes if n["name"] == host)

    def inventory_for(self, hosts: list[str], tmp: Path) -> Path:
        """A plugin config like the bed's, over a cluster.yaml listing only hosts."""
        cluster = tmp / "cluster.yaml"
        cluster.write_text("workers:\n" + "".join(f"  - {h}\n" for h in hosts))
        text = (self.path / "inventory.yml").read_text()
        inventory = tmp / "inventory.yml"
        inventory.write_text(text.replace(str(self.path / "cluster.yaml"), str(cluster)))
        return inventory


@dataclass
class Run:
    """What one ansible-runner run left: its status, rc and event stream."""

    status: str
    rc: int
    events: list[dict]

    def results(self, event: str) -> list[dict]:
        return [e["event_data"] for e in self.events if e.get("event") == event]

    def changed(self) -> int:
        return sum(1 for d in self.results("runner_on_ok") if d.get("res", {}).get("changed"))


# ansible-runner's environment for play(): this checkout's ansible.cfg, and the venv's tools first however pytest
# was started.
RUNNER_ENV = {
    "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
    "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
}


def play(b: Bed, private: Path, playbook: Path, extravars: dict, tags: str | None = None) -> Run:
    """playbook on bed b through ansible-runner (in the new folder private), extravars over the bed's vars.yml."""
    private.mkdir(parents=True)
    events: list[dict] = []
    bed_vars = yaml.safe_load((b.path / "vars.yml").read_text())
    result = ansible_runner.run(
        private_data_dir=str(private),
        playbook=str(playbook),
        inventory=str(b.path / "inventory.yml"),
        extravars=dict(bed_vars, **extravars),
        quiet=True,
        tags=tags,
        event_handler=lambda e: events.append(e) or True,
        envvars=RUNNER_ENV,
    )
    return Run(status=result.status, rc=result.rc, events=events)


def failed(run: Run) -> dict:
    """The message of each host's failed task."""
    return {d.get("host"): d.get("res", {}).get("msg", "") for d in run.results("runner_on_failed")}


def bed_output(*args: str) -> list[str]:
    """The lines scripts/testbed prints for args."""
    out = subprocess.run([str(ROOT / "scripts" / "testbed"), *args], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()


def run_testbed(*args: str) -> str:
    """The last line scripts/testbed prints (for up: the bed's directory)."""
    lines = bed_output(*args)
    return lines[-1] if lines else ""


@contextlib.contextmanager
def fresh_bed(name: str, nodes: int):
    """A bed of new nodes under name, removed afterwards."""
    run_testbed("down", "--name", name)
    path = Path(run_testbed("up", "--nodes", str(nodes), "--name", name))
    try:
        yield Bed(name=name, path=path, nodes=[f"node{i}" for i in range(1, nodes + 1)])
    finally:
        run_testbed("down", "--name", name)


@pytest.fixture(scope="module")
def bed4():
    """Four fresh nodes, removed afterwards."""
    with fresh_bed("it-lifecycle", 4) as bed:
        yield bed


@pytest.fixture
def site(tmp_path):
    """Run site.yml (or another playbook; optionally some tags, check mode) through ansible-runner."""

    def _run(
        inventory: Path,
        tags: str = "",
        check: bool = False,
        extravars: dict | None = None,
        playbook: Path = ROOT / "site.yml",
    ) -> Run:
        private = tmp_path / f"runner-{len(list(tmp_path.glob('runner-*')))}"
        private.mkdir()
        events: list[dict] = []
        result = ansible_runner.run(
            private_data_dir=str(private),
            playbook=str(playbook),
            inventory=str(inventory),
            tags=tags or None,
            cmdline="--check" if check else None,
            extravars=extravars or {},
            envvars={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "PATH": os.environ["PATH"]},
            quiet=True,
            event_handler=lambda e: events.append(e) or True,
        )
        shutil.rmtree(private / "artifacts", ignore_errors=True)
        return Run(status=result.status, rc=result.rc, events=events)

    return _run


def remote_calls(bed: Bed, run: Run) -> dict[str, int]:
    """Module runs on each node, counted from the run's events (tests/play_record.py, which the benchmarks share)."""
    record = PlayRecord(bed.nodes)
    for event in run.events:
        record.handle(event)
    return record.per_host
