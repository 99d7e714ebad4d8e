# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a broadcast's status file (gtsfm.cluster.broadcast_status). Private to this collection."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import time

from ansible_collections.gtsfm.cluster.plugins.module_utils._broadcast import default_status_file


def _load(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError("cannot read %s: %s. Fix: point status_file at a broadcast's status file." % (path, exc))


def summary(status):
    """One line of progress: phase, share done, bytes per node."""
    nodes = status.get("nodes") or {}
    size = status.get("size") or 0
    active = dict((h, n) for h, n in nodes.items() if n.get("state") != "skipped")
    parts = []
    for host, node in sorted(active.items()):
        parts.append("%s %s %.1f MB" % (host, node.get("state", "?"), (node.get("bytes") or 0) / 1e6))
    done = sum(min(n.get("bytes") or 0, size) for n in active.values())
    share = " %d%%" % (100 * done // (size * len(active))) if size and active else ""
    return "%s%s: %s" % (status.get("phase", "?"), share, ", ".join(parts) or "no node to send to")


def read_status(path, status_file, jid, async_dir):
    """The module result: status file contents, finished flag, summary; the job's result once it is over."""
    target = status_file or default_status_file(path)
    status = _load(target)
    out = {"status_file": target}
    if status is None:
        out.update(finished=False, phase="waiting", nodes={}, msg="waiting: no status in %s yet" % target)
    else:
        out.update(finished=bool(status.get("finished")), phase=status.get("phase", "?"),
                   nodes=status.get("nodes") or {}, size=status.get("size"), msg=summary(status))
    if jid:
        if not re.match(r"^[0-9A-Za-z_.-]+$", jid):
            raise ValueError("jid %r is not an async job id. Fix: pass the ansible_job_id of the broadcast task." % jid)
        try:
            job = _load(os.path.join(os.path.expanduser(async_dir), jid))
        except ValueError:
            job = None  # being written right now: not over yet
        # As async_status reads it: a result without 'started' is the module's own, final one.
        finished = isinstance(job, dict) and ("started" not in job or job.get("finished") in (True, 1))
        out["finished"] = finished
        if finished:
            out["result"] = job
            out["msg"] = job.get("msg") or out["msg"]
    return out


def wait_status(path, status_file, jid, async_dir, wait, every=0.2):
    """read_status(), again every `every` seconds until the broadcast is over or `wait` seconds have passed.

    Returns as soon as it is over, so a poll loop notices the end at once instead of up to one poll delay later."""
    deadline = time.monotonic() + max(0.0, float(wait or 0))
    while True:
        out = read_status(path, status_file, jid, async_dir)
        if out["finished"] or time.monotonic() + every > deadline:
            return out
        time.sleep(every)
