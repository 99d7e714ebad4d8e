"""The env check against a real heavy stack (issue 27), on a 3-node bed of Debian bookworm nodes without the X11
client libraries, libGL or Graphviz. `make test-heavy` (not in `make test`).

The env: conda_env's uv route from a wheelhouse the controller builds once - torch 2.13.0 (the CPU build),
PyPI's torchvision 0.28.0 (built for CUDA torch), opencv-python (as GTSfM's env file has it; on a bare node it
stops at libxcb.so.1, before libGL), lightgbm (its wheel brings its own OpenMP runtime), dask, distributed,
asyncssh. Shown:
- site.yml builds and copies the env, then refuses every node naming libxcb.so.1 / libxcb1 with the fix (and the
  headless build), and the torchvision built for CUDA beside the CPU torch with the build to install;
- gtsfm_run's preflight refuses the job from the scheduler in seconds, naming the nodes, the same causes and the
  scheduler's missing dot.
Run under the bed lock: flock /tmp/gtsfm-bed.lock .venv/bin/python -m pytest tests/heavy -q
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "multihost"))
from conftest import failed, fresh_bed, play  # noqa: E402  (tests/multihost is not a package)

# scripts/testbed.py, for its wheel download (the test bed's own wheelhouse comes the same way).
_spec = importlib.util.spec_from_file_location("testbed_script", ROOT / "scripts" / "testbed.py")
testbed = importlib.util.module_from_spec(_spec)
sys.modules["testbed_script"] = testbed
_spec.loader.exec_module(testbed)  # type: ignore[union-attr]

REQUIREMENTS = [
    "dask",
    "distributed",
    "asyncssh",
    "torch==2.13.0",
    "torchvision==0.28.0",
    "opencv-python==4.14.0.94",
    "lightgbm==4.7.0",
]
CACHE = Path(os.environ.get("GTSFM_TESTBED_CACHE", Path.home() / ".cache" / "gtsfm-testbed"))
WHEELHOUSE = CACHE / ("heavy-wheelhouse-" + hashlib.sha256(json.dumps(REQUIREMENTS).encode()).hexdigest()[:12])
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "any"]


def wheelhouse() -> Path:
    """The nodes' wheels (CPython 3.11, glibc 2.36), downloaded once into the test bed cache."""
    return testbed.download_wheels(
        WHEELHOUSE, ["uv", *REQUIREMENTS], *[a for p in PLATFORMS for a in ("--platform", p)]
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    wheels = wheelhouse()
    with fresh_bed("envcheck", 3) as b:
        private = tmp_path_factory.mktemp("heavy")
        started = time.time()
        site = play(
            b,
            private / "site",
            ROOT / "site.yml",
            {
                "conda_env_requirements": REQUIREMENTS,
                "conda_env_wheelhouse_src": str(wheels),
                "conda_env_uv_src": str(sorted(wheels.glob("uv-*.whl"))[0]),
                "conda_env_min_free_mb": 4096,
            },
        )
        yield {"bed": b, "site": site, "site_seconds": time.time() - started, "private": private}


CUDA_VISION = (
    "import torchvision fails: torchvision 0.28.0 is built for CUDA (it requires torch==2.13.0), not for "
    "torch 2.13.0+cpu (CPU) beside it (operator torchvision::nms does not exist). Fix: install the "
    "matching CPU build: pip install 'torchvision==0.28.*' --index-url https://download.pytorch.org/whl/cpu"
)


def test_site_builds_copies_then_refuses_each_node_by_library_and_build(world):
    msgs = failed(world["site"])
    assert sorted(msgs) == ["node1", "node2", "node3"], msgs
    for host, msg in msgs.items():
        assert msg.startswith(f"conda_env: {host}: ~/gtsfm-env/bin/python does not import"), msg
        # opencv-python 4.14 loads the X11 client library first on a bare node (libGL after it).
        assert (
            "\n- import cv2 fails: libxcb.so.1 is missing (ImportError: libxcb.so.1: cannot open shared object "
            "file: No such file or directory). On Debian GNU/Linux 12 (bookworm) the package libxcb1 provides it. "
            "Fix: sudo apt-get install libxcb1 (needs root: ask an admin)" in msg
        ), msg
        assert "or replace opencv-python with opencv-python-headless" in msg
        # lightgbm 4.7's wheel brings its own OpenMP runtime: it imports (a stand-in package shows libgomp missing:
        # tests/multihost/test_env_check.py).
        assert "import lightgbm fails" not in msg, msg
        assert "\n- " + CUDA_VISION in msg, msg
        assert "import torch fails" not in msg and "Traceback" not in msg
    print(f"site.yml (build, copy, check): {world['site_seconds']:.0f} s")


def test_gtsfm_run_preflight_refuses_in_seconds_naming_nodes_and_causes(world, tmp_path):
    started = time.time()
    run = play(
        world["bed"],
        tmp_path / "run",
        ROOT / "playbooks" / "gtsfm_run.yml",
        {
            "gtsfm_run_state": "preflight",
            "gtsfm_run_graphviz": "fail",
            "gtsfm_run_imports": ["dask", "distributed", "torch", "torchvision", "cv2", "lightgbm"],
        },
    )
    seconds = time.time() - started
    msg = failed(run)["node1"]
    lines = msg.splitlines()
    assert lines[0].startswith("env_check: /home/gtsfm/gtsfm-env/bin/python on 3 of 3 nodes does not hold"), msg
    assert lines[1].startswith("- node1, node2, node3: " + CUDA_VISION), msg
    assert lines[2].startswith("- node1, node2, node3: import cv2 fails: libxcb.so.1 is missing"), msg
    assert lines[3].startswith("- node1: Graphviz dot is not on PATH"), msg
    assert len(lines) == 4 and "lightgbm" not in msg, msg
    print(f"gtsfm_run preflight, 3 nodes with torch: {seconds:.1f} s")
