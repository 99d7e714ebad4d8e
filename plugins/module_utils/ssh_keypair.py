# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make sure a user SSH key pair exists and its halves match, without ever replacing a private key.

The public key peers are given is always derived from the private key when it
can be (ssh-keygen -y), never taken on trust from the .pub file: a stale .pub
(left by a deleted private key) would otherwise be published to every peer
while the node itself could log in nowhere.

Nodes that share a home directory run this at the same moment on the same
files, so a new key is written to a private temporary name and published with
ssh_node.publish_once: exactly one node wins, the others adopt its key.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import shutil
import stat
import tempfile

from ansible_collections.gtsfm.cluster.plugins.module_utils.known_hosts import normalise_key
from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import explain, write_text
from ansible_collections.gtsfm.cluster.plugins.module_utils.ssh_node import (
    ensure_home_id,
    ensure_ssh_dir,
    publish_once,
    read_home_id,
    ssh_dir_state,
)

KEY_TYPES = ("ed25519", "rsa", "ecdsa")


class KeyPairError(Exception):
    """A key pair that exists but cannot be used; the message says what to do."""


def _read_pub(pub):
    """The .pub file's first line, or None when there is none."""
    try:
        with open(pub) as handle:
            text = handle.read().strip()
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise KeyPairError(
            f"{pub}: {exc.strerror or exc}. Fix: make it readable, or remove it so it is rebuilt from the private key."
        )
    return text.splitlines()[0] if text else None


def inspect_keypair(path, keygen, run_command):
    """What a key pair looks like now, without changing anything.

    Returns {'exists', 'mode', 'public_key', 'pub_ok', 'needs_write'}: public_key
    is what peers must be given (derived from the private key when possible),
    pub_ok says whether the .pub file already holds that key, and needs_write
    whether ensure_keypair would change something (a missing key, an open mode,
    a missing or stale .pub).
    """
    pub = path + ".pub"
    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise KeyPairError(explain(path, exc))
        return {"exists": False, "mode": None, "public_key": None, "pub_ok": False, "needs_write": True}
    if not stat.S_ISREG(info.st_mode):
        raise KeyPairError(
            f"{path} is not a regular file. Fix: move it away (a new key pair is then made) or set "
            "ssh_mesh_key_path to your key file."
        )
    mode = stat.S_IMODE(info.st_mode)
    on_file = _read_pub(pub)
    derived = _derive_public(path, keygen, run_command, mode)
    if derived is None:
        # A passphrase-protected key: its .pub is all there is to go on.
        if on_file is None:
            raise KeyPairError(
                f"{path} has a passphrase (or is not a private key) and has no {pub}, so its public half is unknown. "
                f"Fix: put its public key in {pub} ('ssh-keygen -y -f {path} > {pub}' asks for the passphrase), or set "
                "ssh_mesh_key_path to a key without a passphrase; Dask's SSHCluster needs one it can use unattended."
            )
        public = _checked(on_file, pub, path)
        return {
            "exists": True,
            "mode": f"{mode:04o}",
            "public_key": public,
            "pub_ok": True,
            "needs_write": bool(mode & 0o077),
        }
    pub_ok = on_file is not None and _same_key(on_file, derived)
    public = on_file if pub_ok else derived
    return {
        "exists": True,
        "mode": f"{mode:04o}",
        "public_key": public,
        "pub_ok": pub_ok,
        "needs_write": bool(mode & 0o077) or not pub_ok,
    }


def _checked(text, pub, path):
    try:
        normalise_key(text)
    except ValueError as exc:
        raise KeyPairError(f"{pub}: {exc}. Fix: restore the public key with 'ssh-keygen -y -f {path} > {pub}'.")
    return text


def _same_key(a, b):
    try:
        return normalise_key(a) == normalise_key(b)
    except ValueError:
        return False


def _derive_public(path, keygen, run_command, mode):
    """The public key ssh-keygen derives from the private key, or None if it needs a passphrase."""
    if mode & 0o077:
        # ssh-keygen refuses an unprotected key ("UNPROTECTED PRIVATE KEY FILE"): read it through a private copy.
        work = tempfile.mkdtemp(prefix=".gtsfm-keycheck-", dir=os.path.dirname(path) or ".")
        try:
            copy = os.path.join(work, "key")
            shutil.copyfile(path, copy)
            os.chmod(copy, 0o600)
            return _derive_public(copy, keygen, run_command, 0o600)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    rc, out, dummy = run_command([keygen, "-y", "-P", "", "-f", path])
    if rc != 0 or not out.strip():
        return None
    return out.strip().splitlines()[0]


