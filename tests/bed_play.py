"""ansible-playbook against a test bed from outside ansible-runner, as the job tests and the fault campaign run it.

tests/multihost/test_gtsfm_job.py and tests/faults/test_faults.py both start plays this way (a play they follow,
stop or read the output of), and both run gtsfm_run.yml with the stand-in of GTSfM's HEAD runner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
FILES = ROOT / "tests" / "multihost" / "files"
GTSFM_RUN = ROOT / "playbooks" / "gtsfm_run.yml"
# gtsfm_run's settings for the stand-in runner that unpack_stand_in puts in the bed user's home.
STAND_IN = {
    "gtsfm_run_python": "/usr/bin/python3",
    "gtsfm_run_checkout": "/home/gtsfm/gtsfm_head",
    "gtsfm_run_worker_memory_limit": "1GB",
}


def env(**extra: str) -> dict:
    """The environment of a play: this checkout's ansible.cfg; extra are more variables."""
    return dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), **extra)


def command(bed, book: Path, *args: str, extravars: dict | None = None) -> list[str]:
    """ansible-playbook book on the bed's inventory and vars.yml, with args and extravars (one -e of JSON)."""
    cmd = [PLAYBOOK, "-i", str(bed.path / "inventory.yml"), "-e", "@" + str(bed.path / "vars.yml"), *args]
    if extravars is not None:
        cmd += ["-e", json.dumps(extravars)]
    return cmd + [str(book)]


def gtsfm_run(bed, *args: str, **extravars) -> list[str]:
    """gtsfm_run.yml with the stand-in runner and extravars (full variable names)."""
    return command(bed, GTSFM_RUN, *args, extravars=dict(STAND_IN, **extravars))


def run(cmd: list[str], timeout: int, **extra_env: str) -> subprocess.CompletedProcess:
    """Run cmd to its end; its output captured as text, its return code not checked."""
    return subprocess.run(cmd, capture_output=True, text=True, env=env(**extra_env), timeout=timeout, check=False)


def start(cmd: list[str], **extra_env: str) -> subprocess.Popen:
    """Start cmd in a session of its own (so a signal reaches its whole group), stderr into stdout."""
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env(**extra_env),
        start_new_session=True,
    )


def unpack_stand_in(bed) -> None:
    """The stand-in runner (tests/multihost/files/gtsfm_head) and a one-file dataset in the scheduler's home."""
    subprocess.run(
        f"tar -C {FILES} -cf - gtsfm_head | ssh -F {bed.path}/ssh_config node1 "
        "'tar -xf - && mkdir -p data/standin && echo x > data/standin/image.txt'",
        shell=True,
        check=True,
    )
