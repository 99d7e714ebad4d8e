"""The action plugins' tests import tests/localhost_play.py, their one way to run a play on the controller."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
