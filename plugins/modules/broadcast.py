#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: broadcast
short_description: Copy a file or directory tree from one node to every node along a verified, pipelined SSH chain
version_added: 0.3.0
description:
  - Runs on the source node (C(delegate_to) it, with C(run_once)) and copies O(path), a file or a directory tree, to
    the same absolute path on every node of O(hosts), along a chain source -> first -> second -> ... Each node
    writes what it receives while passing it on, so the time is about one copy's time whatever the number of nodes.
  - Travels over the cluster's own OpenSSH mesh, as the ssh_mesh and known_hosts roles build it, with C(BatchMode)
    and strict host key checking; no new daemon and no open port. Nodes need python3 and, for trees, tar.
  - A directory tree travels as one tar stream (symlinks, hard links and modes kept; owners are the receiving user).
  - Verified. Every node hashes (SHA-256) what it receives as it streams and compares the hash with the source's;
    a tree is also unpacked and compared entry by entry (paths, types, modes, sizes, contents, links) with the
    source's. Only a verified copy is moved into place, by a rename on the same filesystem (a tree is swapped whole
    with C(renameat2) where the kernel has it), so an interrupted or corrupt transfer never leaves anything at the
    destination.
  - Idempotent. A record C(.<name>.gtsfm-broadcast.json) beside the destination keeps the hash of what was placed
    and a signature of it as placed (sizes, times, inodes); a node whose record names the same content and whose
    destination still matches the signature is skipped (O(checksum=true) re-hashes the destination instead). A
    re-run with nothing changed opens one probe per node, sends nothing and reports C(changed=false). The source's
    own hash is cached the same way beside O(path).
  - Failure. A node that dies or whose link breaks mid-transfer is named; the nodes after it get the data in a
    repair pass that chains around it (O(repair_rounds)); the task then fails naming every node without a verified
    copy, and a re-run completes them. Keepalives and O(timeout) make sure a dead peer never hangs the chain.
  - Progress. While it runs it keeps a progress record (O(status_file), bytes per node); run the task with C(async)
    and C(poll=0) and follow it with M(gtsfm.cluster.follow), which prints bytes, rate and time left.
  - Shared home directories. Targets that share a filesystem would write the same path twice (and the second
    waits for the first's lock). Pass one node per home, the stage's C(cluster_facts_home_writers) (without the
    source's own home when the path is in it).
options:
  path:
    description:
      - Absolute path of the file or directory on the source node; it is written to the same path on every target.
        Parent directories are created on the targets as needed.
    type: path
    required: true
  hosts:
    description:
      - Names of the target nodes as the source's SSH reaches them (the inventory names, which the known_hosts role
        trusts), in chain order. Duplicates are dropped.
    type: list
    elements: str
    required: true
  exclude:
    description:
      - Paths inside a directory tree that the broadcast leaves alone. What they match is neither part of the
        tree's identity (so a change there changes nothing), nor sent, nor removed, replaced or touched on the
        targets, where each node keeps what it has there (hard-linked into the new copy when the tree is swapped).
      - A pattern without a slash (V(__pycache__), V(*.pyc)) matches an entry of that name at any depth; a pattern
        with a slash at its start or in its middle (V(/results), V(thirdparty/vggt/weights/model.pt)) matches the
        path from the tree's top; a trailing slash (V(__pycache__/)) matches directories only. C(*), C(?) and
        C([...]) match within one path component; C(**) is not supported. An excluded directory is left out with
        everything in it, and so is a directory that holds excluded entries and nothing else (a folder made only
        for a weight file).
      - The same patterns, with a slash put in front of those with a slash in their middle, mean the same to
        C(rsync --exclude).
      - Only for a directory tree; with a file O(path) the task fails.
    type: list
    elements: str
    default: []
  order:
    description:
      - Chain order. C(given) keeps O(hosts) as listed (inventory order), C(sorted) sorts the names, C(shuffle)
        spreads the load when several broadcasts start from one source.
    type: str
    choices: [given, sorted, shuffle]
    default: given
  cipher:
    description:
      - SSH cipher of every hop (C(ssh -c)). AES-GCM is the fastest per core on CPUs with AES instructions. Empty
        for the SSH defaults.
    type: str
    default: aes128-gcm@openssh.com
  buffer_size:
    description:
      - Bytes read and passed on at a time on the source and on every hop (a smaller size passes data on sooner,
        a larger one costs fewer system calls).
    type: int
    default: 262144
  compress:
    description:
      - Compress the stream with zstd. Worth it for trees of text or code on slow links; leave it off for data that
        does not compress (weights, random bytes). Falls back to no compression with a warning when zstd is missing
        on the source or on a node that receives.
    type: bool
    default: false
  compress_level:
    description:
      - zstd level when O(compress=true).
    type: int
    default: 3
  checksum:
    description:
      - Decide whether a node already holds the content by re-hashing its destination (reads every byte) instead
        of comparing the record's signature with the destination's sizes, times and inodes.
    type: bool
    default: false
  timeout:
    description:
      - Seconds a hop waits for data from the previous hop before it gives up and removes its partial copy; also
        how long a new hop waits for the lock an earlier, interrupted hop may still hold.
    type: int
    default: 30
  connect_timeout:
    description:
      - SSH C(ConnectTimeout) of every connection, in seconds.
    type: int
    default: 10
  keepalive:
    description:
      - SSH C(ServerAliveInterval), in seconds; a peer that answers none of 3 keepalives counts as dead.
    type: int
    default: 5
  repair_rounds:
    description:
      - After the first pass, how many times the nodes without a verified copy are probed again and chained again.
    type: int
    default: 2
  remote_python:
    description:
      - The python3 on the targets (a name on their non-interactive PATH or an absolute path, e.g. from
        C(cluster_facts_node.python)).
    type: str
    default: python3
  ssh_args:
    description:
      - More C(ssh) arguments for every hop, before the host name (e.g. C([-o, Port=2222])). The module's
        C(BatchMode) and strict host key checking cannot be turned off.
    type: list
    elements: str
    default: []
  status_file:
    description:
      - Where the progress record of this run is written (JSON, replaced atomically about once a second) on the
        source node, for M(gtsfm.cluster.follow) and M(gtsfm.cluster.progress_info).
        Default C(~/.cache/gtsfm.cluster/broadcast-<hash of path>.json).
    type: path
  status_run_id:
    description:
      - A word written into the progress record, so that M(gtsfm.cluster.follow) with the same C(run_id) does not
        take an earlier run's record for this one.
    type: str
    version_added: 0.4.0
notes:
  - Check mode probes every target and lists in RV(would_receive) the nodes that would receive; nothing is sent or
    written, not even the source's record. A source not there yet in check mode (an earlier step would make it)
    would be sent to every target; they are not asked.
  - Modes travel with the content (the source's mode for a file, every entry's mode for a tree); owners are the
    user on each node. The standard file options (mode, owner, ...) are therefore not offered.
  - Bulk data never passes through the controller, module arguments or results. To broadcast a file that sits on
    the controller, copy it to the source first with M(ansible.builtin.copy) (it streams) and broadcast from there;
    see the examples.
  - Leftovers of an interrupted run (C(.<name>.gtsfm-broadcast-tmp.*) beside the destination on a node that was
    killed) are removed by the next run that writes there.
seealso:
  - module: gtsfm.cluster.follow
extends_documentation_fragment:
  - gtsfm.cluster.attributes.idempotent
  - gtsfm.cluster.attributes
  - ansible.builtin.action_common_attributes
attributes:
  idempotent:
    details: A node whose record and destination show the same content is skipped; a re-run sends nothing.
"""

EXAMPLES = r"""
- name: Ensure every node holds the weights the scheduler has
  gtsfm.cluster.broadcast:
    path: /data/weights/vggt.pt
    hosts: "{{ cluster_facts_home_writers | difference([cluster_facts_scheduler]) }}"
  delegate_to: "{{ cluster_facts_scheduler }}"
  run_once: true
  register: __weights

- name: Broadcast a conda env tree, compressed, with progress
  gtsfm.cluster.broadcast:
    path: /home/alice/miniconda3/envs/gtsfm
    hosts: "{{ groups['gtsfm_cluster'] | difference([cluster_facts_scheduler]) }}"
    compress: true
    status_file: ~/.cache/gtsfm.cluster/progress/env.json
  delegate_to: "{{ cluster_facts_scheduler }}"
  run_once: true
  async: 7200
  poll: 0
  register: __env_job

- name: Wait for the env to reach every node, printing bytes, rate and time left
  gtsfm.cluster.follow:
    label: environment
    job: "{{ __env_job }}"
    status: ~/.cache/gtsfm.cluster/progress/env.json
  delegate_to: "{{ cluster_facts_scheduler }}"
  run_once: true

- name: Ensure every node holds the scheduler's checkout, leaving each node's bytecode and run outputs alone
  gtsfm.cluster.broadcast:
    path: /home/alice/gtsfm
    hosts: "{{ groups['gtsfm_cluster'] | difference([cluster_facts_scheduler]) }}"
    exclude: [__pycache__/, "*.pyc", /cache/, /results/, thirdparty/vggt/weights/model.pt]
  delegate_to: "{{ cluster_facts_scheduler }}"
  run_once: true

# A file on the controller: one streamed copy to the source, then the chain.
- name: Ensure the source node holds the controller's checkpoint
  ansible.builtin.copy:
    src: files/checkpoint.pt
    dest: /data/weights/checkpoint.pt
    mode: "0644"
  delegate_to: "{{ cluster_facts_scheduler }}"
  run_once: true

- name: Ensure every node holds the checkpoint
  gtsfm.cluster.broadcast:
    path: /data/weights/checkpoint.pt
    hosts: "{{ groups['gtsfm_cluster'] | difference([cluster_facts_scheduler]) }}"
  delegate_to: "{{ cluster_facts_scheduler }}"
  run_once: true
"""

RETURN = r"""
nodes:
  description:
    - Per target node, C(status) (C(received), C(skipped), C(failed) or, in check mode, C(would receive)); for a
      node that received, C(bytes) (content bytes), C(wire_bytes) (bytes on the wire, compressed or not),
      C(seconds) (from the start of its pass to its verified copy being in place), C(rate_mbps) (content
      megabits per second) and C(round); for a failed one, C(error).
  returned: always
  type: dict
  sample: {node2: {status: received, bytes: 209715200, wire_bytes: 209715200, seconds: 17.9, rate_mbps: 93.7,
           round: 1}, node3: {status: skipped, bytes: 0, why: record and destination agree}}
received:
  description: Nodes that got a verified copy in this run.
  returned: always
  type: list
  elements: str
held:
  description: Nodes that already held the content and were skipped; nothing was sent to them.
  returned: always
  type: list
  elements: str
failed_nodes:
  description: Nodes left without a verified copy (the task fails when this is not empty).
  returned: always
  type: list
  elements: str
would_receive:
  description: In check mode, the nodes that would receive.
  returned: always
  type: list
  elements: str
kind:
  description: C(file) or C(tree).
  returned: always
  type: str
size:
  description: Content bytes (for a tree, the sum of its regular files).
  returned: always
  type: int
digest:
  description: Identity of the content (SHA-256 of a file; of a tree's manifest), as recorded on every node.
  returned: always
  type: str
  sample: sha256:3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8557
rounds:
  description: Chain passes made (1, plus repair passes).
  returned: always
  type: int
compressed:
  description: Whether the stream was zstd-compressed.
  returned: always
  type: bool
seconds:
  description: Wall time of the whole module run.
  returned: always
  type: float
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gtsfm.cluster.plugins.module_utils import _broadcast_hop
from ansible_collections.gtsfm.cluster.plugins.module_utils._broadcast import BroadcastError, broadcast


def _hop_source():
    """The hop program's text (str or bytes, as the loader gives it), to ship to the nodes."""
    loader = getattr(_broadcast_hop, "__loader__", None)
    text = loader.get_source(_broadcast_hop.__name__) if loader and hasattr(loader, "get_source") else None
    if not text:
        with open(_broadcast_hop.__file__) as handle:
            text = handle.read()
    return text


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            hosts=dict(type="list", elements="str", required=True),
            exclude=dict(type="list", elements="str", default=[]),
            order=dict(type="str", choices=["given", "sorted", "shuffle"], default="given"),
            cipher=dict(type="str", default="aes128-gcm@openssh.com"),
            buffer_size=dict(type="int", default=262144),
            compress=dict(type="bool", default=False),
            compress_level=dict(type="int", default=3),
            checksum=dict(type="bool", default=False),
            timeout=dict(type="int", default=30),
            connect_timeout=dict(type="int", default=10),
            keepalive=dict(type="int", default=5),
            repair_rounds=dict(type="int", default=2),
            remote_python=dict(type="str", default="python3"),
            ssh_args=dict(type="list", elements="str", default=[], no_log=False),
            status_file=dict(type="path"),
            status_run_id=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    for name, low, high in (
        ("buffer_size", 4096, 1 << 26),
        ("timeout", 5, 86400),
        ("connect_timeout", 1, 600),
        ("keepalive", 1, 600),
        ("repair_rounds", 0, 10),
        ("compress_level", 1, 19),
    ):
        if not low <= params[name] <= high:
            module.fail_json(msg=f"broadcast: {name} must be between {low} and {high}, got {params[name]}.")
    for arg in params["ssh_args"]:
        lowered = arg.lower().replace(" ", "")
        if "stricthostkeychecking" in lowered or "userknownhostsfile=/dev/null" in lowered or "batchmode=no" in lowered:
            module.fail_json(
                msg=f"broadcast: ssh_args may not weaken host key checking or BatchMode ({arg!r}). Fix: run the "
                "known_hosts stage of site.yml so every node trusts every node."
            )
    bad = [h for h in params["hosts"] if not h or h.startswith("-") or any(c.isspace() for c in h)]
    if bad:
        module.fail_json(msg=f"broadcast: hosts holds names ssh cannot take: {bad!r}. Fix: pass inventory names.")
    ctx = {
        "ssh": module.get_bin_path("ssh", required=True),
        "tar": module.get_bin_path("tar", required=os.path.isdir(params["path"])),
        "zstd": module.get_bin_path("zstd", required=False) if params["compress"] else None,
        "code": _broadcast_hop.shipped_code(_hop_source()),
    }
    try:
        result = broadcast(params, module.check_mode, ctx, module.warn)
    except BroadcastError as exc:
        module.fail_json(msg=f"broadcast: {exc}")
    if result["failed_nodes"]:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
