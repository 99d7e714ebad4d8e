# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The env check: what an env declares, its import names, the node half run for real in a scratch venv (a package
that loads a missing library, one that crashes, one that hangs), and one sentence per failure."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from ansible_collections.gtsfm.cluster.plugins.module_utils import _env_check as ec

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from scratch_venv import scratch_venv  # noqa: E402  pylint: disable=wrong-import-position

DEBIAN = {"ID": "debian", "VERSION_ID": "12", "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)"}
UBUNTU = {"ID": "ubuntu", "ID_LIKE": "debian", "PRETTY_NAME": "Ubuntu 22.04.4 LTS"}
ROCKY = {"ID": "rocky", "ID_LIKE": "rhel centos fedora", "VERSION_ID": "9.3", "PRETTY_NAME": "Rocky Linux 9.3"}
CENTOS7 = {"ID": "centos", "ID_LIKE": "rhel fedora", "VERSION_ID": "7", "PRETTY_NAME": "CentOS Linux 7 (Core)"}
ARCH = {"ID": "arch", "PRETTY_NAME": "Arch Linux"}
# The shape of GTSfM's environment_linux.yml (conda entries, then pip's).
ENV_FILE = """\
name: gtsfm-v1
channels:
  - conda-forge
dependencies:
  # python essentials
  - python=3.12
  - pip
  - conda-forge::python-graphviz
  - toolz =1.1.0
  - matplotlib>=3.5
  - msgpack-python=1.1.1   # a comment
  - pip:
      - torch==2.5.1
      - opencv-python>=4.5.4.60
      - trimesh[easy]
      - "pyglet<2"
  - open3d
variables:
  - not: a dependency
"""


# ---------------------------------------------------------------- what the env declares


@pytest.mark.parametrize(
    "spec, name",
    [
        ("dask", "dask"),
        ("Dask_ML>=1.0", "dask-ml"),
        ("trimesh[easy]", "trimesh"),
        ("pyglet<2", "pyglet"),
        ("torch==2.5.1 ; platform_system=='Linux'", "torch"),
        ("pkg @ https://x/pkg-1.0.tar.gz", "pkg"),
        ("./wheels/pycolmap-4.2.1-cp311-cp311-manylinux_2_28_x86_64.whl", "pycolmap"),
        ("https://host/gtsam_develop-4.3a1-cp311-none-any.whl", "gtsam-develop"),
        ("git+https://host/repo.git", None),
        ("-r other.txt", None),
        ("", None),
        ("# comment", None),
        ("numpy (>=1.20)", "numpy"),
    ],
)
def test_requirement_names(spec, name):
    assert ec.requirement_name(spec) == name


PYPROJECT = """\
[build-system]
requires = ["setuptools"]

[project]
name = "gtsfm"
dependencies = [
    "dask>=2024.1",
    'gtsam-develop==4.3a1',  # the factor graphs
    "opencv-python",
]

[project.optional-dependencies]
dev = ["pytest"]
"""


def test_pyproject_dependencies_with_and_without_tomllib(monkeypatch):
    assert ec.pyproject_dependencies(PYPROJECT) == ["dask", "gtsam-develop", "opencv-python"]
    monkeypatch.setitem(sys.modules, "tomllib", None)  # Python < 3.11: the fallback reads the same array
    assert ec.pyproject_dependencies(PYPROJECT) == ["dask", "gtsam-develop", "opencv-python"]
    assert ec.pyproject_dependencies("[tool.x]\na = 1\n") == []


def test_env_file_entries_conda_and_pip():
    assert ec.env_file_dependencies(ENV_FILE) == [
        ("conda", "python"),
        ("conda", "pip"),
        ("conda", "python-graphviz"),
        ("conda", "toolz"),
        ("conda", "matplotlib"),
        ("conda", "msgpack-python"),
        ("pip", "torch"),
        ("pip", "opencv-python"),
        ("pip", "trimesh"),
        ("pip", "pyglet"),
        ("conda", "open3d"),
    ]


def test_declared_per_manager_record():
    assert ec.declared({"spec": {"inputs": {"manager": "uv", "requirements": ["dask", "Py_Colmap==4"]}}}) == [
        ("pip", "dask"),
        ("pip", "py-colmap"),
    ]
    assert ec.declared({"spec": {"inputs": {"manager": "uv", "pyproject.toml": PYPROJECT, "uv.lock": ""}}})[0] == (
        "pip",
        "dask",
    )
    assert ("conda", "open3d") in ec.declared({"spec": {"inputs": {"manager": "conda", "env_file": ENV_FILE}}})
    assert ec.declared({"spec": {"inputs": {"manager": "archive", "archive_sha256": "f" * 64}}}) is None
    assert ec.declared(None) is None


