# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A directory on the controller packed into one tar, so it travels as one stream. Private to this collection.

The tar is deterministic (names sorted, owners 0, whole-second times, GNU format): the same tree gives the same
bytes, so ansible.builtin.copy's checksum sends it again only when the tree changed. It is rewritten only when the
tree's cheap signature (paths, types, modes, sizes, mtimes, inodes) changed, and replaced atomically.
"""

from __future__ import annotations

import json
import os
import stat
import tarfile
import tempfile

from ansible_collections.gtsfm.cluster.plugins.module_utils import _broadcast_hop as hop
from ansible_collections.gtsfm.cluster.plugins.module_utils import _progress


class PackError(Exception):
    """The tree cannot be packed; one sentence naming the path and the fix."""


def _tarinfo(root: str, rel: str, st: os.stat_result, links: dict) -> tarfile.TarInfo:
    info = tarfile.TarInfo("." if rel == "." else "./" + rel)
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = int(st.st_mtime)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(os.path.join(root, rel))
    elif stat.S_ISREG(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            info.type, info.linkname = tarfile.LNKTYPE, links[key]
        else:
            if st.st_nlink > 1:
                links[key] = info.name
            info.size = st.st_size
    else:
        raise PackError(
            f"{root}: {rel} is neither a file, a directory nor a symlink. Fix: remove it from the checkout or exclude "
            "it (conda_env_checkout_exclude)."
        )
    return info


def pack_tree(src: str, dest: str, exclude: list[str] | None = None) -> dict:
    """Pack src (without what exclude leaves out) into dest unless dest already holds this tree; what was done."""
    if not os.path.isdir(src):
        raise PackError(f"{src} is not a directory on the controller. Fix: point it at the checkout's folder.")
    try:
        signature, size, count = hop.tree_manifest(src, content=False, exclude=exclude)
    except (hop.HopError, OSError) as exc:
        raise PackError(f"cannot read {src}: {exc}") from exc
    meta_path = dest + ".json"
    try:
        with open(meta_path) as handle:
            meta = json.load(handle)
    except (OSError, ValueError):
        meta = {}
    out = {"path": dest, "files": count, "bytes": size, "src": src}
    if meta.get("signature") == signature and meta.get("src") == src and os.path.isfile(dest):
        return dict(out, changed=False)
    folder = os.path.dirname(dest) or "."
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(dest) + ".", suffix=".tmp", dir=folder)
    with (
        _progress.replacing(tmp, dest),
        os.fdopen(fd, "wb") as raw,
        tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        links: dict = {}
        for rel, st in hop._walk(src, exclude):  # pylint: disable=protected-access
            if rel == ".":
                continue  # the destination folder is the node's own (made by the role), not the archive's
            info = _tarinfo(src, rel, st, links)
            if info.isreg():
                with open(os.path.join(src, rel), "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    with open(meta_path + ".tmp", "w") as handle:
        json.dump({"signature": signature, "src": src, "files": count, "bytes": size}, handle)
    os.replace(meta_path + ".tmp", meta_path)
    return dict(out, changed=True)
