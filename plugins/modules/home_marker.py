#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: home_marker
short_description: Give a home directory the identity marker that tells shared homes apart
version_added: 0.2.0
description:
  - Makes sure O(ssh_dir) exists with mode C(0700) and holds the marker file C(gtsfm_cluster_home_id), a random id
    written once. Nodes that mount one home directory (NFS) read the same id; nodes with a home each read different
    ones, even when their homes were copied from one image.
  - Safe when every node of a shared home runs it at the same moment - the marker is published with an atomic
    C(link(2)), so all of them end up with one id.
  - The cluster_facts stage runs it only on nodes whose home has no marker yet (a first run), and only when no role
    in the play makes the marker as part of its own write (M(gtsfm.cluster.ssh_keypair) does).
  - A file where the directory should be is refused before anything changes. Needs no root.
options:
  ssh_dir:
    description:
      - The directory that holds the marker.
    type: path
    default: ~/.ssh
notes:
  - Check mode writes nothing and reports RV(home_id=null) for a home without a marker.
seealso:
  - module: gtsfm.cluster.cluster_node_info
  - module: gtsfm.cluster.ssh_keypair
extends_documentation_fragment:
  - gtsfm.cluster.attributes.idempotent
  - gtsfm.cluster.attributes
  - ansible.builtin.action_common_attributes
attributes:
  idempotent:
    details: A second run finds the marker in place.
"""

EXAMPLES = r"""
- name: Ensure every home directory carries its identity marker
  gtsfm.cluster.home_marker:
  register: __marker
"""

RETURN = r"""
home_id:
  description: Identity of the home directory; equal on nodes that share one home. Null in check mode when missing.
  returned: always
  type: str
  sample: 8c1d0d1e-8f5e-4f52-9b7c-1f2a6e6f3c57
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gtsfm.cluster.plugins.module_utils.ssh_node import (
    NotADirectory,
    ensure_home_id,
    ensure_ssh_dir,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(ssh_dir=dict(type="path", default="~/.ssh")),
        supports_check_mode=True,
    )
    ssh_dir = module.params["ssh_dir"]
    try:
        dir_changed = ensure_ssh_dir(ssh_dir, module.check_mode)
        home_id, changed = ensure_home_id(ssh_dir, module.check_mode)
    except NotADirectory as exc:
        module.fail_json(msg=f"home_marker: {exc.strerror}")
    except OSError as exc:
        module.fail_json(
            msg=f"home_marker: cannot write the marker in {ssh_dir}: {exc.strerror or exc}. Fix: make {ssh_dir} a "
            "directory the remote user can write, then re-run."
        )
    module.exit_json(changed=dir_changed or changed, home_id=home_id)


if __name__ == "__main__":
    main()
