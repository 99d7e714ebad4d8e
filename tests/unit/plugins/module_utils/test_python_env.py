# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The environment layout: fingerprint, probe states, atomic publish, pruning, uv and conda command lines."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
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
    with pytest.raises(pe.EnvError, match="uv.lock.*Fix: check option project_dir"):
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
    with pytest.raises(pe.EnvError, match="not the link this module manages.*set option prefix"):
        pe.publish(str(prefix), FP)
    assert prefix.is_dir() and not prefix.is_symlink()
    assert pe.probe(str(prefix), FP)["state"] == "foreign"


def test_uv_commands_for_requirements_and_project():
    req = pe.uv_commands("/u/uv", "/usr/bin/python3", "/e.x.part", ["dask"], None, None, [], ["http://h/w/"], True)
    assert req[0] == ["/u/uv", "venv", "--quiet", "--python", "/usr/bin/python3", "/e.x.part"]
    assert req[1][-4:] == ["--find-links", "http://h/w/", "--no-index", "dask"]
    proj = pe.uv_commands("/u/uv", "/usr/bin/python3", "/e.x.part", [], "/src", "https://mirror/simple", [], [], False)
    assert proj == [
        [
            "/u/uv",
            "sync",
            "--quiet",
            "--frozen",
            "--no-install-project",
            "--python",
            "/usr/bin/python3",
            "--directory",
            "/src",
            "--index-url",
            "https://mirror/simple",
        ]
    ]


def test_conda_commands():
    assert pe.conda_commands("/m/bin/conda", "/e.part", "/src/environment_linux.yml", ["https://mirror/cf"], False) == [
        [
            "/m/bin/conda",
            "env",
            "create",
            "--yes",
            "--prefix",
            "/e.part",
            "--file",
            "/src/environment_linux.yml",
            "-c",
            "https://mirror/cf",
            "--override-channels",
        ]
    ]
    micromamba = pe.conda_commands("/b/micromamba", "/e.part", "/f.yml", [], False)
    assert micromamba[0][:3] == ["/b/micromamba", "create", "--yes"]


def test_pick_uv_wheel_from_pypi_page_and_listing():
    page = (
        '<a href="https://files/uv-0.9.1-py3-none-manylinux_2_17_x86_64.whl#sha256=1">x</a>'
        '<a href="https://files/uv-0.10.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl">y</a>'
        '<a href="https://files/uv-0.10.0-py3-none-macosx_11_0_arm64.whl">z</a>'
        '<a href="https://files/uv-0.10.0.tar.gz">s</a>'
    )
    assert pe.pick_uv_wheel(page, "https://pypi.org/simple/uv/", "", "x86_64") == (
        "https://files/uv-0.10.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        None,
    )
    assert pe.pick_uv_wheel(page, "https://pypi.org/simple/uv/", "0.9.1", "x86_64") == (
        "https://files/uv-0.9.1-py3-none-manylinux_2_17_x86_64.whl",
        ("sha256", "1"),
    )
    listing = '<a href="uv-0.13.9-py3-none-manylinux_2_17_x86_64.whl">uv</a>'
    assert pe.pick_uv_wheel(listing, "http://10.0.0.1:8000/", "", "x86_64") == (
        "http://10.0.0.1:8000/uv-0.13.9-py3-none-manylinux_2_17_x86_64.whl",
        None,
    )
    with pytest.raises(pe.EnvError, match="no uv wheel for manylinux aarch64"):
        pe.pick_uv_wheel(listing, "http://10.0.0.1:8000/", "", "aarch64")


SUM = "ab" * 32


