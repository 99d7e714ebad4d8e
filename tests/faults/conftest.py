"""The fault campaign's fixtures: one 4-node bed, site.yml through ansible-runner, and the report it writes.

Each case records one row (case, step, what the user saw, what was left, the re-run, bytes re-sent); at the end of
the session the rows become docs/faults.md, so the table is what this run found, not typed by hand.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import ansible_runner
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("multihost_helpers", ROOT / "tests" / "multihost" / "conftest.py")
helpers = importlib.util.module_from_spec(_spec)
sys.modules["multihost_helpers"] = helpers  # dataclasses look their module up there
_spec.loader.exec_module(helpers)  # type: ignore[union-attr]
Bed, Run, run_testbed = helpers.Bed, helpers.Run, helpers.run_testbed

ENV = {
    "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
    "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
}
REPORT = ROOT / "docs" / "faults.md"
ROWS: list[dict] = []
BED = "faults"
# Slow enough links that a long step can be caught in the middle (the env: about 60 MB).
LINK_RATE = os.environ.get("GTSFM_FAULTS_LINK_RATE", "40mbit")


class FaultBed(Bed):
    def container(self, host: str) -> str:
        return f"gtsfm-{self.name}-{host}"

    def podman(self, *args: str) -> None:
        subprocess.run(["podman", *args], check=True, capture_output=True)

    def wait_ssh(self, host: str, seconds: int = 60) -> None:
        deadline = time.monotonic() + seconds
        while self.ssh(host, "true", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"{host} did not come back")
            time.sleep(1)

    def restart(self, host: str) -> None:
        """Bring a stopped or killed node back as the bed made it (its address, names and shaped link)."""
        run_testbed("up", "--nodes", str(len(self.nodes)), "--name", self.name, "--link-rate", LINK_RATE)
        self.wait_ssh(host)

    def vars(self) -> dict:
        return yaml.safe_load((self.path / "vars.yml").read_text())


@pytest.fixture(scope="session")
def bed4():
    run_testbed("down", "--name", BED)
    path = Path(run_testbed("up", "--nodes", "4", "--name", BED, "--link-rate", LINK_RATE))
    try:
        yield FaultBed(name=BED, path=path, nodes=[f"node{i}" for i in range(1, 5)])
    finally:
        run_testbed("down", "--name", BED)


def _events_run(
    bed: Bed, playbook: Path, extravars: dict, private: Path, background: bool = False, tags: str | None = None
):
    private.mkdir(parents=True, exist_ok=True)
    events: list[dict] = []
    kwargs = dict(
        private_data_dir=str(private),
        playbook=str(playbook),
        inventory=str(bed.path / "inventory.yml"),
        extravars=dict(bed.vars(), **extravars),
        quiet=True,
        envvars=ENV,
        tags=tags,
        event_handler=lambda e: events.append(e) or True,
    )
    if background:
        thread, runner = ansible_runner.run_async(**kwargs)
        return thread, runner, events
    result = ansible_runner.run(**kwargs)
    return Run(status=result.status, rc=result.rc, events=events)


@pytest.fixture
def site(tmp_path):
    """site.yml (or a playbook, some tags) on the bed through ansible-runner.

    background=True returns (thread, runner, events)."""
    count = iter(range(100))

    def _run(
        bed: Bed,
        extravars: dict | None = None,
        playbook: Path = ROOT / "site.yml",
        background: bool = False,
        tags: str | None = None,
    ):
        return _events_run(bed, playbook, extravars or {}, tmp_path / f"run{next(count)}", background, tags)

    return _run


def failures(run: Run) -> list[tuple[str, str]]:
    out = []
    for kind in ("runner_on_failed", "runner_on_unreachable"):
        for d in run.results(kind):
            out.append((d.get("host"), str((d.get("res") or {}).get("msg") or "")))
    return out


def saw(run: Run) -> str:
    """What the user saw: the first failure's host and message, in one line."""
    found = failures(run)
    if not found:
        return "no failure"
    host, msg = found[0]
    return f"{host}: " + " ".join(msg.split())[:220]


@pytest.fixture
def report():
    def _row(case: str, step: str, saw_text: str, left: str, rerun: str, resent: str) -> None:
        ROWS.append({"case": case, "step": step, "saw": saw_text, "left": left, "rerun": rerun, "resent": resent})

    return _row


def pytest_sessionfinish(session, exitstatus):  # pylint: disable=unused-argument
    if not ROWS:
        return
    lines = [
        "# Fault campaign",
        "",
        f"Written by `make test-faults` (tests/faults/) on a 4-node test bed with {LINK_RATE} links; each row is "
        "what that "
        "run saw. A case that failed its checks has no row: its test failed.",
        "",
        "| case | step | what the user saw | what was left | re-run | bytes re-sent |",
        "|---|---|---|---|---|---|",
    ]
    for r in ROWS:
        cells = [
            r[k].replace("|", "\\|").replace("\n", " ") for k in ("case", "step", "saw", "left", "rerun", "resent")
        ]
        lines.append("| " + " | ".join(cells) + " |")
    # Only a run of the whole campaign is the campaign's table; a selection (-k, -m, one test) goes to .cache.
    (ROOT / ".cache").mkdir(exist_ok=True)
    whole = not (
        session.config.option.keyword
        or session.config.option.markexpr
        or any("::" in str(arg) for arg in session.config.args)
    )
    target = REPORT if whole else ROOT / ".cache" / "faults-partial.md"
    target.parent.mkdir(exist_ok=True)
    target.write_text("\n".join(lines) + "\n")
    (ROOT / ".cache" / "faults.json").write_text(json.dumps(ROWS, indent=1) + "\n")


def wait_for(predicate, seconds: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")
