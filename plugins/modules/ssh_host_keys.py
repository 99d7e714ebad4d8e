#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ssh_host_keys
short_description: Read a node's SSH host public keys, names and addresses from the node itself
version_added: 0.1.0
description:
  - Reads the SSH server's host public keys (C(ssh_host_*_key.pub)) on the node, over Ansible's own authenticated
    connection rather than by scanning the network, so the keys are as trustworthy as that connection.
  - In the same call, reports the node's short and full host names, global addresses and home identity, which is all
    the M(gtsfm.cluster.known_hosts_block) entries of its peers need.
  - Writes nothing, except the home marker file when O(home_marker=true) and it is missing.
  - Needs no root; host public keys are world-readable.
options:
  key_types:
    description:
      - Host key types to report, in this order. Types the node does not have are skipped.
    type: list
    elements: str
    choices: [ed25519, ecdsa, rsa]
    default: [ed25519, ecdsa, rsa]
  aliases:
    description:
      - Names peers use for this node besides its own host names and addresses, typically its name in cluster.yaml
        (C(inventory_hostname)). They come first in the names of RV(entry).
    type: list
    elements: str
    default: []
  port:
    description:
      - SSH port peers use for this node; names in RV(entry) and RV(self_names) are written C([name]:port) unless 22.
    type: int
    default: 22
  host_key_dir:
    description:
      - Directory of the SSH server's host keys.
    type: path
    default: /etc/ssh
  ssh_dir:
    description:
      - The user's SSH directory, where the home marker lives.
    type: path
    default: ~/.ssh
  home_marker:
    description:
      - Create (if missing) and read the marker file C(gtsfm_cluster_home_id) in O(ssh_dir), whose content tells
        which nodes share a home directory. The directory is created with mode C(0700) if needed.
    type: bool
    default: true
  known_hosts:
    description:
      - A known_hosts file to report on (RV(known_hosts)) without changing it, so that a play can skip a write that
        would change nothing.
    type: path
  marker:
    description:
      - Name of the managed block in O(known_hosts), as M(gtsfm.cluster.known_hosts_block) writes it.
    type: str
    default: gtsfm.cluster.known_hosts
notes:
  - Check mode writes nothing; without a marker, each node counts as having a home of its own.
seealso:
  - module: gtsfm.cluster.known_hosts_block
  - module: gtsfm.cluster.ssh_keypair
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
- name: Read every node's host keys from the node itself
  gtsfm.cluster.ssh_host_keys:
  register: __known_hosts_node

- name: Only ed25519 host keys
  gtsfm.cluster.ssh_host_keys:
    key_types: [ed25519]
"""

RETURN = r"""
entry:
  description: This node as a M(gtsfm.cluster.known_hosts_block) entry, under every name a peer may use.
  returned: always
  type: dict
  sample: {names: [node1, node1.lab.example.org, 10.0.0.11], keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG...]}
self_names:
  description: The loopback names under which the node reaches itself (C(localhost), C(127.0.0.1), C(::1)).
  returned: always
  type: list
  elements: str
  sample: [localhost, 127.0.0.1, "::1"]
known_hosts:
  description: What O(known_hosts) holds now (C(exists), C(mode), and C(block), the managed block's lines or null).
  returned: when O(known_hosts) is given
  type: dict
  sample: {exists: true, mode: "0644", block: ["node1,10.0.0.11 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG..."]}
host_keys:
  description: Host public keys as C(type base64), comments dropped.
  returned: always
  type: list
  elements: str
  sample: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG...]
node:
  description: Host names, global addresses and home identity of the node (see M(gtsfm.cluster.ssh_keypair)).
  returned: always
  type: dict
  sample: {hostname: node1, fqdn: node1.lab.example.org, addresses: [10.0.0.11], home_id: 8c1d0d1e-...}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gtsfm.cluster.plugins.module_utils.known_hosts import host_pattern, normalise_key
from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import BlockError, read_block
from ansible_collections.gtsfm.cluster.plugins.module_utils.ssh_node import describe_node, ensure_ssh_dir


def main():
    module = AnsibleModule(
        argument_spec=dict(
            key_types=dict(type="list", elements="str", choices=["ed25519", "ecdsa", "rsa"],
                           default=["ed25519", "ecdsa", "rsa"]),
            aliases=dict(type="list", elements="str", default=[]),
            port=dict(type="int", default=22),
            host_key_dir=dict(type="path", default="/etc/ssh"),
            ssh_dir=dict(type="path", default="~/.ssh"),
            home_marker=dict(type="bool", default=True),
            known_hosts=dict(type="path"),
            marker=dict(type="str", default="gtsfm.cluster.known_hosts"),
        ),
        supports_check_mode=True,
    )
    if not 0 < module.params["port"] < 65536:
        module.fail_json(msg="ssh_host_keys: port must be 1-65535 (the SSH port peers use for this node, "
                             "known_hosts_port in the known_hosts role), got %d." % module.params["port"])
    keys = []
    for key_type in module.params["key_types"]:
        path = os.path.join(module.params["host_key_dir"], "ssh_host_%s_key.pub" % key_type)
        if not os.path.exists(path):
            continue
        try:
            with open(path) as handle:
                keys.append(normalise_key(handle.read().strip()))
        except (IOError, ValueError) as exc:
            module.fail_json(msg="ssh_host_keys: cannot read host key %s: %s" % (path, exc))
    if not keys:
        module.fail_json(msg="ssh_host_keys: no host key of type %s under %s; is an SSH server installed? "
                             "Set host_key_dir if its keys live elsewhere."
                             % ("/".join(module.params["key_types"]), module.params["host_key_dir"]))
    ssh_dir = module.params["ssh_dir"]
    create = module.params["home_marker"] and not module.check_mode
    try:
        dir_changed = ensure_ssh_dir(ssh_dir, module.check_mode) if module.params["home_marker"] else False
        node, marker_changed = describe_node(ssh_dir, create, module.run_command)
        extra = {}
        if module.params["known_hosts"]:
            extra["known_hosts"] = read_block(module.params["known_hosts"], module.params["marker"])
    except (BlockError, OSError) as exc:
        module.fail_json(msg="ssh_host_keys: cannot use %s: %s" % (ssh_dir, exc))
    port = module.params["port"]
    names = []
    for name in module.params["aliases"] + [node["hostname"], node["fqdn"]] + node["addresses"]:
        if name and host_pattern(name, port) not in names:
            names.append(host_pattern(name, port))
    module.exit_json(changed=dir_changed or marker_changed, host_keys=keys, node=node,
                     entry=dict(names=names, keys=keys),
                     self_names=[host_pattern(name, port) for name in ("localhost", "127.0.0.1", "::1")], **extra)


if __name__ == "__main__":
    main()
