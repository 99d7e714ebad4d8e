# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make sure a user SSH key pair exists without ever replacing one.

Nodes that share a home directory run this at the same moment on the same
files, so a new key is written to a private temporary name and published with
ssh_node.publish_once: exactly one node wins, the others adopt its key.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import shutil
import tempfile

from ansible_collections.gtsfm.cluster.plugins.module_utils.known_hosts import normalise_key
from ansible_collections.gtsfm.cluster.plugins.module_utils.ssh_node import publish_once

KEY_TYPES = ("ed25519", "rsa", "ecdsa")


class KeyPairError(Exception):
    """A key pair that exists but cannot be used; the message says what to do."""


def _read_public(path, run_command):
    pub = path + ".pub"
    try:
        with open(pub) as handle:
            text = handle.read().strip()
        if text:
            try:
                normalise_key(text)
            except ValueError as exc:
                # It would end up in every peer's authorized_keys: refuse it before anything is written.
                raise KeyPairError("%s: %s. Fix: restore the public key with 'ssh-keygen -y -f %s > %s'."
                                   % (pub, exc, path, pub))
            return text
    except IOError as exc:
        if exc.errno != errno.ENOENT:
            raise
    rc, out, err = run_command(["ssh-keygen", "-y", "-P", "", "-f", path])
    if rc != 0:
        raise KeyPairError(
            "%s exists but its public half cannot be derived (%s). It may have a passphrase: "
            "put its public key in %s, or set ssh_mesh_key_path to another file." % (path, err.strip(), pub))
    return out.strip()


def ensure_keypair(path, key_type, comment, check_mode, run_command):
    """Return {'public_key', 'created', 'changed'} for the key pair at path."""
    if key_type not in KEY_TYPES:
        raise KeyPairError("key type %r is not one of %s" % (key_type, ", ".join(KEY_TYPES)))
    if os.path.exists(path):
        return {"public_key": _read_public(path, run_command), "created": False, "changed": False}
    if check_mode:
        return {"public_key": None, "created": True, "changed": True}
    directory = os.path.dirname(path) or "."
    work = tempfile.mkdtemp(prefix=".gtsfm-keygen-", dir=directory)
    try:
        tmp = os.path.join(work, "key")
        cmd = ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", comment, "-f", tmp]
        if key_type == "rsa":
            cmd[4:4] = ["-b", "4096"]
        rc, dummy, err = run_command(cmd)
        if rc != 0:
            raise KeyPairError("ssh-keygen failed for %s: %s" % (path, err.strip()))
        os.chmod(tmp, 0o600)
        os.chmod(tmp + ".pub", 0o644)
        if not publish_once(tmp, path):
            # Another node on this shared home published its key first.
            return {"public_key": _read_public(path, run_command), "created": False, "changed": False}
        publish_once(tmp + ".pub", path + ".pub")
        with open(tmp + ".pub") as handle:
            return {"public_key": handle.read().strip(), "created": True, "changed": True}
    finally:
        shutil.rmtree(work, ignore_errors=True)
