#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: weights_plan
short_description: Plan on the controller which model weight files to fetch, which the controller holds, and their sums
version_added: 0.4.0
description:
  - The model_weights role's planning step. Checks the settings and the cluster (the scheduler is a member; a checkout
    under C(~) needs one home directory path on every node), resolves the manifest (O(files), or GTSfM's O(sets))
    against the checkout, the mirror, the lock file and the controller's files, and returns the plan the role's
    steps act on.
  - A file the controller holds under O(controller_dir) is hashed; one whose sum is not its given or pinned sum stops
    the play before anything is copied, naming the file and the fix.
  - This is an action plugin that runs on the controller only; it reads the lock file and the held files there and
    never connects to the task's host. It changes nothing.
options:
  files:
    description: The user's entries (C({url, dest, sha256?, size?})); when not empty they replace O(sets).
    type: list
    elements: raw
    default: []
  sets:
    description: GTSfM's weight sets, when O(files) is empty.
    type: list
    elements: str
    default: []
  checkout_dir:
    description: The GTSfM checkout on the nodes (absolute or C(~/)); relative dests land under it.
    type: str
    required: true
  mirror:
    description: Base URL of a mirror serving the files in the checkout's layout; empty for the origins.
    type: str
    default: ""
  lock_file:
    description: The lock file on the controller that pins the sums of entries without one (read only here).
    type: str
    required: true
  repin:
    description: Ignore the pins of entries without a given sum (they are fetched and pinned again).
    type: bool
    default: false
  controller_dir:
    description: Directory on the controller holding files in the checkout's layout.
    type: str
    default: ""
  fetch_on:
    description: Where the downloads run, C(scheduler) or C(controller).
    type: str
    default: scheduler
  retries:
    description: Retries of a broken download, checked to be 0 or more.
    type: int
    default: 5
  fetch_timeout:
    description: Longest time one download may take, checked to be positive.
    type: int
    default: 14400
  poll_delay:
    description: Seconds between progress polls, checked to be positive.
    type: int
    default: 5
  nodes:
    description: Every member's C(cluster_facts_node), as the stage gtsfm.cluster.cluster_facts publishes it.
    type: list
    elements: dict
    required: true
  scheduler:
    description: The scheduler's inventory name.
    type: str
    required: true
extends_documentation_fragment:
  - gtsfm.cluster.attributes.action
  - gtsfm.cluster.attributes.info_module
  - gtsfm.cluster.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
seealso:
  - module: gtsfm.cluster.fetch_verified
  - module: gtsfm.cluster.broadcast
"""

EXAMPLES = r"""
- name: Plan which weight files to fetch and which the controller holds
  gtsfm.cluster.weights_plan:
    sets: [superglue, vggt]
    checkout_dir: ~/gtsfm
    lock_file: "{{ inventory_dir }}/model_weights.lock.json"
    nodes: "{{ groups['gtsfm_cluster'] | map('extract', hostvars, 'cluster_facts_node') }}"
    scheduler: "{{ cluster_facts_scheduler }}"
  register: plan
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
entries:
  description: Every entry resolved (C(name), C(origin), C(url), C(path), C(cache), C(sha256), C(given), C(pinned),
    C(size), C(id)).
  returned: success
  type: list
  elements: dict
held:
  description: The entries whose file the controller holds, each with C(found_sha256) and C(found_size).
  returned: success
  type: list
  elements: dict
download:
  description: The entries to download.
  returned: success
  type: list
  elements: dict
lock_text:
  description: The lock file's text (empty when there is none).
  returned: success
  type: str
fetch_on:
  description: Where the downloads run.
  returned: success
  type: str
run_id:
  description: This run's id for the progress records of its long steps.
  returned: success
  type: str
"""