@pytest.mark.parametrize(
    "href, base, url",
    [
        # A PEP 503 page whose links climb out of /simple/uv/ (as a devpi or a PyPI mirror writes them).
        (
            "../../packages/ab/cd/uv-0.5.0-py3-none-manylinux_2_17_x86_64.whl",
            "https://mirror.example/simple/uv/",
            "https://mirror.example/packages/ab/cd/uv-0.5.0-py3-none-manylinux_2_17_x86_64.whl",
        ),
        (
            "./uv-0.5.0-py3-none-manylinux_2_17_x86_64.whl",
            "http://10.0.0.1:8000/wheels/",
            "http://10.0.0.1:8000/wheels/uv-0.5.0-py3-none-manylinux_2_17_x86_64.whl",
        ),
        (
            "/files/uv-0.5.0-py3-none-manylinux_2_17_x86_64.whl",
            "http://10.0.0.1:8000/wheels/index.html",
            "http://10.0.0.1:8000/files/uv-0.5.0-py3-none-manylinux_2_17_x86_64.whl",
        ),
        (
            "//cdn.example/uv-0.5.0-py3-none-manylinux_2_17_x86_64.whl",
            "https://mirror.example/simple/uv/",
            "https://cdn.example/uv-0.5.0-py3-none-manylinux_2_17_x86_64.whl",
        ),
        (
            "uv-0.5.0-py3-none-manylinux_2_17_x86_64.whl?a=1&amp;b=2",
            "https://m.example/simple/uv/",
            "https://m.example/simple/uv/uv-0.5.0-py3-none-manylinux_2_17_x86_64.whl?a=1&b=2",
        ),
    ],
)
def test_index_links_resolve_as_a_browser_does_and_keep_their_hash(href, base, url):
    page = f'<a href="{href}#sha256={SUM.upper()}">uv</a>'
    assert pe.pick_uv_wheel(page, base, "", "x86_64") == (url, ("sha256", SUM))


def test_a_download_that_fails_the_index_hash_is_refused(tmp_path):
    wheel = tmp_path / "uv.whl"
    wheel.write_bytes(b"not what the index hashed")
    got = hashlib.sha256(b"not what the index hashed").hexdigest()
    pe.check_digest(str(wheel), "https://m/uv.whl", None)
    pe.check_digest(str(wheel), "https://m/uv.whl", ("sha256", got))
    with pytest.raises(pe.EnvError) as err:
        pe.check_digest(str(wheel), "https://m/uv.whl", ("sha256", SUM))
    assert str(err.value) == (
        f"sha256 mismatch for https://m/uv.whl: its index gives {SUM}, the download has {got}. Nothing was installed. "
        "Fix: check the index (option uv_index) or its mirror; do not use a uv binary that fails its sum"
    )


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


# -- archives: nothing outside the environment is created or changed ---------------------------------------------
def _tar(path, members):
    """Write a tar of (TarInfo fields, data) pairs; data None for non-files."""
    with tarfile.open(path, "w") as tar:
        for fields, data in members:
            info = tarfile.TarInfo(fields.pop("name"))
            for key, value in fields.items():
                setattr(info, key, value)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return str(path)


def _file(name, data=b"x", mode=0o644):
    return dict(name=name, mode=mode), data


def _link(name, target, kind=tarfile.SYMTYPE):
    return dict(name=name, type=kind, linkname=target), None


@pytest.fixture(params=["data_filter", "by_hand"])
def unpack(request, monkeypatch):
    """extract_archive with the interpreter's data filter, and with the same rules by hand (older Pythons)."""
    if request.param == "by_hand":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    elif not hasattr(tarfile, "data_filter"):
        pytest.skip("this interpreter has no tarfile data filter")
    return pe.extract_archive


def test_a_conda_like_archive_keeps_its_inside_links(tmp_path, unpack):
    archive = _tar(
        tmp_path / "env.tar",
        [
            (dict(name="bin", type=tarfile.DIRTYPE, mode=0o755), None),
            _file("bin/python3.11", b"#!elf", 0o755),
            _link("bin/python", "python3.11"),
            _file("lib/libz.so.1", b"z"),
            _link("lib/libz.so", "libz.so.1"),
            _link("share/lib", "../lib"),
            _link("bin/python-hard", "bin/python3.11", tarfile.LNKTYPE),
            _file("..hidden", b"a legal name"),
            _file("bin/setuid", b"s", 0o4755),
        ],
    )
    env = tmp_path / "env"
    env.mkdir()
    unpack(archive, str(env))
    assert os.readlink(env / "bin" / "python") == "python3.11" and (env / "bin" / "python").read_bytes() == b"#!elf"
    assert (env / "share" / "lib" / "libz.so").read_bytes() == b"z"
    assert os.stat(env / "bin" / "python-hard").st_ino == os.stat(env / "bin" / "python3.11").st_ino
    assert (env / "..hidden").read_bytes() == b"a legal name"
    assert stat.S_IMODE(os.stat(env / "bin" / "setuid").st_mode) == 0o755


