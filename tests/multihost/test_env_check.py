"""The env is proven usable before any long work (issue 27), on a real 3-node bed of Debian bookworm nodes that
lack libGL and libgomp (the image has neither, nor Graphviz).

The env is conda_env's uv route from the bed's wheelhouse (dask, distributed, asyncssh); two small packages put
into it load a missing system library at import, as opencv-python (libGL.so.1) and open3d (libgomp.so.1) do:
- site.yml imports the env's declared packages on every node in its one read per node, and warns about `dot` on
  the scheduler alone;
- a re-run refuses each node whose env does not import, naming the library and Debian's package with the fix;
- gtsfm_run refuses the job from the scheduler before the dataset is staged, naming each node, library, package
  and fix, and the scheduler's missing `dot`, in seconds, without a traceback.
The same against real wheels (torch CPU, PyPI's torchvision, opencv-python, lightgbm): tests/heavy, make test-heavy.
Run under the bed lock: flock /tmp/gtsfm-bed.lock .venv/bin/python -m pytest tests/multihost/test_env_check.py
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from conftest import failed, fresh_bed, play

ROOT = Path(__file__).resolve().parents[2]
# What opencv-python and open3d do at import, in two lines each.
PACKAGES = {
    "needs_gl": "import ctypes\nctypes.CDLL('libGL.so.1')\n",
    "needs_gomp": "import ctypes\nctypes.CDLL('libgomp.so.1')\n",
}
PURELIB = "~/gtsfm-env/bin/python -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])'"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The bed after site.yml, its env holding the two packages on every node (needs_gomp not on node3)."""
    with fresh_bed("envcheck", 3) as b:
        private = tmp_path_factory.mktemp("runner")
        site = play(b, private / "site", ROOT / "site.yml", {})
        assert site.status == "successful", failed(site)
        for host in b.nodes:
            for name, text in PACKAGES.items():
                if host == "node3" and name == "needs_gomp":
                    continue
                b.ssh(host, f"d=$({PURELIB})/{name} && mkdir -p $d && printf %s {shlex.quote(text)} > $d/__init__.py")
        yield {"bed": b, "site": site, "private": private}


def test_site_imports_the_declared_packages_and_warns_about_dot_on_the_scheduler_only(world):
    site = world["site"]
    assert site.status == "successful", failed(site)
    probes = [
        d
        for d in site.results("runner_on_ok")
        if d.get("task") == "Read every node's environment after the changes (reads only)"
    ]
    assert sorted(d["host"] for d in probes) == ["node1", "node2", "node3"]
    for d in probes:
        assert [m["name"] for m in d["res"]["imported"]] == ["dask", "distributed", "asyncssh"], d["res"]
        assert d["res"]["import_problems"] == []
    warned = [
        d["host"]
        for d in site.results("runner_on_ok")
        if "has no Graphviz 'dot'" in str(d.get("res", {}).get("msg", ""))
    ]
    assert warned == ["node1"]


def test_conda_env_refuses_each_node_naming_the_library_and_the_debian_package(world):
    run = play(
        world["bed"],
        world["private"] / "again",
        ROOT / "site.yml",
        {"conda_env_imports": ["dask", "needs_gl", "needs_gomp"]},
        tags="conda_env",
    )
    msgs = failed(run)
    assert sorted(msgs) == ["node1", "node2", "node3"], msgs
    for host, msg in msgs.items():
        assert msg.startswith(
            f"conda_env: {host}: ~/gtsfm-env/bin/python does not import what the environment holds"
        ), msg
        assert (
            "\n- import needs_gl fails: libGL.so.1 is missing (OSError: libGL.so.1: cannot open shared object "
            "file: No such file or directory). On Debian GNU/Linux 12 (bookworm) the package libgl1 provides "
            "it. Fix: sudo apt-get install libgl1 (needs root: ask an admin)"
        ) in msg, msg
        if host == "node3":
            assert "\n- import needs_gomp fails: it is not installed in the environment" in msg
        else:
            assert "libgomp.so.1 is missing" in msg and "Fix: sudo apt-get install libgomp1" in msg
        assert "Traceback" not in msg


def test_gtsfm_run_refuses_before_staging_naming_nodes_libraries_and_dot(world, tmp_path):
    b = world["bed"]
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "image.txt").write_text("x\n")
    run = play(
        b,
        tmp_path / "run",
        ROOT / "playbooks" / "gtsfm_run.yml",
        {
            "gtsfm_run_imports": ["dask", "distributed", "needs_gl", "needs_gomp"],
            "gtsfm_run_graphviz": "fail",
            "gtsfm_run_dataset_src": str(tmp_path / "ds"),
            "gtsfm_run_fetch": False,
        },
    )
    msgs = failed(run)
    assert list(msgs) == ["node1"], msgs
    lines = msgs["node1"].splitlines()
    assert lines[0] == (
        "env_check: /home/gtsfm/gtsfm-env/bin/python on 3 of 3 nodes does not hold what the job "
        "needs (checked from node1 over SSH as Dask starts it; nothing was started):"
    ), lines
    assert lines[1].startswith("- node1, node2, node3: import needs_gl fails: libGL.so.1 is missing (OSError: ")
    assert "the package libgl1 provides it. Fix: sudo apt-get install libgl1" in lines[1]
    assert lines[2].startswith("- node1, node2: import needs_gomp fails: libgomp.so.1 is missing")
    assert "Fix: sudo apt-get install libgomp1" in lines[2]
    assert lines[3].startswith("- node3: import needs_gomp fails: it is not installed in the environment")
    assert lines[4].startswith(
        "- node1: Graphviz dot is not on PATH (/home/gtsfm/gtsfm-env/bin first); GTSfM's runner renders its process "
        "graph with it and stops without it. Fix: sudo apt-get install graphviz"
    )
    assert len(lines) == 5 and "Traceback" not in msgs["node1"]
    # Refused before any long work: nothing staged, no job.
    assert b.ssh("node1", "test -e ~/gtsfm-data", check=False).returncode != 0
    assert b.ssh("node1", "test -e ~/.cache/gtsfm.cluster/jobs/last", check=False).returncode != 0
