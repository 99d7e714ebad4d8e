"""Test-bed stand-in for GTSfM's package: importable when the checkout is on PYTHONPATH."""

STAND_IN = True
