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
options:
  path:
    description:
      - The known_hosts file. Created (mode O(mode)) with its directory (mode C(0700)) if missing.
    type: path
    default: ~/.ssh/known_hosts
  entries:
    description:
      - Hosts to trust, each with every name a client may use for it and its host public keys.
    type: list
    elements: dict
    required: true
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
  mode:
    description:
      - Mode of a newly created file. An existing file keeps its mode.
    type: raw
    default: "0644"
  state:
    description:
      - V(absent) removes the block and leaves the rest of the file.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Check mode reports what would change and writes nothing; diff mode shows the block before and after.
seealso:
  - module: gtsfm.cluster.ssh_host_keys
  - module: ansible.builtin.known_hosts
author:
  - gtsfm.cluster maintainers (@borglab)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
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
    entries: []
    state: absent
"""

RETURN = r"""
path:
  description: Absolute path of the file.
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
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gtsfm.cluster.plugins.module_utils.known_hosts import render_lines
from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import (
    BlockError, read_text, replace_block, split_block)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="~/.ssh/known_hosts"),
            entries=dict(type="list", elements="dict", required=True, options=dict(
                names=dict(type="list", elements="str", required=True),
                keys=dict(type="list", elements="str", required=True, no_log=False),
            )),
            hash_hosts=dict(type="bool", default=False),
            marker=dict(type="str", default="gtsfm.cluster.known_hosts"),
            mode=dict(type="raw", default="0644"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    path = os.path.abspath(module.params["path"])
    marker = module.params["marker"]
    try:
        before = read_text(path)
        exists = before is not None
        before = before or ""
        old_block = split_block(before, marker)[1]
        lines = None
        if module.params["state"] == "present":
            lines = render_lines(module.params["entries"], module.params["hash_hosts"], old_block)
        after = replace_block(before, marker, lines)
    except (BlockError, ValueError, OSError) as exc:
        module.fail_json(msg="known_hosts_block: %s: %s" % (path, exc))
    changed = after != before
    result = dict(changed=changed, path=path, lines=len(lines or []))
    if module._diff:
        result["diff"] = dict(before_header=path, after_header=path,
                              before="\n".join(old_block or []) + "\n", after="\n".join(lines or []) + "\n")
    if changed and not module.check_mode:
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o700)
        fd, tmp = tempfile.mkstemp(prefix=".known_hosts.", dir=directory)
        with os.fdopen(fd, "w") as handle:
            handle.write(after)
        if exists:
            module.set_mode_if_different(tmp, "%o" % (os.stat(path).st_mode & 0o7777), False)
        else:
            module.set_mode_if_different(tmp, module.params["mode"], False)
        module.atomic_move(tmp, path)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
