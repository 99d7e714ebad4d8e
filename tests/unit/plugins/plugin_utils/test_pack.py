"""A controller directory packed into one deterministic tar."""

from __future__ import annotations

import os
import tarfile

import pytest

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._pack import PackError, pack_tree


def tree(root):
    (root / "gtsfm" / "__pycache__").mkdir(parents=True)
    (root / "gtsfm" / "runner.py").write_text("print('run')\n")
    (root / "gtsfm" / "__pycache__" / "runner.cpython-311.pyc").write_bytes(b"\0")
    (root / "results").mkdir()
    (root / "results" / "old.json").write_text("{}")
    (root / "run").write_text("#!/bin/sh\n")
    os.chmod(root / "run", 0o775)
    os.link(root / "run", root / "run-again")
    os.symlink("gtsfm/runner.py", root / "runner-link")


def test_same_tree_same_bytes_rewritten_only_when_it_changed(tmp_path):
    src = tmp_path / "src"
    tree(src)
    dest = tmp_path / "cache" / "c.tar"
    first = pack_tree(str(src), str(dest), ["__pycache__/", "/results/"])
    assert first["changed"] and first["files"] == 6
    data, mtime = dest.read_bytes(), dest.stat().st_mtime_ns
    again = pack_tree(str(src), str(dest), ["__pycache__/", "/results/"])
    assert not again["changed"] and dest.stat().st_mtime_ns == mtime
    dest.unlink()
    os.unlink(str(dest) + ".json")
    pack_tree(str(src), str(dest), ["__pycache__/", "/results/"])
    assert dest.read_bytes() == data  # deterministic: the copy's checksum sends it again only after a change
    (src / "gtsfm" / "runner.py").write_text("print('changed')\n")
    assert pack_tree(str(src), str(dest), ["__pycache__/", "/results/"])["changed"]
    assert [p.name for p in dest.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_members_modes_links_and_no_owner(tmp_path):
    src = tmp_path / "src"
    tree(src)
    dest = tmp_path / "c.tar"
    pack_tree(str(src), str(dest), ["__pycache__/", "/results/"])
    with tarfile.open(dest) as tar:
        members = {m.name: m for m in tar.getmembers()}
    # Excluded entries and the top folder itself are not in it.
    assert sorted(members) == ["./gtsfm", "./gtsfm/runner.py", "./run", "./run-again", "./runner-link"]
    assert members["./run"].mode == 0o775 and members["./run-again"].islnk()
    assert members["./runner-link"].issym() and members["./runner-link"].linkname == "gtsfm/runner.py"
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members.values()} == {(0, 0, "", "")}


def test_what_cannot_be_packed_is_named(tmp_path):
    with pytest.raises(PackError, match="is not a directory on the controller"):
        pack_tree(str(tmp_path / "none"), str(tmp_path / "c.tar"))
    src = tmp_path / "src"
    src.mkdir()
    os.mkfifo(src / "pipe")
    with pytest.raises(PackError, match="pipe is neither a file, a directory nor a symlink"):
        pack_tree(str(src), str(tmp_path / "c.tar"))
