#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: fetch_verified
short_description: Download a file over HTTP(S) to disk, resumable, verified by SHA-256, installed atomically
version_added: 0.3.0
description:
  - Makes sure O(dest) holds the file at O(url). When O(dest) already exists and matches O(sha256) (or no O(sha256)
    is given), nothing is asked of the origin.
  - The body is streamed to disk, never held in memory, and hashed while it streams. It is written to a partial
    file beside O(dest), named C(.NAME.gtsfm-partial) (hidden, and never the name anything reads), and renamed onto
    O(dest) only after its SHA-256 (and O(size), when given) match. A truncated or mismatching file never sits at
    O(dest).
  - A transfer that breaks off is retried (O(retries) times, with a growing pause) and resumed from the partial file
    with an HTTP C(Range) request. An origin that ignores C(Range) is read again from the start.
  - The origin's validator (a strong C(ETag), else C(Last-Modified)) and the file's size are kept beside the partial
    file (C(.NAME.gtsfm-partial.json)), so that a partial file left by an earlier run is resumed only with
    C(If-Range) against the same file. Without a kept validator, when the size differs, or when the origin answers
    the range with the whole file, the download starts over from byte 0 (a head of an old file is never joined to
    the tail of a new one).
  - Before the body is read, the announced C(Content-Length) (or O(size)) is compared with the free space of
    O(dest)'s file system. The body may never grow beyond O(size), the announced C(Content-Length), or (when the
    origin announces none) the free space; a body that does fails, naming the URL.
  - A disk that fills during the download (something else took the space) fails at once, without retries, naming
    O(dest), its file system and how much arrived; what arrived stays in the partial file, and a run after space is
    freed resumes from there.
  - A mismatch fails with one message naming O(dest), O(url) and both sums, and removes the partial file. An
    existing O(dest) that does not match O(sha256) is removed before the download, so a wrong file is never left in
    place.
  - With O(status_path), the module keeps a progress record (phase, bytes, total, rate); run the module with C(async)
    and follow it with M(gtsfm.cluster.follow) to see bytes, rate and time left on large
    files.
  - One fetch of O(dest) at a time. A fetch holds an exclusive lock (C(.NAME.gtsfm-fetch.lock) beside O(dest),
    removed when it ends) from its first look at O(dest) to its end; a second one - a re-run after the controller
    was killed while the first went on in the background, or a second controller - waits for it, then verifies what
    it placed and asks the origin nothing. The kernel drops the lock with the process that held it. Check mode takes
    no lock.
  - Uses the Python standard library only (C(urllib)); needs no root.
options:
  url:
    description:
      - HTTP or HTTPS URL of the file.
      - A C(user:password@) in it is sent as a Basic C(Authorization) header (and treated as one of O(headers)).
      - Its userinfo, query and fragment are shown as C(********) in every message, result and status file, and
        the module's log line on the node omits the URL, so a token in the URL stays out of them.
    type: str
    required: true
  dest:
    description:
      - Absolute path of the file to make. Missing parent directories are created.
    type: path
    required: true
  sha256:
    description:
      - Expected SHA-256 of the file, 64 hex digits (a C(sha256:) prefix is accepted).
      - Without it, an existing O(dest) is accepted as it is and a download is accepted as it comes; RV(sha256)
        reports the sum, so a caller can pin it.
    type: str
  size:
    description:
      - Expected size in bytes; checked against the origin's C(Content-Length) before the body is read, and against
        the downloaded file.
    type: int
  force:
    description:
      - Download again even when O(dest) exists (for re-pinning). O(dest) is replaced only after the new body is
        verified; on a mismatch the old file stays.
    type: bool
    default: false
  retries:
    description:
      - How many more attempts after the first one fails for a reason that may pass (a broken connection, a timeout,
        HTTP 408, 429 or 5xx). Other HTTP errors fail at once.
    type: int
    default: 5
  retry_delay:
    description:
      - Seconds to wait before the first retry; the wait doubles with each retry, up to 60 seconds.
    type: float
    default: 2.0
  timeout:
    description:
      - Seconds to wait for the origin to connect or to send the next block.
    type: float
    default: 60.0
  deadline:
    description:
      - The longest time, in seconds, the download may take, all attempts and the pauses between them included.
        A slow origin (one that sends a little just within O(timeout), or never ends its body) fails with a
        message naming the URL; what arrived is kept, and the next run resumes it if the origin still serves the
        same file.
      - Checked after each block received, so the overshoot is at most O(timeout).
    type: float
    default: 14400.0
    version_added: 0.4.0
  headers:
    description:
      - Extra HTTP request headers (for example an C(Authorization) header for a private mirror).
      - They are sent to the origin of O(url) only (its scheme, host and port, or the same host upgraded from http
        to https); on a redirect to another origin they are dropped. A redirect from https to plain http is
        refused.
      - Their values never appear in results or logs (no_log).
    type: dict
    default: {}
  validate_certs:
    description:
      - Verify the TLS certificate of an HTTPS origin. Leave this on; turn it off only for a mirror you trust whose
        certificate cannot be verified.
    type: bool
    default: true
  status_path:
    description:
      - File to keep the progress record in (JSON, replaced atomically about once a second), for
        M(gtsfm.cluster.follow) and M(gtsfm.cluster.progress_info).
    type: path
  status_run_id:
    description:
      - A word written into the progress record, so that M(gtsfm.cluster.follow) with the same C(run_id) ignores
        a record an earlier run left.
    type: str
  free_reserve:
    description:
      - Bytes to leave free on O(dest)'s file system beyond the file itself.
    type: int
    default: 0
