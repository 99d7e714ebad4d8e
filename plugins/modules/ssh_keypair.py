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
    An existing private key is never replaced.
  - Repairs what would silently break logins, and says so in RV(repaired) and in a warning - a private key readable
    by group or others is set to C(0600) (ssh refuses to use it otherwise); a missing C(.pub), or one that does not
    match the private key (left behind when the private key was deleted), is rebuilt from the private key.
  - Makes sure the key's directory (normally C(~/.ssh)) exists with mode C(0700), as sshd's C(StrictModes) requires,
    and that the home directory carries its identity marker (RV(home_id)), so nodes sharing one home are told apart
    from nodes with a home each. A file where the directory should be is refused before anything changes.
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
        which nodes share a home directory (RV(home_id)).
    type: bool
    default: true
  observed:
    description:
      - What a read made earlier in the play found of this key pair, that is
        M(gtsfm.cluster.cluster_node_info)'s RV(gtsfm.cluster.cluster_node_info#module:keypair), as the stage
        (gtsfm.cluster.cluster_facts) publishes it in C(cluster_facts_probe.keypair).
      - When it was read for this O(path) and shows nothing to do (its C(needs_write) is false - the key pair, its
        directory and the home marker are in place, possibly made by that read), the action plugin answers from it
        on the controller with RV(decided_from=observed) and no remote call. Otherwise the module runs as without it.
      - Used on the controller only; the module never receives it.
    type: dict
    version_added: 0.4.0
notes:
  - In check mode nothing is written; a missing key is reported as RV(created=true) with RV(public_key=null).
seealso:
  - module: gtsfm.cluster.cluster_node_info
  - module: gtsfm.cluster.home_marker
extends_documentation_fragment:
  - gtsfm.cluster.attributes.observed
  - gtsfm.cluster.attributes.idempotent
  - gtsfm.cluster.attributes
  - ansible.builtin.action_common_attributes
attributes:
  idempotent:
    details: A second run finds the key pair and the marker in place.
"""

EXAMPLES = r"""
- name: Ensure every node has a key pair
  gtsfm.cluster.ssh_keypair:
  register: __ssh_mesh_member

- name: Answer from the stage's read when it already shows the key pair in place (no remote call)
  gtsfm.cluster.ssh_keypair:
    path: ~/.ssh/id_ed25519
    observed: "{{ cluster_facts_probe.keypair }}"

- name: Use an RSA key at a custom path
  gtsfm.cluster.ssh_keypair:
    path: ~/.ssh/id_rsa_cluster
    type: rsa
    comment: "cluster key of {{ inventory_hostname }}"
"""

RETURN = r"""
decided_from:
  description: V(observed) when the action plugin answered from O(observed) and the module did not run.
  returned: when the module did not run
  type: str
  sample: observed
  version_added: 0.4.0
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
repaired:
  description: What was repaired in an existing key pair (empty when nothing was).
  returned: always
  type: list
  elements: str
  sample: ["mode 0644 -> 0600", "/home/alice/.ssh/id_ed25519.pub rebuilt from the private key"]
home_id:
  description: Identity of the home directory; equal on nodes that share one home. Null when O(home_marker=false).
  returned: always
  type: str
  sample: 8c1d0d1e-8f5e-4f52-9b7c-1f2a6e6f3c57
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import BlockError
from ansible_collections.gtsfm.cluster.plugins.module_utils.ssh_keypair import KEY_TYPES, KeyPairError, ensure_member
from ansible_collections.gtsfm.cluster.plugins.module_utils.ssh_node import NotADirectory


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="~/.ssh/id_ed25519"),
            type=dict(type="str", choices=list(KEY_TYPES), default="ed25519"),
            comment=dict(type="str", default="gtsfm.cluster"),
            home_marker=dict(type="bool", default=True),
            # Read by the action plugin on the controller (plugins/action/ssh_keypair.py) and never sent here.
            observed=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    path = os.path.abspath(module.params["path"])
    ssh_dir = os.path.dirname(path)
    keygen = module.get_bin_path("ssh-keygen", required=True)
    try:
        key = ensure_member(
            path,
            module.params["type"],
            module.params["comment"],
            module.check_mode,
            keygen,
            module.run_command,
            module.params["home_marker"],
        )
    except (KeyPairError, BlockError) as exc:
        module.fail_json(msg=f"ssh_keypair on {path}: {exc}")
    except NotADirectory as exc:
        module.fail_json(msg=f"ssh_keypair: {exc.strerror}")
    except OSError as exc:
        module.fail_json(
            msg=f"ssh_keypair on {path}: {exc.strerror or exc}. Fix: check that {ssh_dir} is a directory "
            "the remote user can write."
        )
    for repair in key["repaired"]:
        # A warning, so a repair shows in every run's output without a task of its own.
        module.warn(f"ssh_keypair on {path}: repaired {repair}")
    module.exit_json(
        changed=key["changed"],
        public_key=key["public_key"],
        path=path,
        created=key["created"],
        repaired=key["repaired"],
        home_id=key["home_id"],
    )


if __name__ == "__main__":
    main()
