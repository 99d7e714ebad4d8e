# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""python_env's build flow with stand-in uv and conda executables (the real ones run on the test bed)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tarfile
import zipfile
from pathlib import Path

from ansible_collections.gtsfm.cluster.plugins.modules.python_env import main

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from http_origin import Origin  # noqa: E402  pylint: disable=wrong-import-position

# A stand-in uv: `venv ... DIR` makes DIR/bin/python; `pip install` records what it installed (FAIL_UV: fails,
# after the venv exists, as a download error would).
FAKE_UV = f"""#!/bin/sh
[ "$1" = pip ] && [ -n "$FAIL_UV" ] && {{ echo "network unreachable" >&2; exit 2; }}
case "$1" in
  venv) for last; do :; done; mkdir -p "$last/bin" && ln -s {sys.executable} "$last/bin/python"
        printf '#!%s/bin/python\n' "$last" > "$last/bin/tool" ;;
  pip) for last; do :; done; py=$5; echo "$last" >> "$(dirname "$(dirname "$py")")/installed" ;;
esac
echo "$@" >> "$(dirname "$0")/calls"
"""
FAKE_CONDA = """#!/bin/sh
# conda env create --yes --prefix DIR --file FILE ...
mkdir -p "$5/bin" && cp "$7" "$5/from-env-file" && echo "$@" >> "$(dirname "$0")/calls"
"""


def tool(tmp_path, name, text):
    path = tmp_path / "tools" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def uv_args(tmp_path, **extra):
    return dict(
        dict(
            action="build",
            prefix=str(tmp_path / "env"),
            manager="uv",
            python=sys.executable,
            requirements=["dask"],
            uv=str(tool(tmp_path, "uv", FAKE_UV)),
            min_free_mb=1,
        ),
        **extra,
    )


def test_build_publishes_then_reruns_do_nothing(tmp_path, run_module):
    failed, result = run_module(main, uv_args(tmp_path))
    assert not failed and result["changed"] and result["state"] == "current", result
    prefix = tmp_path / "env"
    assert prefix.is_symlink() and os.readlink(prefix) == "env." + result["fingerprint"][:12]
    assert (prefix / "installed").read_text() == "dask\n" and (prefix / ".gtsfm-env.json").exists()
    # Built where it is used: its scripts name the real path, which never moves (the link does).
    assert (prefix / "bin" / "tool").read_text() == f"#!{os.path.realpath(prefix)}/bin/python\n"
    calls = (tmp_path / "tools" / "calls").read_text()
    failed, again = run_module(main, uv_args(tmp_path))
    assert not failed and not again["changed"] and again["fingerprint"] == result["fingerprint"]
    assert (tmp_path / "tools" / "calls").read_text() == calls, "a current env must not call uv at all"


def test_changed_requirements_rebuild_once_and_drop_the_old_env(tmp_path, run_module):
    first = run_module(main, uv_args(tmp_path))[1]
    failed, second = run_module(main, uv_args(tmp_path, requirements=["dask", "distributed"]))
    assert not failed and second["changed"] and second["fingerprint"] != first["fingerprint"]
    assert second["removed"] == [str(tmp_path / ("env." + first["fingerprint"][:12]))]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("env")) == [
        "env",
        "env." + second["fingerprint"][:12],
    ]


def test_failed_build_leaves_nothing_that_looks_done(tmp_path, run_module, monkeypatch):
    monkeypatch.setenv("FAIL_UV", "1")
    failed, result = run_module(main, uv_args(tmp_path))
    assert failed and "network unreachable" in result["msg"] and "building the environment" in result["msg"]
    assert not (tmp_path / "env").exists()
    # The half-built directory has no record: nothing takes it for done, the next build starts it afresh.
    half = [p for p in tmp_path.iterdir() if p.name.startswith("env.")]
    assert half and not (half[0] / ".gtsfm-env.json").exists()
    failed, probe = run_module(main, uv_args(tmp_path, action="probe"))
    assert not failed and probe["state"] == "missing" and not probe["staged"]
    monkeypatch.delenv("FAIL_UV")
    failed, result = run_module(main, uv_args(tmp_path))
    assert not failed and result["state"] == "current"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_check_mode_builds_nothing(tmp_path, run_module):
    failed, result = run_module(main, dict(uv_args(tmp_path), _ansible_check_mode=True))
    assert not failed and result["changed"] and not (tmp_path / "env").exists()
    assert not (tmp_path / "tools" / "calls").exists()


