#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: known_hosts_block
short_description: Keep a marked block of trusted host keys in a known_hosts file
version_added: 0.1.0
description:
  - Writes the given hosts' keys into a block between marker lines of a C(known_hosts) file, in one atomic write.
  - The block is replaced as a whole, so a changed host key replaces the old entry and a host dropped from O(entries)
    disappears. Lines outside the block are kept byte for byte.
  - With O(hash_hosts=true), host names are written in OpenSSH's hashed form; hashed lines that still stand for the
    same name and key are kept, so a re-run reports no change.
  - CRLF line ends outside the block are kept; a symlinked file is written through (the link stays); a failed write
    leaves no temporary file behind. Blocks are read and written by the same rules as M(gtsfm.cluster.managed_block).
options:
  path:
    description:
      - The known_hosts file. Created (mode O(mode), else C(0644)) with its directory (mode C(0700)) if missing.
    type: path
    default: ~/.ssh/known_hosts
  entries:
    description:
      - Hosts to trust, each with every name a client may use for it and its host public keys.
      - Required with O(state=present).
    type: list
    elements: dict
    suboptions:
      names:
        description:
          - Names and addresses of the host, as written in known_hosts (C([name]:port) for a port other than 22).
        type: list
        elements: str
        required: true
      keys:
        description:
          - Host public keys, C(type base64 [comment]).
        type: list
        elements: str
        required: true
  hash_hosts:
    description:
      - Write host names hashed, as C(HashKnownHosts yes) does.
    type: bool
    default: false
  marker:
    description:
      - Name in the marker lines; each distinct name is a separate block.
    type: str
    default: gtsfm.cluster.known_hosts
  state:
    description:
      - V(absent) removes the block and leaves the rest of the file.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Without O(mode), an existing file keeps its mode.
seealso:
  - module: gtsfm.cluster.ssh_host_keys
  - module: ansible.builtin.known_hosts
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
- name: Trust two nodes under their names and addresses
  gtsfm.cluster.known_hosts_block:
    entries:
      - names: [node1, node1.lab.example.org, 10.0.0.11]
        keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG..."]
      - names: [node2, node2.lab.example.org, 10.0.0.12]
        keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH..."]
    hash_hosts: true

- name: Remove the block again
  gtsfm.cluster.known_hosts_block:
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
  sample: /home/alice/.ssh/known_hosts
lines:
  description: Number of lines in the block.
  returned: always
  type: int
  sample: 12
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gtsfm.cluster.plugins.module_utils.known_hosts import ENTRY_OPTIONS, render_lines
from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import (
    KNOWN_HOSTS_BLOCK,
    BlockError,
    apply_block,
    exit_with_block,
    new_file_mode,
    read_text,
    split_block,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="~/.ssh/known_hosts"),
            entries=dict(type="list", elements="dict", options=ENTRY_OPTIONS),
            hash_hosts=dict(type="bool", default=False),
            marker=dict(type="str", default=KNOWN_HOSTS_BLOCK),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            # Read by the action plugin on the controller (plugins/action/known_hosts_block.py) and never sent here.
            observed=dict(type="dict"),
        ),
        required_if=[("state", "present", ("entries",))],
        add_file_common_args=True,
        supports_check_mode=True,
    )
    path = os.path.abspath(module.params["path"])
    marker = module.params["marker"]
    try:
        lines = None
        if module.params["state"] == "present":
            # Hashed lines that still match are reused, so the old block is read first.
            old_block = split_block(read_text(path) or "", marker)[1]
            lines = render_lines(module.params["entries"], module.params["hash_hosts"], old_block)
        done = apply_block(path, marker, lines, new_file_mode(module.params["mode"]), module.check_mode)
    except (BlockError, ValueError) as exc:
        module.fail_json(
            msg=f"known_hosts_block: {path}: {exc}" if isinstance(exc, ValueError) else f"known_hosts_block: {exc}"
        )
    exit_with_block(module, path, done, lines)


if __name__ == "__main__":
    main()
