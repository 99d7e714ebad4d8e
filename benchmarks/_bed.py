"""What the benchmark scripts share: progress lines, output tails, and scripts/testbed."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class BenchError(RuntimeError):
    """A step of a benchmark failed; the message says which and shows its output."""


def log(msg: str) -> None:
    """A time-stamped progress line on stderr (the table goes to stdout)."""
    print(f"[{datetime.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def tail(text: str, lines: int = 40) -> str:
    return "\n".join((text or "").rstrip().splitlines()[-lines:])


def testbed(*args: str) -> str:
    """Run scripts/testbed; its stdout, or BenchError with its stderr's tail."""
    res = subprocess.run(
        [str(ROOT / "scripts" / "testbed"), *args], cwd=ROOT, text=True, capture_output=True, check=False
    )
    if res.returncode != 0:
        raise BenchError(f"scripts/testbed {' '.join(args)} failed ({res.returncode}):\n{tail(res.stderr)}")
    return res.stdout
