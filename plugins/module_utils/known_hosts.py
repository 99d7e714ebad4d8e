# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render known_hosts lines for a cluster, optionally hashed, idempotently."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import hmac
import os
import re

KEY_LINE = re.compile(
    r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-\S+@openssh\.com)"
    r" [A-Za-z0-9+/]+={0,3}$"
)

# A known_hosts entry as the modules that take them declare it (known_hosts_block, managed_blocks).
ENTRY_OPTIONS = dict(
    names=dict(type="list", elements="str", required=True),
    keys=dict(type="list", elements="str", required=True, no_log=False),
)


def host_pattern(name, port=22):
    """How known_hosts writes a host name reached on port."""
    return name if int(port) == 22 else f"[{name}]:{int(port)}"


def hash_name(name, salt=None):
    """OpenSSH's HashKnownHosts form: |1|base64(salt)|base64(HMAC-SHA1(salt, name))."""
    salt = os.urandom(20) if salt is None else salt
    digest = hmac.new(salt, name.encode("utf-8"), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode('ascii')}|{base64.b64encode(digest).decode('ascii')}"


def hashed_matches(field, name):
    """Whether a hashed host field stands for name."""
    parts = field.split("|")
    if len(parts) != 4 or parts[1] != "1":
        return False
    try:
        salt = base64.b64decode(parts[2])
    except (TypeError, ValueError):
        return False
    return hmac.compare_digest(hash_name(name, salt), field)


def normalise_key(key):
    """'type base64 [comment]' -> 'type base64', or ValueError naming the problem."""
    fields = key.split()
    text = " ".join(fields[:2])
    if len(fields) < 2 or not KEY_LINE.match(text):
        raise ValueError(f"not an SSH public key: {key[:80]!r}")
    return text


def render_lines(entries, hash_hosts, previous=None):
    """known_hosts lines for entries [{'names': [...], 'keys': [...]}].

    Hashed lines from previous that already stand for the same name and key are
    reused, so a re-run with random salts still changes nothing.
    """
    lines = []
    for entry in entries:
        names = []
        for name in entry["names"]:
            if name not in names:
                names.append(name)
        keys = []
        for key in entry["keys"]:
            key = normalise_key(key)
            if key not in keys:
                keys.append(key)
        for key in keys:
            if not hash_hosts:
                lines.append(f"{','.join(names)} {key}")
                continue
            for name in names:
                reuse = [
                    line
                    for line in previous or []
                    if line.endswith(" " + key) and hashed_matches(line.split(" ", 1)[0], name)
                ]
                lines.append(reuse[0] if reuse else f"{hash_name(name)} {key}")
    return lines