def test_too_little_space_stops_before_building(tmp_path, run_module):
    failed, result = run_module(main, uv_args(tmp_path, min_free_mb=1 << 40))
    assert failed and "MiB free under" in result["msg"] and "lower option min_free_mb" in result["msg"]
    assert not (tmp_path / "tools" / "calls").exists()


def test_a_caller_has_its_messages_name_its_variables(tmp_path, run_module):
    status = tmp_path / "s.json"
    failed, result = run_module(
        main,
        uv_args(
            tmp_path,
            min_free_mb=1 << 40,
            status_file=str(status),
            option_names={"min_free_mb": "conda_env_min_free_mb"},
        ),
    )
    assert failed and "lower conda_env_min_free_mb" in result["msg"] and "option min_free_mb" not in result["msg"]
    # The progress record a follow reports from says the same.
    assert "lower conda_env_min_free_mb" in json.loads(status.read_text())["msg"]


def test_missing_interpreter_is_named(tmp_path, run_module):
    failed, result = run_module(main, uv_args(tmp_path, python=str(tmp_path / "nopython")))
    assert failed and "nopython is missing on this node" in result["msg"] and "set option python" in result["msg"]


def test_probe_before_the_checkout_exists_does_not_fail(tmp_path, run_module):
    failed, result = run_module(
        main, uv_args(tmp_path, action="probe", requirements=[], project_dir=str(tmp_path / "gtsfm"))
    )
    assert not failed and result["fingerprint"] is None and "pyproject.toml" in result["inputs_error"]
    assert result["home"] == os.path.expanduser("~")


def test_conda_manager_builds_from_the_env_file(tmp_path, run_module):
    env_file = tmp_path / "environment_linux.yml"
    env_file.write_text("name: gtsfm-v1\nchannels: [conda-forge]\n")
    conda = tool(tmp_path, "conda", FAKE_CONDA)
    args = dict(
        action="build",
        prefix=str(tmp_path / "env"),
        manager="conda",
        conda=str(conda),
        env_file=str(env_file),
        channels=["https://mirror/conda-forge"],
        min_free_mb=1,
    )
    failed, result = run_module(main, args)
    assert not failed and result["changed"] and result["spec"]["inputs"]["env_file"] == env_file.read_text()
    assert (tmp_path / "env" / "from-env-file").read_text() == env_file.read_text()
    assert "--override-channels" in (tmp_path / "tools" / "calls").read_text()
    failed, again = run_module(main, args)
    assert not failed and not again["changed"]
    failed, missing = run_module(
        main, dict(args, conda=str(tmp_path / "none" / "conda"), prefix=str(tmp_path / "env2"))
    )
    assert failed and "conda executable" in missing["msg"] and "set option conda" in missing["msg"]


def test_archive_manager_unpacks_and_refuses_escapes(tmp_path, run_module):
    archive = tmp_path / "env.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"#!/bin/sh\n"
        info = tarfile.TarInfo("bin/python")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    args = dict(action="build", prefix=str(tmp_path / "env"), manager="archive", archive=str(archive), min_free_mb=1)
    failed, result = run_module(main, args)
    assert not failed and (tmp_path / "env" / "bin" / "python").exists()
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../escape")
        tar.addfile(info, io.BytesIO(b""))
    failed, result = run_module(main, dict(args, archive=str(evil), prefix=str(tmp_path / "env3")))
    assert failed and "outside the environment" in result["msg"] and not (tmp_path / "escape").exists()
    # A symlink out of the environment, then a file written through it.
    (tmp_path / "elsewhere").mkdir()
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("lib")
        info.type, info.linkname = tarfile.SYMTYPE, str(tmp_path / "elsewhere")
        tar.addfile(info)
        info = tarfile.TarInfo("lib/x")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    failed, result = run_module(main, dict(args, archive=str(evil), prefix=str(tmp_path / "env4")))
    assert failed and result["msg"].startswith(
        f"python_env: unpacking {evil}: member 'lib' is a link to the absolute path"
    ), result
    assert list((tmp_path / "elsewhere").iterdir()) == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("env4")], "nothing of a refused archive stays"
    # A name that merely starts with two dots is a legal name.
    with tarfile.open(evil, "w") as tar:
        tar.addfile(tarfile.TarInfo("..hidden"), io.BytesIO(b""))
    failed, result = run_module(main, dict(args, archive=str(evil), prefix=str(tmp_path / "env5")))
    assert not failed and (tmp_path / "env5" / "..hidden").exists(), result.get("msg")


