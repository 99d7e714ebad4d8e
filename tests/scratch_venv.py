"""A scratch venv for tests that fill its site-packages with small packages (the env check's unit tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def scratch_venv(root: Path) -> str:
    """A venv without pip at root, made from this interpreter; its site-packages folder."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    return subprocess.run(
        [str(root / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
