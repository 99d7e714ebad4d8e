# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a cluster node tells its peers about itself: names, addresses, home.

Plain functions over the local machine, shared by the modules of the
ssh_mesh and known_hosts roles so each role needs one remote call per node.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import ipaddress
import json
import os
import socket
import uuid

HOME_MARKER = "gtsfm_cluster_home_id"


def _ip_addresses(run_command):
    """Global (non-loopback, non-link-local) addresses of this machine.

    run_command is AnsibleModule.run_command (or a stand-in in tests).
    """
    rc, out, dummy = run_command(["ip", "-j", "addr", "show"])
    if rc == 0:
        try:
            return global_addresses(
                info.get("local", "") for link in json.loads(out) for info in link.get("addr_info", []))
        except (ValueError, AttributeError):
            pass
    rc, out, dummy = run_command(["hostname", "-I"])
    if rc == 0:
        return global_addresses(out.split())
    try:
        return global_addresses(ai[4][0] for ai in socket.getaddrinfo(socket.getfqdn(), None))
    except OSError:
        return []


def global_addresses(candidates):
    """Keep the addresses a peer could connect from, in order, without duplicates."""
    result = []
    for text in candidates:
        try:
            addr = ipaddress.ip_address(text.split("%")[0])
        except ValueError:
            continue
        if addr.is_loopback or addr.is_link_local or addr.is_multicast or addr.is_unspecified:
            continue
        if str(addr) not in result:
            result.append(str(addr))
    return result


def host_names():
    """The short and full host names of this machine."""
    name = socket.gethostname()
    fqdn = socket.getfqdn()
    if "." not in fqdn and "." in name:
        fqdn = name
    return {"hostname": name.split(".")[0], "fqdn": fqdn}


def publish_once(src, dst):
    """Link src to dst unless dst exists; True if this call published it.

    link(2) is atomic even on NFS: of several nodes sharing a home that race to
    publish the same file, exactly one wins and the others find the winner's.
    """
    try:
        os.link(src, dst)
        return True
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise
        return False


def home_identity(ssh_dir, create):
    """Return (home_id, changed): the same id on every node that shares this home.

    Nodes on one NFS home read one marker file; inode numbers and times cannot
    tell shared homes apart from copies of one image. Concurrent first runs
    agree on one id through publish_once.
    """
    marker = os.path.join(ssh_dir, HOME_MARKER)
    try:
        with open(marker) as handle:
            existing = handle.read().strip()
        if existing:
            return existing, False
    except IOError as exc:
        if exc.errno != errno.ENOENT:
            raise
    if not create:
        return None, False
    new_id = str(uuid.uuid4())
    tmp = "%s.%s.tmp" % (marker, new_id)
    with open(tmp, "w") as handle:
        handle.write(new_id + "\n")
    os.chmod(tmp, 0o600)
    try:
        if publish_once(tmp, marker):
            return new_id, True
        with open(marker) as handle:
            return handle.read().strip(), False
    finally:
        os.unlink(tmp)


def ensure_ssh_dir(ssh_dir, check_mode):
    """Make ~/.ssh exist with the 0700 mode sshd's StrictModes asks for. Returns changed."""
    try:
        mode = os.stat(ssh_dir).st_mode & 0o777
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
        if not check_mode:
            try:
                os.mkdir(ssh_dir, 0o700)
            except OSError as mkexc:
                if mkexc.errno != errno.EEXIST:
                    raise
            os.chmod(ssh_dir, 0o700)
        return True
    if mode & 0o077:
        if not check_mode:
            os.chmod(ssh_dir, 0o700)
        return True
    return False


def describe_node(ssh_dir, create_marker, run_command):
    """Everything about this node that peers need, and whether the marker was created."""
    home_id, changed = home_identity(ssh_dir, create_marker) if os.path.isdir(ssh_dir) else (None, False)
    node = host_names()
    node["addresses"] = _ip_addresses(run_command)
    node["home_id"] = home_id or "unshared-" + node["fqdn"]
    return node, changed