def test_uv_comes_from_a_wheelhouse_directory_on_the_node(tmp_path, run_module):
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    with zipfile.ZipFile(wheelhouse / "uv-0.13.9-py3-none-manylinux_2_17_x86_64.whl", "w") as archive:
        archive.writestr("uv-0.13.9.data/scripts/uv", FAKE_UV)
    (wheelhouse / "dask-1.0-py3-none-any.whl").write_text("")
    args = uv_args(tmp_path, uv=str(tmp_path / "bin" / "uv"), uv_index=str(wheelhouse))
    failed, result = run_module(main, args)
    assert not failed and result["state"] == "current", result.get("msg")
    assert (tmp_path / "bin" / "uv").read_text() == FAKE_UV


def test_probe_of_a_current_env_imports_its_packages(tmp_path, run_module):
    prefix = tmp_path / "env"
    failed, result = run_module(main, uv_args(tmp_path))
    assert not failed
    # The stand-in uv's env python is the test interpreter: json imports, the absent module does not.
    failed, probe = run_module(
        main, uv_args(tmp_path, action="probe", import_check=True, imports=["json", "gtsfm_absent_module"])
    )
    assert not failed and [m["name"] for m in probe["imported"]] == ["json"], probe
    assert probe["import_problems"] == [
        "import gtsfm_absent_module fails: it is not installed in the environment (ModuleNotFoundError: No module "
        "named 'gtsfm_absent_module'). Fix: add it to the environment (conda_env_requirements, the env file or "
        "pyproject.toml) and re-run site.yml --tags conda_env"
    ]
    assert not (prefix / "__pycache__").exists()
    # Not current (another fingerprint wanted): nothing to import yet.
    failed, other = run_module(main, uv_args(tmp_path, action="probe", import_check=True, requirements=["x"]))
    assert not failed and other["state"] == "other" and "import_problems" not in other


def _uv_wheel_bytes():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("uv-0.13.9.data/scripts/uv", FAKE_UV)
    return buffer.getvalue()


def test_uv_comes_from_an_index_page_with_relative_links_and_its_hash(tmp_path, run_module):
    wheel = _uv_wheel_bytes()
    name = f"uv-0.13.9-py3-none-manylinux_2_17_{os.uname()[4]}.whl"
    with Origin(tmp_path / "origin") as origin:
        origin.put("packages/ab/" + name, wheel)
        page = f'<a href="../../packages/ab/{name}#sha256={hashlib.sha256(wheel).hexdigest()}">{name}</a>'
        origin.put("simple/uv/index.html", page.encode())
        args = uv_args(tmp_path, uv=str(tmp_path / "bin" / "uv"), uv_index=origin.url("simple/uv/index.html"))
        failed, result = run_module(main, args)
        assert not failed and result["state"] == "current", result.get("msg")
        assert (tmp_path / "bin" / "uv").read_text() == FAKE_UV
        assert [r.path for r in origin.gets()] == ["/simple/uv/index.html", "/packages/ab/" + name]
        # The index gives another sum than the wheel has: refused, nothing installed.
        (tmp_path / "bin" / "uv").unlink()
        wrong = "0" * 64
        origin.put("simple/uv/index.html", page.replace(hashlib.sha256(wheel).hexdigest(), wrong).encode())
        failed, result = run_module(main, dict(args, prefix=str(tmp_path / "env2")))
    assert failed and result["msg"] == (
        f"python_env: installing uv at {tmp_path / 'bin' / 'uv'}: sha256 mismatch for "
        f"{origin.url('packages/ab/' + name)}: its index gives {wrong}, the download has "
        f"{hashlib.sha256(wheel).hexdigest()}. Nothing was installed. Fix: check the index (option uv_index) or its "
        "mirror; do not use a uv binary that fails its sum"
    )
    assert not (tmp_path / "bin" / "uv").exists()