notes:
  - In check mode no request is sent and nothing is written; an existing O(dest) is still hashed, so the module
    reports whether it would download.
  - The file options (O(mode), O(owner), ...) apply to O(dest) after it is installed.
seealso:
  - module: gtsfm.cluster.follow
  - module: ansible.builtin.get_url
extends_documentation_fragment:
  - gtsfm.cluster.attributes.idempotent
  - gtsfm.cluster.attributes
  - ansible.builtin.files
  - ansible.builtin.action_common_attributes
attributes:
  safe_file_operations:
    support: full
    description: Uses Ansible's strict file operation functions to ensure proper permissions and avoid data corruption.
    details: The file is written to a partial file beside O(dest) and renamed onto it.
  idempotent:
    details: A second run with the same arguments changes nothing and sends no request.
"""

EXAMPLES = r"""
- name: Ensure the SuperPoint weights are in place, pinned to a known sum
  gtsfm.cluster.fetch_verified:
    url: https://github.com/magicleap/SuperGluePretrainedNetwork/raw/master/models/weights/superpoint_v1.pth
    dest: /home/alice/gtsfm/thirdparty/SuperGluePretrainedNetwork/models/weights/superpoint_v1.pth
    sha256: 52b6708629640ca883673b5d5c097c4ddad37d8048b33f09c8ca0d69db12c40e

- name: Fetch a large file in the background, with progress
  gtsfm.cluster.fetch_verified:
    url: https://huggingface.co/facebook/VGGT-1B/resolve/main/model.pt
    dest: /home/alice/gtsfm/thirdparty/vggt/weights/model.pt
    status_path: /home/alice/.cache/gtsfm.cluster/fetch-vggt.json
  async: 7200
  poll: 0
  register: __vggt_job

- name: Wait for it, printing bytes, rate and time left
  gtsfm.cluster.follow:
    label: VGGT weights
    job: "{{ __vggt_job }}"
    status: /home/alice/.cache/gtsfm.cluster/fetch-vggt.json
"""

RETURN = r"""
dest:
  description: Absolute path of the file.
  returned: always
  type: str
  sample: /home/alice/gtsfm/thirdparty/vggt/weights/model.pt
url:
  description: The URL asked for, its userinfo, query and fragment shown as C(********).
  returned: always
  type: str
sha256:
  description: SHA-256 of the file now at O(dest) (in check mode, O(sha256) when a download would be needed).
  returned: always
  type: str
  sample: 52b6708629640ca883673b5d5c097c4ddad37d8048b33f09c8ca0d69db12c40e
size:
  description: Size of the file in bytes (in check mode, O(size) when a download would be needed).
  returned: always
  type: int
fetched:
  description: Whether a body was downloaded and installed in this run.
  returned: always
  type: bool
requests:
  description: HTTP requests sent to the origin in this run (0 when O(dest) was already right).
  returned: always
  type: int
downloaded:
  description: Bytes received from the origin in this run.
  returned: always
  type: int
resumed_from:
  description: Byte offsets at which the transfer was resumed with a C(Range) request.
  returned: always
  type: list
  elements: int
removed_mismatch:
  description: Whether an existing O(dest) that did not match O(sha256) was removed.
  returned: always
  type: bool
seconds:
  description: Wall time of the module's work.
  returned: always
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gtsfm.cluster.plugins.module_utils._fetch import (
    DEFAULT_DEADLINE,
    FetchError,
    fetch,
    redact_url,
    url_secrets,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            # no_log keeps the whole URL out of the node's log line of the invocation; main() then masks only
            # the parts that may carry a secret, so results still show which URL it was.
            url=dict(type="str", required=True, no_log=True),
            dest=dict(type="path", required=True),
            sha256=dict(type="str"),
            size=dict(type="int"),
            force=dict(type="bool", default=False),
            retries=dict(type="int", default=5),
            retry_delay=dict(type="float", default=2.0),
            timeout=dict(type="float", default=60.0),
            deadline=dict(type="float", default=DEFAULT_DEADLINE),
            headers=dict(type="dict", default={}, no_log=True),
            validate_certs=dict(type="bool", default=True),
            status_path=dict(type="path"),
            status_run_id=dict(type="str"),
            free_reserve=dict(type="int", default=0),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    params = module.params
    module.no_log_values.discard(params["url"])
    module.no_log_values.update(url_secrets(params["url"]))
    shown = redact_url(params["url"])
    if not params["url"].lower().startswith(("http://", "https://")):
        module.fail_json(
            msg=f"fetch_verified: url {shown!r} for {params['dest']} is not an http:// or https:// URL. Fix: give the "
            "file's download URL."
        )
    try:
        result = fetch(
            params["url"],
            params["dest"],
            sha256=params["sha256"],
            size=params["size"],
            force=params["force"],
            retries=params["retries"],
            retry_delay=params["retry_delay"],
            timeout=params["timeout"],
            deadline=params["deadline"],
            headers=params["headers"],
            validate_certs=params["validate_certs"],
            status_path=params["status_path"],
            free_reserve=params["free_reserve"],
            check_mode=module.check_mode,
            status_run_id=params["status_run_id"],
        )
    except FetchError as exc:
        module.fail_json(msg=f"fetch_verified: {exc}", url=shown, dest=params["dest"])
    if not module.check_mode or not result["changed"]:
        file_args = module.load_file_common_arguments(params, path=result["dest"])
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
