#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: broadcast_status
short_description: Report the progress of a running gtsfm.cluster.broadcast
version_added: 0.2.0
description:
  - Reads the status file a M(gtsfm.cluster.broadcast) run writes on the source node and returns it, with the
    bytes each node has received so far and a one-line summary in RV(msg).
  - Meant to be polled with C(until)/C(retries)/C(delay) while the broadcast runs with C(async) and C(poll=0); each
    retry reaches callbacks and ansible-runner's event stream with the full result, so progress shows while it runs.
  - Given O(jid), it also reads the async job's result file and returns RV(finished) and RV(result) from it, so no
    separate M(ansible.builtin.async_status) is needed.
  - Reads only; never writes.
options:
  path:
    description:
      - The O(gtsfm.cluster.broadcast#module:path) of the broadcast; finds its default status file. Give this or
        O(status_file).
    type: path
  status_file:
    description:
      - The O(gtsfm.cluster.broadcast#module:status_file) of the broadcast, when it set one.
    type: path
  jid:
    description:
      - The C(ansible_job_id) of the broadcast task started with C(async) and C(poll=0).
    type: str
  wait:
    description:
      - Seconds to wait for the broadcast to finish before answering; it answers as soon as the broadcast is over.
        Poll with this and C(delay=0) to notice the end at once instead of up to one C(delay) later (a broadcast
        that has nothing to send takes well under a second), while progress still shows every O(wait) seconds.
      - 0 answers at once.
    type: float
    default: 0
    version_added: 0.3.0
  async_dir:
    description:
      - Directory of async job results on the source node (Ansible's C(ANSIBLE_ASYNC_DIR)).
    type: path
    default: ~/.ansible_async
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
seealso:
  - module: gtsfm.cluster.broadcast
"""

EXAMPLES = r"""
- name: Start the broadcast of the env tree
  gtsfm.cluster.broadcast:
    path: /opt/envs/gtsfm
    hosts: "{{ cluster_facts_home_writers | difference([cluster_facts_scheduler]) }}"
  delegate_to: "{{ cluster_facts_scheduler }}"
  run_once: true
  async: 7200
  poll: 0
  register: __env_job

- name: Wait for every node to hold the env
  gtsfm.cluster.broadcast_status:
    path: /opt/envs/gtsfm
    jid: "{{ __env_job.ansible_job_id }}"
  delegate_to: "{{ cluster_facts_scheduler }}"
  run_once: true
  register: __env
  until: __env.finished
  retries: 1440
  delay: 5
  failed_when: __env.finished and __env.result.failed | default(false)

- name: The same, answering as soon as the broadcast is over (progress every 5 s)
  gtsfm.cluster.broadcast_status:
    path: /opt/envs/gtsfm
    jid: "{{ __env_job.ansible_job_id }}"
    wait: 5
  delegate_to: "{{ cluster_facts_scheduler }}"
  run_once: true
  register: __env
  until: __env.finished
  retries: 1440
  delay: 0
  failed_when: __env.finished and __env.result.failed | default(false)
"""

RETURN = r"""
finished:
  description:
    - Whether the broadcast is over. With O(jid), from the async job's result file; without it, from the status
      file.
  returned: always
  type: bool
phase:
  description: C(waiting) (no status yet), C(probing), C(sending), C(repairing), C(done) or C(failed).
  returned: always
  type: str
nodes:
  description: Per node, C(state) (C(pending), C(receiving), C(received), C(skipped), C(failed)), C(bytes) so far, C(seconds).
  returned: always
  type: dict
  sample: {node2: {state: receiving, bytes: 73400320, seconds: 6.1}}
size:
  description: Content bytes of the broadcast.
  returned: when the status file exists
  type: int
msg:
  description: "One line of progress, e.g. C(sending 35%: node2 receiving 70.0 MB, node3 receiving 69.2 MB)."
  returned: always
  type: str
result:
  description: The broadcast's own result, once the async job has finished (with O(jid)).
  returned: when O(jid) is given and the job has finished
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gtsfm.cluster.plugins.module_utils._broadcast_status import wait_status


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path"),
            status_file=dict(type="path"),
            jid=dict(type="str"),
            async_dir=dict(type="path", default="~/.ansible_async"),
            wait=dict(type="float", default=0),
        ),
        required_one_of=[("path", "status_file")],
        supports_check_mode=True,
    )
    if not 0 <= module.params["wait"] <= 600:
        module.fail_json(msg="broadcast_status: wait must be between 0 and 600 seconds, got %s." % module.params["wait"])
    try:
        result = wait_status(module.params["path"], module.params["status_file"], module.params["jid"],
                             module.params["async_dir"], module.params["wait"])
    except ValueError as exc:
        module.fail_json(msg="broadcast_status: %s" % exc)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