def test_top_level_names_from_installed_paths():
    paths = [
        "numpy/__init__.py",
        "numpy/core/x.py",
        "numpy-2.2.dist-info/RECORD",
        "numpy.libs/libx.so",
        "six.py",
        "_cffi_backend.cpython-311-x86_64-linux-gnu.so",
        "google/protobuf/__init__.py",
        "google/api/__init__.py",
        "tests/__init__.py",
        "../../bin/f2py",
        "__pycache__/six.cpython-311.pyc",
        "distutils-precedence.pth",
    ]
    assert ec.top_level(paths) == ["numpy", "six", "google.api", "google.protobuf"]
    assert ec.top_level(["_private/__init__.py"]) == ["_private"]  # nothing public: the private one counts


# ---------------------------------------------------------------- the node half, run for real


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A scratch venv (no pip) whose site-packages the tests fill with small packages."""
    root = tmp_path_factory.mktemp("env") / "env"
    site = scratch_venv(root)
    return root, site


def package(site, name, body, dist=None, top_level=None, version="1.0", requires=()):
    """A package `name` whose __init__ runs body, with a dist-info (top_level.txt when given, RECORD always)."""
    os.makedirs(os.path.join(site, name), exist_ok=True)
    with open(os.path.join(site, name, "__init__.py"), "w") as f:
        f.write(textwrap.dedent(body))
    dist = dist or name
    info = os.path.join(site, f"{dist.replace('-', '_')}-{version}.dist-info")
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
            + "".join(f"Requires-Dist: {r}\n" for r in requires)
        )
    with open(os.path.join(info, "RECORD"), "w") as f:
        f.write(f"{name}/__init__.py,,\n{os.path.basename(info)}/RECORD,,\n")
    if top_level is not None:
        with open(os.path.join(info, "top_level.txt"), "w") as f:
            f.write("\n".join(top_level) + "\n")


def record(root, inputs):
    real = os.path.realpath(root)
    with open(os.path.join(real, ".gtsfm-env.json"), "w") as f:
        json.dump({"fingerprint": "a" * 64, "spec": {"inputs": inputs}}, f)


def python(root):
    return str(root / "bin" / "python")


def test_a_missing_library_is_named_with_the_distribution_package_and_the_fix(venv, monkeypatch):
    root, site = venv
    # What open3d does at import (OSError from the loader), with a library no machine has.
    package(site, "needs_lib", "import ctypes\nctypes.CDLL('libgtsfm-absent.so.7')\n")
    outcome = ec.run_local(python(root), ["json", "needs_lib"])
    report = outcome["report"]
    assert [e["ok"] for e in report["imports"]] == [True, False]
    assert "libgtsfm-absent.so.7: cannot open shared object file" in report["imports"][1]["errors"][0]
    monkeypatch.setitem(ec.LIBRARIES, "libgtsfm-absent.so.7", ("libgtsfm-absent7", "gtsfm-absent"))
    for release, package_name, command in [
        (DEBIAN, "libgtsfm-absent7", "sudo apt-get install libgtsfm-absent7"),
        (UBUNTU, "libgtsfm-absent7", "sudo apt-get install libgtsfm-absent7"),
        (ROCKY, "gtsfm-absent", "sudo dnf install gtsfm-absent"),
        (CENTOS7, "gtsfm-absent", "sudo yum install gtsfm-absent"),
    ]:
        report["os"] = release
        (text,) = ec.diagnose(outcome, python(root))
        assert text.startswith("import needs_lib fails: libgtsfm-absent.so.7 is missing (OSError: ")
        assert f"On {release['PRETTY_NAME']} the package {package_name} provides it. Fix: {command}" in text
        assert "Traceback" not in text and 'File "' not in text
    report["os"] = ARCH
    (text,) = ec.diagnose(outcome, python(root))
    assert "on Arch Linux" in text and "Debian/Ubuntu: libgtsfm-absent7, RHEL/Fedora: gtsfm-absent" in text


def test_declared_packages_are_mapped_to_import_names_through_the_env(venv):
    root, site = venv
    package(site, "cv2", "", dist="opencv-python", top_level=["cv2"])
    package(site, "yaml", "", dist="PyYAML")  # no top_level.txt: its RECORD tells
    record(root, {"manager": "uv", "requirements": ["opencv-python>=4", "pyyaml", "not-there==1"]})
    try:
        report = ec.run_local(python(root), [])["report"]
    finally:
        os.unlink(os.path.join(os.path.realpath(root), ".gtsfm-env.json"))
    assert report["source"] == "declared"
    assert [e["name"] for e in report["imports"]] == ["cv2", "yaml"]
    assert report["not_installed"] == ["not-there"]
    assert ec.diagnose({"report": report}, "py") == [
        "not-there is declared by the environment but not installed in it. Fix: rebuild the environment "
        "(site.yml --tags conda_env)"
    ]


def test_conda_packages_map_through_conda_meta(venv):
    root, site = venv
    real = os.path.realpath(root)
    os.makedirs(os.path.join(real, "conda-meta"), exist_ok=True)
    rel = os.path.relpath(site, real)
    package(site, "graphviz", "")
    with open(os.path.join(real, "conda-meta", "python-graphviz-0.20-pyh.json"), "w") as f:
        json.dump({"name": "python-graphviz", "files": [rel + "/graphviz/__init__.py"]}, f)
    with open(os.path.join(real, "conda-meta", "nodejs-22-h.json"), "w") as f:
        json.dump({"name": "nodejs", "files": ["bin/node"]}, f)
    record(root, {"manager": "conda", "env_file": "dependencies:\n  - python-graphviz\n  - nodejs\n  - ghost\n"})
    try:
        report = ec.run_local(python(root), [])["report"]
    finally:
        os.unlink(os.path.join(real, ".gtsfm-env.json"))
    # nodejs holds no Python: nothing to import; ghost is declared and absent.
    assert [e["name"] for e in report["imports"]] == ["graphviz"] and report["not_installed"] == ["ghost"]


def test_an_env_without_a_record_is_checked_for_dask(venv):
    root, dummy = venv
    report = ec.run_local(python(root), [])["report"]
    assert report["source"] == "default" and [e["name"] for e in report["imports"]] == ["dask", "distributed"]
    texts = ec.diagnose({"report": report}, "py")
    assert texts[0].startswith("import dask fails: it is not installed in the environment (ModuleNotFoundError")


def test_a_crash_names_the_import_it_died_in(venv):
    root, site = venv
    package(site, "crashes", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    outcome = ec.run_local(python(root), ["json", "crashes"])
    assert outcome["died_in"] == "crashes" and outcome["rc"] == -11
    (text,) = ec.diagnose(outcome, "py")
    assert text.startswith("python died (signal 11) while importing crashes")


def test_a_hanging_import_is_named_when_time_runs_out(venv):
    root, site = venv
    package(site, "hangs", "import time\ntime.sleep(60)\n")
    outcome = ec.run_local(python(root), ["hangs"], timeout=3)
    (text,) = ec.diagnose(outcome, "py")
    assert "did not end in time (still importing hangs)" in text


def test_a_missing_python_is_named(tmp_path):
    (text,) = ec.diagnose(ec.run_local(str(tmp_path / "bin" / "python"), ["json"]), str(tmp_path / "bin" / "python"))
    assert text.startswith(f"{tmp_path / 'bin' / 'python'} is not there") and "site.yml --tags conda_env" in text


def test_no_bytecode_is_written_into_the_env(venv):
    root, site = venv
    package(site, "plain", "X = 1\n")
    assert ec.run_local(python(root), ["plain"])["report"]["imports"][0]["ok"]
    assert not os.path.exists(os.path.join(site, "plain", "__pycache__"))


def test_a_cuda_torchvision_beside_a_cpu_torch_is_named(venv):
    root, site = venv
    # Stand-ins with the real metadata and the real failure (PyPI's torchvision 0.28.0 beside torch 2.13.0+cpu).
    package(site, "torch", "class version:\n    cuda = None\n", version="2.13.0+cpu")
    package(
        site,
        "torchvision",
        "raise RuntimeError('operator torchvision::nms does not exist')\n",
        version="0.28.0",
        requires=["numpy", "torch (==2.13.0)", "pillow (!=8.3.*,>=5.3.0)"],
    )
    outcome = ec.run_local(python(root), ["torch", "torchvision"])
    assert outcome["report"]["dists"] == {
        "torch": {"version": "2.13.0+cpu", "torch_pin": None, "cuda": None},
        "torchvision": {"version": "0.28.0", "torch_pin": "torch==2.13.0"},
    }
    (text,) = ec.diagnose(outcome, "py")
    assert text == (
        "import torchvision fails: torchvision 0.28.0 is built for CUDA (it requires torch==2.13.0), not for torch "
        "2.13.0+cpu (CPU) beside it (operator torchvision::nms does not exist). Fix: install the matching CPU build: "
        "pip install 'torchvision==0.28.*' --index-url https://download.pytorch.org/whl/cpu (or pin torchvision with "
        "that index in the env's requirements)"
    )


def test_dot_is_found_and_run_with_the_env_bin_first(venv, tmp_path):
    root, dummy = venv
    dot = root / "bin" / "dot"
    dot.write_text("#!/bin/sh\necho 'dot - graphviz version 2.43.0' >&2\n")
    dot.chmod(0o755)
    try:
        report = ec.run_local(python(root), ["json"], dot=True)["report"]
        assert report["dot"] == {"path": str(dot), "rc": 0, "said": "dot - graphviz version 2.43.0"}
        assert ec.dot_text(report) is None
        dot.write_text("#!/bin/sh\necho 'dot: error while loading shared libraries: libgvc.so.6' >&2\nexit 127\n")
        report = ec.run_local(python(root), ["json"], dot=True)["report"]
        assert f"Graphviz dot at {dot} does not run (dot -V: rc 127, dot: error while loading" in ec.dot_text(report)
    finally:
        dot.unlink()
    report["dot"], report["os"] = {"path": None}, DEBIAN
    text = ec.dot_text(report, ", or set x=ignore")
    assert text.startswith(f"Graphviz dot is not on PATH ({root / 'bin'} first)")
    assert (
        "Fix: sudo apt-get install graphviz (Debian GNU/Linux 12 (bookworm); needs root: ask an admin), or set "
        "x=ignore. A uv or pip environment cannot bring dot" in text
    )


# ---------------------------------------------------------------- over SSH, every host at once

FAKE_SSH = """#!/bin/sh
# ssh [options] -- HOST COMMAND: runs COMMAND here; host 'down' is unreachable.
while [ "$1" != "--" ]; do shift; done
shift
host=$1
shift
echo "$host" >> "$(dirname "$0")/hosts"
[ "$host" = down ] && { echo "ssh: connect to host down port 22: Connection refused" >&2; exit 255; }
exec sh -c "$1"
"""


def test_every_host_is_checked_over_a_non_interactive_ssh(venv, tmp_path):
    root, site = venv
    ssh = tmp_path / "ssh"
    ssh.write_text(FAKE_SSH)
    ssh.chmod(0o755)
    package(site, "needs_absent", "import ctypes\nctypes.CDLL('libgtsfm-absent.so.7')\n")
    out = ec.run_remote(["n1", "n2", "down"], python(root), ["json", "needs_absent"], dot_hosts=["n1"], ssh=str(ssh))
    assert sorted((tmp_path / "hosts").read_text().split()) == ["down", "n1", "n2"]
    assert "dot" in out["n1"]["report"] and "dot" not in out["n2"]["report"]
    per_host = {h: ec.diagnose(o, python(root)) for h, o in out.items()}
    lines = ec.group(per_host)
    assert lines[0].startswith("n1, n2: import needs_absent fails: libgtsfm-absent.so.7 is missing")
    assert lines[1].startswith(
        "down: unreachable over SSH for the check (ssh: connect to host down port 22: "
        "Connection refused). Fix: run site.yml --tags ssh_mesh,known_hosts"
    )


# ---------------------------------------------------------------- sentences from reports


def failing(name, *errors, os_release=None, dists=None):
    return {
        "report": {
            "os": os_release or DEBIAN,
            "dists": dists or {},
            "imports": [{"name": name, "ok": False, "errors": list(errors)}],
        }
    }


def test_import_error_of_an_extension_names_the_library():
    # The form an extension module's missing dependency takes (opencv-python without libGL).
    (text,) = ec.diagnose(
        failing("cv2", "ImportError: libGL.so.1: cannot open shared object file: No such file or directory"), "py"
    )
    assert text == (
        "import cv2 fails: libGL.so.1 is missing (ImportError: libGL.so.1: cannot open shared object file: No such "
        "file or directory). On Debian GNU/Linux 12 (bookworm) the package libgl1 provides it. Fix: sudo apt-get "
        "install libgl1 (needs root: ask an admin), or use an environment that brings the library itself; or replace "
        "opencv-python with opencv-python-headless in the environment (it needs no libGL)"
    )


@pytest.mark.parametrize(
    "soname, debian, rhel",
    [
        ("libgomp.so.1", "libgomp1", "libgomp"),
        ("libGL.so.1", "libgl1", "mesa-libGL"),
        ("libglib-2.0.so.0", "libglib2.0-0", "glib2"),
        ("libgthread-2.0.so.0", "libglib2.0-0", "glib2"),
        ("libSM.so.6", "libsm6", "libSM"),
        ("libXext.so.6", "libxext6", "libXext"),
        ("libXrender.so.1", "libxrender1", "libXrender"),
        ("libX11.so.6", "libx11-6", "libX11"),
        ("libgfortran.so.5", "libgfortran5", "libgfortran"),
        ("libstdc++.so.6", "libstdc++6", "libstdc++"),
        ("libEGL.so.1", "libegl1", "mesa-libEGL"),
        ("libusb-1.0.so.0", "libusb-1.0-0", "libusbx"),
        ("libtbb.so.12", "libtbb12", "tbb"),
    ],
)
def test_library_table(soname, debian, rhel):
    assert ec.system_package(soname, DEBIAN) == (debian, "sudo apt-get install " + debian)
    assert ec.system_package(soname, ROCKY) == (rhel, "sudo dnf install " + rhel)
    assert ec.system_package(soname, ARCH) == (None, None)


def test_cause_chain_counts_and_a_cuda_library_is_a_cuda_build():
    (text,) = ec.diagnose(
        failing("open3d", "ImportError: cannot load open3d", "OSError: libgomp.so.1: cannot open shared object file"),
        "py",
    )
    assert "libgomp.so.1 is missing (OSError: libgomp.so.1: cannot open shared object file)" in text
    assert "sudo apt-get install libgomp1" in text
    (text,) = ec.diagnose(failing("torch", "OSError: libcudart.so.12: cannot open shared object file"), "py")
    assert "libcudart.so.12 is a CUDA library, so this is a CUDA build on a node without CUDA" in text
    assert "download.pytorch.org/whl/cpu" in text


def test_an_old_system_libstdcxx_is_named():
    (text,) = ec.diagnose(
        failing(
            "pycolmap",
            "ImportError: /lib/x86_64-linux-gnu/libstdc++.so.6: version "
            "`GLIBCXX_3.4.32' not found (required by pycolmap.so)",
        ),
        "py",
    )
    assert text.startswith(
        "import pycolmap fails: the system's libstdc++.so.6 is older than the package needs (GLIBCXX_3.4.32 not found"
    )


def test_a_missing_dependency_names_it_and_other_failures_say_what_they_said():
    (text,) = ec.diagnose(failing("lightgbm", "ModuleNotFoundError: No module named 'narwhals'"), "py")
    assert text.startswith("import lightgbm fails: lightgbm needs narwhals, which is not installed")
    (text,) = ec.diagnose(failing("x", "ValueError: bad config", "KeyError: 'k'"), "py")
    assert text == "import x fails: ValueError: bad config | KeyError: 'k'. Fix: repair that package in the environment"


def test_torchvision_for_another_torch():
    dists = {
        "torch": {"version": "2.5.1", "cuda": "12.4"},
        "torchvision": {"version": "0.21.0", "torch_pin": "torch==2.6.0"},
    }
    (text,) = ec.diagnose(
        failing("torchvision", "RuntimeError: operator torchvision::nms does not exist", dists=dists), "py"
    )
    assert (
        "torchvision 0.21.0 is built for another torch (it requires torch==2.6.0), not for torch 2.5.1 (CUDA 12.4)"
        in text
        and "torchvision==0.20.*" in text
    )


def test_ssh_and_no_report_outcomes():
    assert ec.diagnose({"rc": 1, "died_in": None, "said": ["boom"]}, "py") == [
        "the import check with py printed no report (rc 1: boom). Fix: check that py runs there"
    ]
    assert ec.family({"ID": "fedora"}) == "rhel" and ec.family({"ID": "pop", "ID_LIKE": "ubuntu debian"}) == "debian"
    assert ec.read_output(0, "noise\n" + ec.RESULT + '{"a": 1}\n', "") == {"report": {"a": 1}}


def test_a_cv2_missing_an_x11_library_is_told_of_the_headless_build():
    (text,) = ec.diagnose(
        failing("cv2", "ImportError: libxcb.so.1: cannot open shared object file: No such file or directory"), "py"
    )
    assert "the package libxcb1 provides it" in text
    assert text.endswith(
        "or replace opencv-python with opencv-python-headless in the environment (it needs neither "
        "libGL nor the X11 libraries)"
    ), text
