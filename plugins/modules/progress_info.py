#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: progress_info
short_description: Read a long step's progress record (and its async result) on the node
version_added: 0.4.0
description:
  - Reads the progress record that a long step of this collection keeps on the node (M(gtsfm.cluster.broadcast),
    M(gtsfm.cluster.fetch_verified), M(gtsfm.cluster.python_env), the job supervisor of M(gtsfm.cluster.gtsfm_job))
    and, with O(jid), the step's async result file, and returns both with one line of progress in RV(msg).
  - A record that is missing, half-written or another run's (O(run_id)) reads as not written yet
    (RV(record) empty, RV(finished=false)), by the same rule as M(gtsfm.cluster.follow).
  - To wait for a step, use M(gtsfm.cluster.follow) (it waits in the controller and prints progress). This module is
    the one-shot read, for example from another controller while a step runs.
  - Reads only; changes nothing.
options:
  path:
    description: The progress record. C(~) is the remote user's home.
    type: path
  run_id:
    description: The run id the record must carry.
    type: str
  jid:
    description: The C(ansible_job_id) of the task that started the step with C(async).
    type: str
  async_dir:
    description: Where the async result files are.
    type: path
    default: ~/.ansible_async
  wait:
    description:
      - Seconds to wait for the step to end before answering with the progress so far; answers at once when it
        ends. C(0) answers at once.
    type: float
    default: 0
extends_documentation_fragment:
  - gtsfm.cluster.attributes.info_module
  - gtsfm.cluster.attributes
  - ansible.builtin.action_common_attributes
seealso:
  - module: gtsfm.cluster.follow
"""

EXAMPLES = r"""
- name: Show how far the environment copy is, from another terminal
  gtsfm.cluster.progress_info:
    path: ~/.cache/gtsfm.cluster/progress/conda_env-env.json
  register: __env_progress

- name: Print it
  ansible.builtin.debug:
    msg: "{{ __env_progress.msg }}"
"""

RETURN = r"""
record:
  description:
    - The record as written (run_id, what, phase, done, total, unit, rate, started, updated, pid, finished,
      failed, msg, result, nodes), or empty when there is none yet.
  returned: always
  type: dict
finished:
  description: Whether the step has ended; with O(jid), from its async result file, else from the record.
  returned: always
  type: bool
result:
  description: The step's own result once it has ended (the module's result with O(jid), else the record's).
  returned: when RV(finished)
  type: dict
msg:
  description: "One line of progress, e.g.
    C(environment sending, 1.2 / 3.1 GB, 96.0 MB/s, about 20 s left, 13 s elapsed)."
  returned: always
  type: str
"""

import os
import re
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gtsfm.cluster.plugins.module_utils import _progress


def _read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def look(params):
    out = {"record": {}, "finished": False}
    if params["path"]:
        out["record"] = _progress.read(params["path"], params["run_id"]) or {}
        out["finished"] = bool(out["record"].get("finished"))
        if out["finished"]:
            out["result"] = out["record"].get("result") or {}
    if params["jid"]:
        finished, result = _progress.read_async(_read_text(os.path.join(params["async_dir"], params["jid"])))
        out["finished"] = finished
        if finished:
            out["result"] = result
    out["msg"] = (
        _progress.summary(out["record"] or None)
        if out["record"]
        else ("ended" if out["finished"] else "no progress record yet")
    )
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path"),
            run_id=dict(type="str"),
            jid=dict(type="str"),
            async_dir=dict(type="path", default="~/.ansible_async"),
            wait=dict(type="float", default=0),
        ),
        required_one_of=[("path", "jid")],
        supports_check_mode=True,
    )
    p = module.params
    if not 0 <= p["wait"] <= 600:
        module.fail_json(msg=f"progress_info: wait must be between 0 and 600 seconds, got {p['wait']}.")
    if p["jid"] and not re.match(r"^[0-9A-Za-z_.-]+$", p["jid"]):
        module.fail_json(
            msg=f"progress_info: jid {p['jid']!r} is not an async job id. Fix: pass the ansible_job_id of the task "
            "that started the step."
        )
    deadline = time.monotonic() + p["wait"]
    try:
        while True:
            out = look(p)
            if out["finished"] or time.monotonic() + 0.2 > deadline:
                break
            time.sleep(0.2)
    except OSError as exc:
        module.fail_json(msg=f"progress_info: cannot read {p['path']}: {exc}. Fix: point path at a progress record.")
    module.exit_json(changed=False, **out)


if __name__ == "__main__":
    main()
