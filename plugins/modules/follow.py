#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: follow
short_description: Wait for long background steps to end, printing progress a person reads
version_added: 0.4.0
description:
  - Follows one or more steps running in the background on the task's host (a task started with C(async) and
    C(poll=0), a progress record a module or the job supervisor keeps, or both) until each has ended, and returns
    their results. The waiting happens in the controller, in one loop; its depth, memory and work per poll do not
    grow with the number of polls, so a job of many hours is followed to its end.
  - Each poll is one read-only shell command on the host (no module is sent), which prints the step's progress
    record, its async result file and its log's tail.
  - "While a step runs, one line per step is printed on the play's output at a steady pace and at each change of
    phase, whatever the stdout callback, for example
    C(node1 -> 7 nodes: environment sending, 1.2 / 3.1 GB, 96.0 MB/s, about 20 s left, 13 s elapsed).
    It never prints C(FAILED - RETRYING), as there are no retries."
  - Set the variable C(gtsfm_cluster_progress=false) to turn the lines off, and C(gtsfm_cluster_progress_every)
    (seconds, default 5) to change their pace.
  - A step whose writer process is gone without a result, a host that stops answering for
    O(unreachable_grace) seconds, and a step still running after O(timeout) fail the task, naming the host and
    the step. A step that is still running is left running.
  - This is an action plugin; it needs no Python on the host beyond what the step itself uses.
options:
  steps:
    description:
      - The steps to follow on the host, each with the suboptions below. Mutually exclusive with O(label).
    type: list
    elements: dict
    suboptions:
      label:
        description: What the step is, as the progress lines and messages name it (C(environment), C(weights)).
        type: str
        required: true
      status:
        description:
          - Path of the step's progress record on the host (C(~/) is the remote user's home). A missing,
            half-written or other run's record reads as not written yet.
        type: str
      run_id:
        description: The run id the record must carry; a record of another run reads as not written yet.
        type: str
      job:
        description:
          - The registered result of the task that started the step with C(async) and C(poll=0). Its async result
            file decides when the step has ended and holds its result.
        type: raw
      log:
        description: A log file on the host whose last line each progress line shows.
        type: str
      notice:
        description:
          - Lines printed once, each as it is (never wrapped, so a command in one pastes whole), while the step
            runs, as soon as its record holds O(steps[].notice_when). C({field}) in a line is replaced by that field
            of the record (for example the port a job's dashboard really listens on).
        type: list
        elements: str
        default: []
      notice_when:
        description: The record field that must be set before O(steps[].notice) is printed; unset prints it at the
          first read.
        type: str
  label:
    description: The one step's label, when O(steps) is not used (then O(status), O(run_id), O(job), O(log)).
    type: str
  status:
    description: See O(steps[].status).
    type: str
  run_id:
    description: See O(steps[].run_id).
    type: str
  job:
    description: See O(steps[].job).
    type: raw
  log:
    description: See O(steps[].log).
    type: str
  notice:
    description: See O(steps[].notice).
    type: list
    elements: str
    default: []
  notice_when:
    description: See O(steps[].notice_when).
    type: str
  timeout:
    description: Seconds to follow before failing; the steps go on in the background.
    type: float
    default: 86400
  poll:
    description:
      - Longest pause between two reads, in seconds. The first reads come faster (0.25 s, doubling), so a short
        step costs well under a second.
    type: float
    default: 2
  report_every:
    description: Seconds between two progress lines of a step that runs on; default the variable
      C(gtsfm_cluster_progress_every), else 5.
    type: float
  unreachable_grace:
    description: Seconds the host may fail to answer before the task fails.
    type: float
    default: 60
  cleanup:
    description: Remove the async result files of the steps once their results are read.
    type: bool
    default: true
extends_documentation_fragment:
  - gtsfm.cluster.attributes.action
  - gtsfm.cluster.attributes.info_module
  - gtsfm.cluster.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
seealso:
  - module: gtsfm.cluster.progress_info
  - module: ansible.builtin.async_status
notes:
  - Results of an async step come from its async result file, as M(ansible.builtin.async_status) reads it; the
    task reports C(changed) when a step's result does, and fails when one failed, with that step's message.
"""

EXAMPLES = r"""
- name: Start sending the environment along the chain
  gtsfm.cluster.broadcast:
    path: /opt/envs/gtsfm
    hosts: "{{ groups['gtsfm_cluster'][1:] }}"
  async: 7200
  poll: 0
  register: __env_job

- name: Wait until every node holds the environment, showing bytes, rate and time left
  gtsfm.cluster.follow:
    label: environment
    job: "{{ __env_job }}"
    status: "~/.cache/gtsfm.cluster/broadcast-{{ '/opt/envs/gtsfm' | hash('sha256') | truncate(16, True, '') }}.json"
    timeout: 7200
"""

RETURN = r"""
steps:
  description: Per step, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    label:
      description: The step's label, as the progress lines name it.
      type: str
    result:
      description: The step's module result (from its async result file), or the failure the follow found.
      type: dict
    record:
      description: The step's last progress record, empty when none was written.
      type: dict
result:
  description: The one step's module result, when a single step was followed.
  returned: always
  type: dict
polls:
  description: How many reads the follow made.
  returned: always
  type: int
seconds:
  description: Seconds spent following.
  returned: success
  type: float
"""
