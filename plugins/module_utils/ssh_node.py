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
import stat
import uuid

from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import not_a_directory

HOME_MARKER = "gtsfm_cluster_home_id"


def _ip_addresses(run_command):
    """Global (non-loopback, non-link-local) addresses of this machine.

    run_command is AnsibleModule.run_command (or a stand-in in tests).
    """
    rc, out, dummy = run_command(["ip", "-j", "addr", "show"])
    if rc == 0:
        try:
            return global_addresses(
                info.get("local", "") for link in json.loads(out) for info in link.get("addr_info", [])
            )
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


def read_home_id(ssh_dir):
    """The id in this home's marker file, or None when there is none yet. Reads only."""
    marker = os.path.join(ssh_dir, HOME_MARKER)
    try:
        with open(marker) as handle:
            return handle.read().strip() or None
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def ensure_home_id(ssh_dir, check_mode=False):
    """Return (home_id, changed): the same id on every node that shares this home, creating the marker if needed.

    In check mode nothing is written: a home without a marker reports (None, True).

    Nodes on one NFS home read one marker file; inode numbers and times cannot
    tell shared homes apart from copies of one image. Concurrent first runs
    agree on one id through publish_once.
    """
    existing = read_home_id(ssh_dir)
    if existing:
        return existing, False
    if check_mode:
        return None, True
    marker = os.path.join(ssh_dir, HOME_MARKER)
    new_id = str(uuid.uuid4())
    tmp = f"{marker}.{new_id}.tmp"
    with open(tmp, "w") as handle:
        handle.write(new_id + "\n")
    os.chmod(tmp, 0o600)
    try:
        if publish_once(tmp, marker):
            return new_id, True
        return read_home_id(ssh_dir), False
    finally:
        os.unlink(tmp)


class NotADirectory(OSError):
    """~/.ssh (or the key's directory) exists but is not a directory."""


def ensure_ssh_dir(ssh_dir, check_mode):
    """Make ~/.ssh exist with the 0700 mode sshd's StrictModes asks for. Returns changed.

    A file where the directory should be is refused before anything changes.
    """
    try:
        info = os.stat(ssh_dir)
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
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectory(errno.ENOTDIR, not_a_directory(ssh_dir))
    if info.st_mode & 0o077:
        if not check_mode:
            os.chmod(ssh_dir, 0o700)
        return True
    return False


def ssh_dir_state(ssh_dir):
    """'missing', 'ok', 'open' (group/other bits set) or 'not_a_directory'. Reads only."""
    try:
        info = os.stat(ssh_dir)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return "missing"
        raise
    if not stat.S_ISDIR(info.st_mode):
        return "not_a_directory"
    return "open" if info.st_mode & 0o077 else "ok"


def shell_python(run_command, path_env=None):
    """The python3 a non-interactive SSH command finds on PATH, and its version; (None, None) if none.

    Dask's SSHCluster starts its remote processes this way, so this is the
    interpreter a worker would get without remote_python.
    """
    found = None
    for directory in (path_env if path_env is not None else os.environ.get("PATH", "")).split(os.pathsep):
        for name in ("python3", "python"):
            candidate = os.path.join(directory or ".", name)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                found = os.path.abspath(candidate)
                break
        if found:
            break
    if not found:
        return None, None
    rc, out, dummy = run_command([found, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
    return found, (out.strip() if rc == 0 else None)


def free_bytes(path):
    """Free bytes for the user on the filesystem that holds path (or would hold it: its nearest existing parent)."""
    probe = os.path.abspath(os.path.expanduser(path))
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    info = os.statvfs(probe)
    return info.f_bavail * info.f_frsize


def describe_node(ssh_dir, run_command):
    """Everything about this node that peers need. Reads only: home_id is None while the home has no marker."""
    node = host_names()
    node["addresses"] = _ip_addresses(run_command)
    node["home_id"] = read_home_id(ssh_dir)
    return node
