#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: managed_blocks
short_description: Keep a marked block in each of several files of a node, in one call
version_added: 0.4.0
description:
  - Writes the block of each of O(blocks) into its own file in one module call, so a node whose C(authorized_keys)
    and C(known_hosts) both change costs one remote call, not two. The C(site.yml) play writes ssh_mesh's and
    known_hosts' blocks with it (role gtsfm.cluster.managed_blocks).
  - Each file follows the rules of the writer it would have alone - a block of O(blocks[].lines) as
    M(gtsfm.cluster.managed_block) writes it, a block of O(blocks[].entries) as M(gtsfm.cluster.known_hosts_block)
    renders it (hashed lines that still match are reused). Every byte outside a block is kept, a symlinked file is
    written through, and each file is written atomically (a temporary file beside it, then a rename).
  - Every file is read and its block made before any file is written, so a damaged marker or a file that is not a
    regular file stops the call with nothing written. A write that fails (a full disk) leaves that file as it was
    and the message names it and the files already written in full; no file is ever half-written. The action plugin
    adds the node's inventory name to the message.
options:
  blocks:
    description:
      - One entry per file. Each needs exactly one of O(blocks[].lines) and O(blocks[].entries).
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: The file (C(~) is the remote user's home). Created with its directory (mode C(0700)) if missing.
        type: str
        required: true
      marker:
        description: Name of the block, as it stands in its BEGIN and END marker lines.
        type: str
        required: true
      lines:
        description: The block's lines, without line ends.
        type: list
        elements: str
      entries:
        description:
          - Hosts to trust, as M(gtsfm.cluster.known_hosts_block)'s O(gtsfm.cluster.known_hosts_block#module:entries),
            each with C(names) and C(keys).
        type: list
        elements: dict
        suboptions:
          names:
            description: Names and addresses of the host, as written in known_hosts.
            type: list
            elements: str
            required: true
          keys:
            description: Host public keys, C(type base64 [comment]).
            type: list
            elements: str
            required: true
      hash_hosts:
        description: With O(blocks[].entries), write host names hashed, as C(HashKnownHosts yes) does.
        type: bool
        default: false
      mode:
        description:
          - The file's mode, as octal digits (V('0600')), applied whether or not the block changes. Without it an
            existing file keeps its mode and a new one gets C(0644).
        type: raw
      observed:
        description:
          - What a read made earlier in the play found in this file, as for M(gtsfm.cluster.managed_block)'s
            O(gtsfm.cluster.managed_block#module:observed). The action plugin judges each file by it on the controller
            and sends only the files that would change; when none would, it answers RV(decided_from=observed) without
            a remote call.
          - Used on the controller only; the module never receives it.
        type: dict
notes:
  - Check mode reports what would change and writes nothing.
seealso:
  - module: gtsfm.cluster.managed_block
  - module: gtsfm.cluster.known_hosts_block
  - module: gtsfm.cluster.cluster_node_info
extends_documentation_fragment:
  - gtsfm.cluster.attributes.observed
  - gtsfm.cluster.attributes
  - ansible.builtin.action_common_attributes
attributes:
  diff_mode:
    support: full
    details: Shows each changed file's block before and after.
  safe_file_operations:
    support: full
    description: Uses Ansible's strict file operation functions to ensure proper permissions and avoid data corruption.
    details: Each file's new content goes to a temporary file beside it, which is then renamed over it.
"""

EXAMPLES = r"""
- name: Ensure the mesh keys are authorized and the peers' host keys trusted, in one call
  gtsfm.cluster.managed_blocks:
    blocks:
      - path: ~/.ssh/authorized_keys
        marker: gtsfm.cluster.ssh_mesh
        lines: ['from="10.0.0.11,10.0.0.12" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... gtsfm.cluster node1']
        mode: "0600"
      - path: ~/.ssh/known_hosts
        marker: gtsfm.cluster.known_hosts
        entries:
          - names: [node1, 10.0.0.11]
            keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG..."]
"""

RETURN = r"""
decided_from:
  description:
    - V(observed) when the action plugin answered every file from O(blocks[].observed) and the module did not run.
  returned: when the module did not run
  type: str
  sample: observed
files:
  description:
    - For each of O(blocks), keyed by its O(blocks[].path) as given, C(changed), C(path) (the file written, a
      symlink's target) and C(lines) (the block's length); C(decided_from=observed) for a file judged on the controller.
  returned: always
  type: dict
  sample: {"~/.ssh/authorized_keys": {changed: true, path: /home/alice/.ssh/authorized_keys, lines: 4}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gtsfm.cluster.plugins.module_utils._managed_blocks import apply_blocks
from ansible_collections.gtsfm.cluster.plugins.module_utils.known_hosts import ENTRY_OPTIONS
from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import BlockError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            blocks=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    path=dict(type="str", required=True),
                    marker=dict(type="str", required=True),
                    lines=dict(type="list", elements="str"),
                    entries=dict(type="list", elements="dict", options=ENTRY_OPTIONS),
                    hash_hosts=dict(type="bool", default=False),
                    mode=dict(type="raw"),
                    # Read by the action plugin on the controller (plugins/action/managed_blocks.py), never sent here.
                    observed=dict(type="dict"),
                ),
                mutually_exclusive=[("lines", "entries")],
                required_one_of=[("lines", "entries")],
            ),
        ),
        supports_check_mode=True,
    )
    try:
        done = apply_blocks(module.params["blocks"], module.check_mode)
    except BlockError as exc:
        module.fail_json(msg=f"managed_blocks: {exc}")
    result = dict(
        changed=any(d["changed"] for d in done.values()),
        files={given: {k: d[k] for k in ("changed", "path", "lines")} for given, d in done.items()},
    )
    if module._diff:
        result["diff"] = [
            dict(
                before_header=given,
                after_header=given,
                before="\n".join(d["before"] or []) + "\n",
                after="\n".join(d["after"] or []) + "\n",
            )
            for given, d in done.items()
            if d["changed"]
        ]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