def _outside(tmp_path):
    victim = tmp_path / "outside"
    victim.mkdir()
    (victim / "keep").write_text("mine")
    return victim


@pytest.mark.parametrize(
    "members, named",
    [
        # A symlink out of the env, then a file through it.
        (lambda out: [_link("lib", str(out)), _file("lib/x", b"pwned")], "'lib' is a link to the absolute path"),
        (lambda out: [_link("lib", "../outside"), _file("lib/x", b"pwned")], "'lib' links to"),
        # A hard link to a file outside, then a file of the same name (which would write through it).
        (lambda out: [_link("h", "../outside/keep", tarfile.LNKTYPE), _file("h", b"pwned")], "'h' links to"),
        # Links that point outside only once a later link exists.
        (lambda out: [_link("l", "s/.."), _link("s", "."), _file("l/outside/x", b"pwned")], "'l/outside/x' would be"),
        (lambda out: [_link("l", "s/.."), _link("s", ".")], "'l' links to"),
        (lambda out: [_file("../outside/x", b"pwned")], "'../outside/x' would be written to"),
        (lambda out: [_file(str(out / "x"), b"pwned")], "has an absolute name"),
        (
            lambda out: [(dict(name="dev/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3), None)],
            "'dev/null' is a character device",
        ),
        (
            lambda out: [(dict(name="disk", type=tarfile.BLKTYPE, devmajor=8, devminor=0), None)],
            "'disk' is a block device",
        ),
        (lambda out: [(dict(name="pipe", type=tarfile.FIFOTYPE), None)], "'pipe' is a FIFO"),
    ],
    ids=[
        "abs-symlink",
        "rel-symlink",
        "hardlink",
        "link-chain",
        "link-chain-left",
        "dotdot",
        "abs-name",
        "chr",
        "blk",
        "fifo",
    ],
)
def test_an_archive_that_reaches_outside_is_refused_by_member(tmp_path, unpack, members, named):
    out = _outside(tmp_path)
    archive = _tar(tmp_path / "evil.tar", members(out))
    env = tmp_path / "env"
    env.mkdir()
    with pytest.raises(pe.EnvError) as err:
        unpack(archive, str(env))
    msg = str(err.value)
    assert msg.startswith(archive + ": member ") and named in msg and ": refused" in msg, msg
    assert "Nothing of it is kept. Fix: pack the environment directory alone" in msg
    assert sorted(p.name for p in out.iterdir()) == ["keep"] and (out / "keep").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar", "outside"], "the env goes on a refusal"


def _run(argv, **_kw):
    import subprocess

    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


def test_read_env_reports_the_probe_with_the_options_it_read_with(tmp_path):
    import sys

    params = dict(
        {k: v.get("default") for k, v in pe.PROBE_SPEC.items()},
        prefix=str(tmp_path / "env"),
        requirements=["dask"],
        python=sys.executable,
    )
    read = pe.read_env(params, _run)
    assert read["read_with"] == params and read["state"] == "missing" and read["inputs_error"] is None
    assert read["spec"]["python"] == {"path": sys.executable, "version": ".".join(map(str, sys.version_info[:3]))}
    assert read["fingerprint"] == pe.fingerprint(read["spec"]) and "import_problems" not in read
    # Before the checkout is there, a probe says why the fingerprint is unknown; a build stops, naming the option.
    project = dict(params, requirements=[], project_dir=str(tmp_path / "gtsfm"))
    assert pe.read_env(project, _run)["inputs_error"].endswith("Fix: check option project_dir")
    with pytest.raises(pe.EnvError, match="Fix: check option project_dir"):
        pe.env_spec(dict(project, action="build"), _run)
    with pytest.raises(pe.EnvError, match="the interpreter /no/python3 is missing on this node"):
        pe.read_env(dict(params, python="/no/python3"), _run)
