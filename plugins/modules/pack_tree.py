#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pack_tree
short_description: Pack a directory on the controller into one tar, so that it travels as one stream
version_added: 0.4.0
description:
  - Writes O(src) (without what O(exclude) leaves out) into the tar O(dest) on the controller, so that
    M(ansible.builtin.copy) sends it in one stream and M(ansible.builtin.unarchive) unpacks it, instead of a copy
    that asks the node about every file.
  - The tar is deterministic (names sorted, owners 0, whole-second times); the same tree gives the same bytes, so the
    copy sends it again only when the tree changed. It is rewritten only when the tree's signature (paths, types,
    modes, sizes, times, inodes) changed, and replaced atomically.
  - This is an action plugin that runs on the controller only; it never connects to the task's host.
options:
  src:
    description: The directory on the controller.
    type: path
    required: true
  dest:
    description: The tar to write on the controller; C(DEST.json) beside it keeps the tree's signature.
    type: path
    required: true
  exclude:
    description:
      - Paths inside O(src) left out, as M(gtsfm.cluster.broadcast)'s O(gtsfm.cluster.broadcast#module:exclude)
        reads them (a bare name at any depth, C(/path) from the top, a trailing slash for directories only).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - gtsfm.cluster.attributes.action
  - gtsfm.cluster.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    details: The tar is written in check mode too (it is the controller's own cache, never a node's file).
seealso:
  - module: ansible.builtin.unarchive
"""

EXAMPLES = r"""
- name: Pack the checkout on the controller
  gtsfm.cluster.pack_tree:
    src: ~/src/gtsfm
    dest: ~/.cache/gtsfm.cluster/gtsfm.tar
    exclude: [__pycache__/, "*.pyc", /results/]
  run_once: true
"""

RETURN = r"""
path:
  description: The tar.
  returned: success
  type: str
files:
  description: Entries packed (folders and links included).
  returned: success
  type: int
bytes:
  description: Bytes of the regular files packed.
  returned: success
  type: int
"""