def ensure_keypair(path, key_type, comment, check_mode, keygen, run_command):
    """Return {'public_key', 'created', 'changed', 'repaired'} for the key pair at path.

    Creates a missing pair; sets an existing private key to 0600 (ssh refuses
    to use it otherwise) and rebuilds a missing or stale .pub from it. An
    existing private key is never replaced.
    """
    if key_type not in KEY_TYPES:
        raise KeyPairError(f"key type {key_type!r} is not one of {', '.join(KEY_TYPES)}")
    state = inspect_keypair(path, keygen, run_command)
    if state["exists"]:
        return _repair(path, state, check_mode)
    if check_mode:
        return {"public_key": None, "created": True, "changed": True, "repaired": []}
    directory = os.path.dirname(path) or "."
    work = tempfile.mkdtemp(prefix=".gtsfm-keygen-", dir=directory)
    try:
        tmp = os.path.join(work, "key")
        cmd = [keygen, "-q", "-t", key_type, "-N", "", "-C", comment, "-f", tmp]
        if key_type == "rsa":
            cmd[4:4] = ["-b", "4096"]
        rc, dummy, err = run_command(cmd)
        if rc != 0:
            raise KeyPairError(f"ssh-keygen failed for {path}: {err.strip()}")
        os.chmod(tmp, 0o600)
        if not publish_once(tmp, path):
            # Another node on this shared home published its key first: adopt it.
            state = inspect_keypair(path, keygen, run_command)
            result = _repair(path, state, False)
            result["changed"] = False
            return result
        with open(tmp + ".pub") as handle:
            public = handle.read().strip()
        # Replaces a stale .pub left behind by a deleted private key.
        write_text(path + ".pub", public + "\n", 0o644)
        return {"public_key": public, "created": True, "changed": True, "repaired": []}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _repair(path, state, check_mode):
    repaired = []
    if int(state["mode"], 8) & 0o077:
        repaired.append(f"mode {state['mode']} -> 0600")
        if not check_mode:
            os.chmod(path, 0o600)
    if not state["pub_ok"]:
        repaired.append(f"{path}.pub rebuilt from the private key")
        if not check_mode:
            write_text(path + ".pub", state["public_key"] + "\n", 0o644)
    return {"public_key": state["public_key"], "created": False, "changed": bool(repaired), "repaired": repaired}


def inspect_member(path, keygen, run_command):
    """inspect_keypair's result for what ensure_member looks after: the key's directory and home marker too.

    Adds 'dir_state' (ssh_node.ssh_dir_state of the key's directory) and 'home_id' (the marker beside the key, None
    while there is none); needs_write then says whether ensure_member would change anything at all.
    """
    directory = os.path.dirname(path)
    state = inspect_keypair(path, keygen, run_command)
    state["dir_state"] = ssh_dir_state(directory)
    state["home_id"] = read_home_id(directory)
    state["needs_write"] = state["needs_write"] or state["dir_state"] != "ok" or state["home_id"] is None
    return state


def ensure_member(path, key_type, comment, check_mode, keygen, run_command, home_marker=True):
    """Everything a node needs to join the mesh: the key's directory at 0700, the key pair, the home marker beside it.

    Returns ensure_keypair's result with 'changed' covering all three and 'home_id' (None without home_marker, and in
    check mode for a home without a marker). The module ssh_keypair and the stage's read (cluster_probe, when asked to
    create the key pair) both call this, so they make a key pair by one rule. Raises KeyPairError, BlockError and
    OSError (ssh_node.NotADirectory for a file where the directory should be) for the caller to word.
    """
    directory = os.path.dirname(path)
    dir_changed = ensure_ssh_dir(directory, check_mode)
    key = ensure_keypair(path, key_type, comment, check_mode, keygen, run_command)
    home_id, marker_changed = ensure_home_id(directory, check_mode) if home_marker else (None, False)
    key["changed"] = dir_changed or key["changed"] or marker_changed
    key["home_id"] = home_id
    return key
