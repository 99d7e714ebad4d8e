"""ansible-playbook on the controller itself (connection local), as the action plugins' tests run their plays."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def run_localhost(book: Path, **extra: str) -> subprocess.CompletedProcess:
    """Run book on localhost with this checkout's ansible.cfg; extra are environment variables."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_LOCALHOST_WARNING="false", **extra)
    # The interpreter pinned: interpreter discovery may find a pyenv shim that runs nothing.
    return subprocess.run(
        [PLAYBOOK, "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable, str(book)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
