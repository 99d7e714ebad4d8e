#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: fetch_status
short_description: Report the progress of a running M(gtsfm.cluster.fetch_verified)
version_added: 0.1.0
description:
  - Reads the status file that M(gtsfm.cluster.fetch_verified) keeps at its O(gtsfm.cluster.fetch_verified#module:status_path)
    and returns it, with a boolean RV(finished) to poll on with C(until).
  - C(async_status) says nothing until a job ends; polling this module shows bytes, total and rate at every retry,
    in the play's output and in callbacks and ansible-runner events.
  - Reads only; changes nothing.
options:
  path:
    description:
      - The status file. A file that does not exist yet reads as RV(phase=starting).
    type: path
    required: true
  run_id:
    description:
      - The O(gtsfm.cluster.fetch_verified#module:status_run_id) of the fetch to wait for. A status file with another
        run id (an earlier run's) reads as RV(phase=starting).
    type: str
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
"""

EXAMPLES = r"""
- name: Wait for the VGGT checkpoint, showing progress at each poll
  gtsfm.cluster.fetch_status:
    path: /home/alice/.cache/gtsfm.cluster/fetch-vggt.json
  register: __vggt_progress
  until: __vggt_progress.finished
  retries: 1440
  delay: 5
"""

RETURN = r"""
finished:
  description: Whether the fetch has ended (done or failed).
  returned: always
  type: bool
failed_fetch:
  description: Whether the fetch ended in failure (its message is in RV(msg)).
  returned: always
  type: bool
phase:
  description: C(starting), C(verify), C(download), C(retry), C(install), C(done) or C(failed).
  returned: always
  type: str
bytes:
  description: Bytes of the file on disk so far (resumed bytes included).
  returned: always
  type: int
total:
  description: Size of the file, when the origin announced it.
  returned: always
  type: int
percent:
  description: RV(bytes) as a percentage of RV(total), when known.
  returned: always
  type: float
rate:
  description: Bytes per second received in this run.
  returned: when the fetch has written its status
  type: float
url:
  description: The URL being fetched.
  returned: when the fetch has written its status
  type: str
dest:
  description: The destination file.
  returned: when the fetch has written its status
  type: str
msg:
  description: Progress in words, or the fetch's error.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gtsfm.cluster.plugins.module_utils._fetch import FetchError, human, read_status


def main():
    module = AnsibleModule(argument_spec=dict(path=dict(type="path", required=True), run_id=dict(type="str")), supports_check_mode=True)
    try:
        state = read_status(module.params["path"], module.params["run_id"])
    except FetchError as exc:
        module.fail_json(msg="fetch_status: %s" % exc)
    total = state.get("total")
    done = state.get("bytes") or 0
    percent = round(100.0 * done / total, 1) if total else None
    message = state.get("msg") or ""
    if not state.get("failed"):
        message = "%s: %s of %s%s" % (state.get("phase"), human(done), human(total) if total else "?",
                                      (" at %s/s" % human(state.get("rate") or 0)) if state.get("rate") else "")
    result = dict((k, v) for k, v in state.items() if k not in ("finished", "failed", "msg"))
    result.update(changed=False, finished=bool(state.get("finished")), failed_fetch=bool(state.get("failed")),
                  percent=percent, bytes=done, total=total, msg=message)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
