#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ssh_keypair
short_description: Ensure a user SSH key pair and report what cluster peers need
version_added: 0.1.0
description:
  - Makes sure the remote user has an SSH key pair at O(path), creating one with C(ssh-keygen) when none exists.
    An existing key is never replaced.
  - Makes sure the key's directory (normally C(~/.ssh)) exists with mode C(0700), as sshd's C(StrictModes) requires.
  - In the same call, reports the node's host names, global addresses and home identity, so a role needs one remote
    call per node to build an N-node mesh.
  - Safe on nodes that share one home directory (NFS homes) and run this at the same moment. The key is published with
    an atomic C(link(2)), so exactly one node creates it and the others adopt it.
  - Needs no root.
options:
  path:
    description:
      - Path of the private key on the node. The public key is O(path) with C(.pub) appended.
    type: path
    default: ~/.ssh/id_ed25519
  type:
    description:
      - Key type for a new key. Ignored when a key already exists at O(path).
    type: str
    choices: [ed25519, rsa, ecdsa]
    default: ed25519
  comment:
    description:
      - Comment for a new key.
    type: str
    default: gtsfm.cluster
  home_marker:
    description:
      - Create (if missing) and read the marker file C(gtsfm_cluster_home_id) beside the key, whose content tells
        which nodes share a home directory (RV(node.home_id)).
    type: bool
    default: true
  authorized_keys:
    description:
      - An C(authorized_keys) file to report on (RV(authorized_keys)) without changing it, so that a play can skip a
        write that would change nothing.
    type: path
  marker:
    description:
      - Name of the managed block in O(authorized_keys), as it stands in the block's BEGIN and END marker lines
        (the form the ssh_mesh role's M(ansible.builtin.blockinfile) task writes).
    type: str
    default: gtsfm.cluster.ssh_mesh
notes:
  - In check mode nothing is written; a missing key is reported as RV(created=true) with RV(public_key=null).
seealso:
  - module: gtsfm.cluster.ssh_host_keys
  - module: gtsfm.cluster.known_hosts_block
author:
  - gtsfm.cluster maintainers (@borglab)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Ensure every node has a key pair
  gtsfm.cluster.ssh_keypair:
  register: __ssh_mesh_member

- name: Use an RSA key at a custom path
  gtsfm.cluster.ssh_keypair:
    path: ~/.ssh/id_rsa_cluster
    type: rsa
    comment: "cluster key of {{ inventory_hostname }}"
"""

RETURN = r"""
public_key:
  description: The public key line (type, key and comment); null in check mode when no key exists yet.
  returned: always
  type: str
  sample: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB... gtsfm.cluster
path:
  description: Absolute path of the private key.
  returned: always
  type: str
  sample: /home/alice/.ssh/id_ed25519
created:
  description: Whether this run created the key pair (or would, in check mode).
  returned: always
  type: bool
authorized_keys:
  description: What O(authorized_keys) holds now.
  returned: when O(authorized_keys) is given
  type: dict
  contains:
    exists:
      description: Whether the file exists.
      type: bool
    mode:
      description: Its mode, as four octal digits.
      type: str
      sample: "0600"
    block:
      description: The lines of the managed block O(marker), or null when there is none.
      type: list
      elements: str
node:
  description: What peers need to know about this node.
  returned: always
  type: dict
  contains:
    hostname:
      description: Short host name.
      type: str
      sample: node1
    fqdn:
      description: Fully qualified host name.
      type: str
      sample: node1.lab.example.org
    addresses:
      description: Global IPv4 and IPv6 addresses (no loopback, no link-local).
      type: list
      elements: str
      sample: [10.0.0.11]
    home_id:
      description: Identity of the home directory; equal on nodes that share one home.
      type: str
      sample: 8c1d0d1e-8f5e-4f52-9b7c-1f2a6e6f3c57
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import BlockError, read_block
from ansible_collections.gtsfm.cluster.plugins.module_utils.ssh_keypair import KEY_TYPES, KeyPairError, ensure_keypair
from ansible_collections.gtsfm.cluster.plugins.module_utils.ssh_node import describe_node, ensure_ssh_dir


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="~/.ssh/id_ed25519"),
            type=dict(type="str", choices=list(KEY_TYPES), default="ed25519"),
            comment=dict(type="str", default="gtsfm.cluster"),
            home_marker=dict(type="bool", default=True),
            authorized_keys=dict(type="path"),
            marker=dict(type="str", default="gtsfm.cluster.ssh_mesh"),
        ),
        supports_check_mode=True,
    )
    path = os.path.abspath(module.params["path"])
    ssh_dir = os.path.dirname(path)
    try:
        dir_changed = ensure_ssh_dir(ssh_dir, module.check_mode)
        key = ensure_keypair(path, module.params["type"], module.params["comment"], module.check_mode,
                             module.run_command)
        node, marker_changed = describe_node(ssh_dir, module.params["home_marker"] and not module.check_mode,
                                             module.run_command)
        extra = {}
        if module.params["authorized_keys"]:
            extra["authorized_keys"] = read_block(module.params["authorized_keys"], module.params["marker"])
    except (KeyPairError, BlockError, OSError) as exc:
        module.fail_json(msg="ssh_keypair on %s: %s" % (path, exc))
    module.exit_json(changed=dir_changed or key["changed"] or marker_changed, public_key=key["public_key"],
                     path=path, created=key["created"], node=node, **extra)


if __name__ == "__main__":
    main()
