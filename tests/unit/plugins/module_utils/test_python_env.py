# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The environment layout: fingerprint, probe states, atomic publish, pruning, uv and conda command lines."""
from __future__ import annotations

import os
import zipfile

import pytest

from ansible_collections.gtsfm.cluster.plugins.module_utils import _python_env as pe

FP = "a" * 64
FP2 = "b" * 64


def finished(prefix, fp):
    real = pe.paths(str(prefix), fp)["real"]
    os.makedirs(os.path.join(real, "bin"))
    pe.write_record(real, fp, {"x": 1})
    return real


def test_fingerprint_is_stable_and_order_free():
    assert pe.fingerprint({"a": 1, "b": [1, 2]}) == pe.fingerprint({"b": [1, 2], "a": 1})
    assert pe.fingerprint({"a": 1}) != pe.fingerprint({"a": 2})


def test_inputs_per_manager(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n")
    (tmp_path / "uv.lock").write_text("version = 1\n")
    (tmp_path / "env.yml").write_text("name: x\n")
    assert pe.read_inputs("uv", ["dask"], None, None, None) == {"manager": "uv", "requirements": ["dask"]}
    project = pe.read_inputs("uv", [], str(tmp_path), None, None)
    assert project["uv.lock"] == "version = 1\n" and "pyproject.toml" in project
    assert pe.read_inputs("conda", [], None, str(tmp_path / "env.yml"), None)["env_file"] == "name: x\n"
    assert pe.read_inputs("archive", [], None, None, None, archive_sha256="f" * 64)["archive_sha256"] == "f" * 64
    with pytest.raises(pe.EnvError, match="uv.lock.*conda_env_checkout_dest"):
        (tmp_path / "uv.lock").unlink()
        pe.read_inputs("uv", [], str(tmp_path), None, None)


def test_probe_states(tmp_path):
    prefix = str(tmp_path / "env")
    assert pe.probe(prefix, FP)["state"] == "missing"
    real = finished(prefix, FP)
    found = pe.probe(prefix, FP)
    assert found["state"] == "missing" and found["staged"] and not found["done"]
    pe.publish(prefix, FP)
    found = pe.probe(prefix, FP)
    assert found["state"] == "current" and found["done"] and os.readlink(prefix) == os.path.basename(real)
    assert pe.probe(prefix, FP2)["state"] == "other"
    os.unlink(os.path.join(real, pe.RECORD))
    assert pe.probe(prefix, FP)["state"] == "broken"


def test_interrupted_build_never_looks_done(tmp_path):
    prefix = str(tmp_path / "env")
    part = pe.paths(prefix, FP)["part"]
    os.makedirs(os.path.join(part, "bin"))
    assert not pe.probe(prefix, FP)["staged"] and not pe.probe(prefix, FP)["done"]
    with pytest.raises(pe.EnvError, match="no finished environment"):
        pe.publish(prefix, FP)
    assert not os.path.lexists(prefix)


def test_publish_switches_atomically_and_prunes_old_envs(tmp_path):
    prefix = str(tmp_path / "env")
    old = finished(prefix, FP)
    pe.publish(prefix, FP)
    new = finished(prefix, FP2)
    leftover = pe.paths(prefix, "c" * 64)["part"]
    os.makedirs(leftover)
    (tmp_path / "env.notes").write_text("mine")
    removed = pe.publish(prefix, FP2)
    assert sorted(removed) == sorted([old, leftover])
    assert os.readlink(prefix) == os.path.basename(new) and (tmp_path / "env.notes").exists()
    assert pe.publish(prefix, FP2) == []


def test_a_directory_of_the_users_own_is_never_replaced(tmp_path):
    prefix = tmp_path / "env"
    prefix.mkdir()
    finished(prefix, FP)
    with pytest.raises(pe.EnvError, match="not the link this role manages"):
        pe.publish(str(prefix), FP)
    assert prefix.is_dir() and not prefix.is_symlink()
    assert pe.probe(str(prefix), FP)["state"] == "foreign"


def test_uv_commands_for_requirements_and_project():
    req = pe.uv_commands("/u/uv", "/usr/bin/python3", "/e.x.part", ["dask"], None, None, [],
                         ["http://h/w/"], True)
    assert req[0] == ["/u/uv", "venv", "--quiet", "--python", "/usr/bin/python3", "/e.x.part"]
    assert req[1][-4:] == ["--find-links", "http://h/w/", "--no-index", "dask"]
    proj = pe.uv_commands("/u/uv", "/usr/bin/python3", "/e.x.part", [], "/src", "https://mirror/simple", [], [],
                          False)
    assert proj == [["/u/uv", "sync", "--quiet", "--frozen", "--no-install-project", "--python", "/usr/bin/python3",
                     "--directory", "/src", "--index-url", "https://mirror/simple"]]


def test_conda_commands():
    assert pe.conda_commands("/m/bin/conda", "/e.part", "/src/environment_linux.yml", ["https://mirror/cf"], False) \
        == [["/m/bin/conda", "env", "create", "--yes", "--prefix", "/e.part", "--file", "/src/environment_linux.yml",
             "-c", "https://mirror/cf", "--override-channels"]]
    micromamba = pe.conda_commands("/b/micromamba", "/e.part", "/f.yml", [], False)
    assert micromamba[0][:3] == ["/b/micromamba", "create", "--yes"]


def test_pick_uv_wheel_from_pypi_page_and_listing():
    page = ('<a href="https://files/uv-0.9.1-py3-none-manylinux_2_17_x86_64.whl#sha256=1">x</a>'
            '<a href="https://files/uv-0.10.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl">y</a>'
            '<a href="https://files/uv-0.10.0-py3-none-macosx_11_0_arm64.whl">z</a>'
            '<a href="https://files/uv-0.10.0.tar.gz">s</a>')
    assert pe.pick_uv_wheel(page, "https://pypi.org/simple/uv/", "", "x86_64").endswith(
        "uv-0.10.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert "0.9.1" in pe.pick_uv_wheel(page, "https://pypi.org/simple/uv/", "0.9.1", "x86_64")
    listing = '<a href="uv-0.13.9-py3-none-manylinux_2_17_x86_64.whl">uv</a>'
    assert pe.pick_uv_wheel(listing, "http://10.0.0.1:8000/", "", "x86_64") == \
        "http://10.0.0.1:8000/uv-0.13.9-py3-none-manylinux_2_17_x86_64.whl"
    with pytest.raises(pe.EnvError, match="no uv wheel for manylinux aarch64"):
        pe.pick_uv_wheel(listing, "http://10.0.0.1:8000/", "", "aarch64")


def test_extract_uv_from_a_wheel(tmp_path):
    wheel = tmp_path / "uv-0.1.0-py3-none-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("uv-0.1.0.data/scripts/uv", "#!/bin/sh\necho uv\n")
    dest = tmp_path / "bin" / "uv"
    pe.extract_uv(str(wheel), str(dest))
    assert dest.read_text().startswith("#!/bin/sh") and os.access(dest, os.X_OK)
    bad = tmp_path / "other.whl"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("x/y", "")
    with pytest.raises(pe.EnvError, match="not a uv wheel"):
        pe.extract_uv(str(bad), str(dest))
