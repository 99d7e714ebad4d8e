# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster stage's one read of a node: everything every role needs, nothing written (but a key pair, if asked).

Plain functions over the local machine; the module cluster_node_info is their
thin face. Keeping every role's read in one call is what holds a no-op re-run
of the whole site to one remote call per host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import getpass
import os

from ansible_collections.gtsfm.cluster.plugins.module_utils import _broadcast_hop as hop
from ansible_collections.gtsfm.cluster.plugins.module_utils import _python_env as pe
from ansible_collections.gtsfm.cluster.plugins.module_utils.known_hosts import host_pattern, normalise_key
from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import BlockError, read_block
from ansible_collections.gtsfm.cluster.plugins.module_utils.ssh_keypair import (
    KeyPairError,
    ensure_member,
    inspect_member,
)
from ansible_collections.gtsfm.cluster.plugins.module_utils.ssh_node import (
    NotADirectory,
    describe_node,
    free_bytes,
    read_home_id,
    shell_python,
    ssh_dir_state,
)

HOST_KEY_TYPES = ("ed25519", "ecdsa", "rsa")
SELF_NAMES = ("localhost", "127.0.0.1", "::1")


class ProbeError(Exception):
    """Something on the node stops the stage; the message names it and the fix."""


def host_keys(key_dir, key_types):
    """The SSH server's host public keys as 'type base64', in key_types order (missing types skipped)."""
    keys = []
    for key_type in key_types:
        path = os.path.join(key_dir, f"ssh_host_{key_type}_key.pub")
        if not os.path.exists(path):
            continue
        try:
            with open(path) as handle:
                keys.append(normalise_key(handle.read().strip()))
        except (OSError, ValueError) as exc:
            raise ProbeError(
                f"cannot read host key {path}: {exc}. Fix: repair or regenerate it (ssh-keygen -A, as root)."
            )
    return keys


def names_for(aliases, node, port):
    """Every name a peer may use for this node, as known_hosts writes it, without duplicates."""
    names = []
    for name in list(aliases) + [node["hostname"], node["fqdn"]] + node["addresses"]:
        if name and host_pattern(name, port) not in names:
            names.append(host_pattern(name, port))
    return names


def file_checksum(path):
    """{path, exists, mode, checksum, mtime} of a regular file: checksum its sha1, as ansible.builtin.copy compares."""
    found = {"path": path, "exists": False, "mode": None, "checksum": None, "mtime": None}
    try:
        st = os.stat(path)
        if not os.path.isfile(path):
            return found
        checksum = hop.hash_file(path, "sha1")
    except OSError:
        return found
    found.update(exists=True, mode=f"{st.st_mode & 0o7777:04o}", checksum=checksum, mtime=st.st_mtime)
    return found


def tree_state(path, exclude):
    """{path, held, why, written, exclude}: the content gtsfm.cluster.broadcast's record says the tree at path holds,
    when the tree is still what the record describes (held null otherwise), and when that record was written."""
    try:
        held, why = hop.held_digest(path, "tree", exclude=exclude)
    except (OSError, hop.HopError) as exc:
        held, why = None, f"cannot read the tree: {exc}"
    record = hop.read_record(path) if held else None
    return {"path": path, "held": held, "why": why, "written": (record or {}).get("written"), "exclude": exclude}


def python_env_state(options, run_command):
    """gtsfm.cluster.python_env's probe of the node with options, or {error} naming what stops it (in the module's
    own terms: the role whose probe it answers then asks the node itself, and words the error in its terms)."""
    try:
        return pe.read_env(options, run_command)
    except (pe.EnvError, OSError) as exc:
        return {"error": f"python_env: {exc}"}


def keypair(params, run_command, keygen, check_mode=False):
    """The key pair at params['keypair'] as the stage reports it; made first when params['keypair_create'] asks.

    Creating it here, in the read, is what lets a first run of ssh_mesh cost the read and one write per node: a
    node's key must exist before its public half can go into its peers' files, and the key never leaves the node.
    It is made by ssh_keypair's own rule (ensure_member: never over an existing private key; only in a normal run).
    """
    path = os.path.abspath(os.path.expanduser(params["keypair"]))
    create = params.get("keypair_create")
    made = None
    try:
        state = inspect_member(path, keygen, run_command)
        if create and state["needs_write"]:
            made = ensure_member(path, create["type"], create["comment"], check_mode, keygen, run_command)
            if not check_mode:
                state = inspect_member(path, keygen, run_command)
    except (KeyPairError, BlockError) as exc:
        raise ProbeError(str(exc))
    except NotADirectory as exc:
        raise ProbeError(exc.strerror)
    except OSError as exc:
        raise ProbeError(
            f"{path}: {exc.strerror or exc}. Fix: make {os.path.dirname(path)} a directory the user can write."
        )
    state["path"] = path
    state["requested"] = params["keypair"]
    # What this read made (or, in check mode, would make): the module's result says changed from these.
    state["created"] = bool(made and made["created"])
    state["changed"] = bool(made and made["changed"])
    state["repaired"] = list(made["repaired"]) if made else []
    return state


def probe(params, run_command, keygen, check_mode=False):
    """The node as the stage publishes it; raises ProbeError with a message naming what to fix."""
    ssh_dir = os.path.abspath(os.path.expanduser(params["ssh_dir"]))
    port = params["port"]
    try:
        node = describe_node(ssh_dir, run_command)
        node["ssh_dir"] = ssh_dir
        node["ssh_dir_state"] = ssh_dir_state(ssh_dir)
    except OSError as exc:
        raise ProbeError(f"cannot read {ssh_dir}: {exc}")
    node["home"] = os.path.expanduser("~")
    node["user"] = getpass.getuser()
    node["python"], node["python_version"] = shell_python(run_command)
    try:
        node["free"] = dict((path, free_bytes(path)) for path in params["free_paths"])
    except OSError as exc:
        raise ProbeError(f"cannot measure free space: {exc}")
    keys = host_keys(params["host_key_dir"], params["host_key_types"])
    result = {
        "node": node,
        "host_keys": keys,
        "entry": {"names": names_for(params["aliases"], node, port), "keys": keys},
        "self_names": [host_pattern(name, port) for name in SELF_NAMES],
        "files": {},
        "keypair": None,
        "checksums": {},
        "trees": {},
        "python_env": None,
    }
    for item in params["files"]:
        path = os.path.abspath(os.path.expanduser(item["path"]))
        try:
            found = read_block(path, item.get("marker"), bool(item.get("text")))
        except BlockError as exc:
            raise ProbeError(str(exc))
        found["path"] = path
        result["files"][item["path"]] = found
    if params["keypair"]:
        result["keypair"] = keypair(params, run_command, keygen, check_mode)
        if result["keypair"]["changed"] and not check_mode:
            # The key pair's directory and home marker may be new: the node as it stands now.
            node["home_id"] = read_home_id(ssh_dir)
            node["ssh_dir_state"] = ssh_dir_state(ssh_dir)
    for path in params.get("checksums") or []:
        result["checksums"][path] = file_checksum(os.path.abspath(os.path.expanduser(path)))
    for item in params.get("trees") or []:
        path = os.path.abspath(os.path.expanduser(item["path"]))
        result["trees"][item["path"]] = tree_state(path, list(item.get("exclude") or []))
    if params.get("python_env"):
        result["python_env"] = python_env_state(params["python_env"], run_command)
    return result
