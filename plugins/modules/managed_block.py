#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: managed_block
short_description: Keep a marked block of lines in a user's file, leaving every other byte as it is
version_added: 0.2.0
description:
  - Writes O(lines) between two marker lines that name the block, in one atomic write (a temporary file beside the
    target, then a rename). The block is replaced as a whole, so a line dropped from O(lines) disappears.
  - Every byte outside the block is kept, CRLF line ends included. A marker line is recognised whatever its line end,
    so a file converted to CRLF still holds exactly one block; M(gtsfm.cluster.cluster_node_info) reads blocks by the
    same rule, so a reader and this writer never disagree about what the block is.
  - A symlinked file (dotfile managers) is written through - the link's target is replaced, the link stays.
  - A file that is not a regular file (a FIFO, a directory) or whose markers are damaged is refused with a message
    and left as it is; a failed write (full disk, read-only filesystem) leaves no temporary file behind.
  - The ssh_mesh role writes C(authorized_keys) with it.
options:
  path:
    description:
      - The file. Created with its directory (mode C(0700)) if missing.
    type: path
    required: true
  marker:
    description:
      - Name of the block, as it stands in its BEGIN and END marker lines,
        C(# BEGIN <marker> (managed by Ansible - edits here are overwritten)) with a colon after C(Ansible).
    type: str
    required: true
  lines:
    description:
      - The block's lines, without line ends. Required with O(state=present).
    type: list
    elements: str
  state:
    description:
      - V(absent) removes the block and leaves the rest of the file.
    type: str
    choices: [present, absent]
    default: present
notes:
  - O(mode) applies to the file whether or not the block changes; a new file without O(mode) gets C(0644).
seealso:
  - module: ansible.builtin.blockinfile
  - module: gtsfm.cluster.known_hosts_block
  - module: gtsfm.cluster.cluster_node_info
extends_documentation_fragment:
  - gtsfm.cluster.attributes.block
  - gtsfm.cluster.attributes.observed
  - gtsfm.cluster.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.files
attributes:
  diff_mode:
    details: Shows the block before and after.
"""

EXAMPLES = r"""
- name: Ensure the mesh keys are authorized
  gtsfm.cluster.managed_block:
    path: ~/.ssh/authorized_keys
    marker: gtsfm.cluster.ssh_mesh
    lines:
      - 'from="10.0.0.11,10.0.0.12" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... gtsfm.cluster node1'
    mode: "0600"

- name: Remove the block again
  gtsfm.cluster.managed_block:
    path: ~/.ssh/authorized_keys
    marker: gtsfm.cluster.ssh_mesh
    state: absent
"""

RETURN = r"""
decided_from:
  description: V(observed) when the action plugin answered from O(observed) and the module did not run.
  returned: when the module did not run
  type: str
  sample: observed
  version_added: 0.4.0
path:
  description: The file written (a symlink's target when O(path) is a symlink).
  returned: always
  type: str
  sample: /home/alice/.ssh/authorized_keys
lines:
  description: Number of lines in the block.
  returned: always
  type: int
  sample: 4
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import (
    BlockError,
    apply_block,
    exit_with_block,
    new_file_mode,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            marker=dict(type="str", required=True),
            lines=dict(type="list", elements="str"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            # Read by the action plugin on the controller (plugins/action/managed_block.py) and never sent here.
            observed=dict(type="dict"),
        ),
        required_if=[("state", "present", ("lines",))],
        add_file_common_args=True,
        supports_check_mode=True,
    )
    path = os.path.abspath(module.params["path"])
    lines = module.params["lines"] if module.params["state"] == "present" else None
    try:
        done = apply_block(
            path, module.params["marker"], lines, new_file_mode(module.params["mode"]), module.check_mode
        )
    except BlockError as exc:
        module.fail_json(msg=f"managed_block: {exc}")
    exit_with_block(module, path, done, lines)


if __name__ == "__main__":
    main()
