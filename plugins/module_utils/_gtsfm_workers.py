# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GTSfM's GPU-path rule for cluster.yaml's workers (private to this collection).

The inventory plugin (on the controller) and gtsfm_job (on the scheduler) both apply it, so it lives here, where a
module can reach it. GTSfM's runner (HEAD b8f24c75) takes its GPU path when ``any("gpus" in w for w in workers)``:
a mapping with a ``gpus`` key, or, the same test on a plain host name, a name that merely contains "gpus". That path
starts a single-machine LocalCUDACluster (GTSfM's docs: multi-host multi-GPU raises NotImplementedError) instead of
an SSHCluster, and it reads each worker's ``gpus`` and ``host`` as mapping keys. So two shapes cannot run as written:

- a ``gpus`` entry among workers on more than one host: the other hosts are never used;
- a plain host name containing "gpus" (``gpus-01``): the runner leaves the SSH path for a name.

Both are errors here. One machine listed with ``gpus`` is GTSfM's own GPU shape (cluster_gpu.yaml), valid as such.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _host(entry):
    return entry.get("host") if isinstance(entry, dict) else entry


def gpu_entry(workers):
    """The index of the first entry that sends GTSfM's runner down its GPU path (its own test), or None."""
    for index, entry in enumerate(workers or []):
        if isinstance(entry, (dict, str)) and "gpus" in entry:
            return index
    return None


def gpu_path_problem(workers):
    """One sentence naming the entry and the fix when workers (cluster.yaml's list) cannot run as GTSfM's runner
    would read them, or None. The caller puts the file's name in front."""
    for index, entry in enumerate(workers or []):
        if isinstance(entry, str) and "gpus" in entry:
            return (
                f"workers[{index}] ({entry!r}): GTSfM's runner tests '\"gpus\" in worker', which is true for this host "
                "name, so it would take its single-machine GPU path instead of an SSH cluster. Fix: use a host name "
                "or IP address without 'gpus' in it (an ~/.ssh/config alias works)."
            )
    index = gpu_entry(workers)
    hosts = []
    for entry in workers or []:
        host = _host(entry)
        if isinstance(host, str) and host.lower() not in hosts:
            hosts.append(host.lower())
    if index is not None and len(hosts) > 1:
        return (
            f"workers[{index}] ({_host(workers[index])!r}) has 'gpus', so GTSfM's runner starts a single-machine "
            f"LocalCUDACluster and never uses the other hosts: the {len(hosts)} distinct hosts listed would not form "
            "one cluster. Fix: drop 'gpus' for a multi-host CPU cluster, or list only one machine for the GPU path."
        )
    return None
