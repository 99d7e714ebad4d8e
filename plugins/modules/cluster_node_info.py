#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cluster_node_info
short_description: Read everything the cluster roles need to know about a node, in one call
version_added: 0.2.0
description:
  - The read of the C(gtsfm.cluster.cluster_facts) stage. In one call it reports the node's host names and global
    addresses, the identity of its home directory (which nodes share one), the remote user and home, the python a
    non-interactive SSH command finds (the one Dask's SSHCluster would start), free space under given paths, the SSH
    server's host public keys, the state of the user's key pair, and the managed blocks of given files.
  - Reads host keys from the node itself over Ansible's authenticated connection, never by scanning the network.
  - Writes nothing, also outside check mode, with one exception that must be asked for - O(keypair_create) makes a
    missing user key pair in the same call, by M(gtsfm.cluster.ssh_keypair)'s rule. Files that are not regular files
    (a FIFO left where C(authorized_keys) should be, a directory) are refused with a message instead of blocking the
    read.
  - Needs no root; host public keys are world-readable.
options:
  ssh_dir:
    description:
      - The user's SSH directory, where the home marker C(gtsfm_cluster_home_id) lives.
    type: str
    default: ~/.ssh
  host_key_types:
    description:
      - Host key types to report, in this order. Types the node does not have are skipped.
    type: list
    elements: str
    choices: [ed25519, ecdsa, rsa]
    default: [ed25519, ecdsa, rsa]
  host_key_dir:
    description:
      - Directory of the SSH server's host keys.
    type: path
    default: /etc/ssh
  aliases:
    description:
      - Names peers use for this node besides its own host names and addresses, typically its name in cluster.yaml.
        They come first in the names of RV(entry).
    type: list
    elements: str
    default: []
  port:
    description:
      - SSH port peers use for this node; names in RV(entry) and RV(self_names) are written C([name]:port) unless 22.
    type: int
    default: 22
  keypair:
    description:
      - Path of a user private key to report on (RV(keypair)). Its public half is derived from it with
        C(ssh-keygen -y), so a stale C(.pub) is caught.
    type: str
  keypair_create:
    description:
      - Make the key pair at O(keypair) in this call where there is nothing to read yet, or where it needs what
        M(gtsfm.cluster.ssh_keypair) would do, by that module's own rule - the key's directory at C(0700), a new pair
        (private key C(0600)) where none exists, an open mode set to C(0600), a missing or stale C(.pub) rebuilt, the
        home marker beside the key. An existing private key is never replaced. RV(keypair) then reports the pair as
        it stands after this call, and the module reports C(changed).
      - A user's key pair must exist on every node before its public half can go into its peers' C(authorized_keys),
        and it never leaves its node; making it in the read saves a call per node on a first run.
      - In check mode nothing is made; RV(keypair) reports the pair as it is, with C(created=true) where one would be
        made.
      - Requires O(keypair). Without this option the module writes nothing.
    type: dict
    version_added: 0.4.0
    suboptions:
      type:
        description: Key type for a new key.
        type: str
        choices: [ed25519, rsa, ecdsa]
        default: ed25519
      comment:
        description: Comment for a new key.
        type: str
        default: gtsfm.cluster
  files:
    description:
      - Files whose managed block to report (RV(files)), keyed by O(files[].path) as given.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The file (C(~) is the remote user's home).
        type: str
        required: true
      marker:
        description:
          - Name of the block, as it stands in its BEGIN and END marker lines. Without it no block is read
            (its C(block) in RV(files) is null).
        type: str
      text:
        description:
          - Also report the file's whole text (C(text) in RV(files)), for a writer that decides on the controller
            from it (M(gtsfm.cluster.bashrc_block)'s O(gtsfm.cluster.bashrc_block#module:observed)). A file over
            256 KiB, or one that is not UTF-8, reports null and its writer looks for itself.
        type: bool
        default: false
        version_added: 0.4.0
  free_paths:
    description:
      - Paths whose free space to report (RV(node.free)); a path that does not exist yet is measured at its nearest
        existing parent.
    type: list
    elements: str
    default: []
  checksums:
    description:
      - Files whose sha1 checksum to report (RV(checksums)), as M(ansible.builtin.copy) compares them, keyed by the
        path as given; a checkout archive the role sends, so that it can tell without asking the node again that it
        is there already.
    type: list
    elements: str
    default: []
    version_added: 0.4.0
  trees:
    description:
      - Directory trees whose M(gtsfm.cluster.broadcast) record to report (RV(trees)), keyed by O(trees[].path) as
        given.
    type: list
    elements: dict
    default: []
    version_added: 0.4.0
    suboptions:
      path:
        description: The tree (C(~) is the remote user's home).
        type: str
        required: true
      exclude:
        description: The broadcast's O(gtsfm.cluster.broadcast#module:exclude) patterns for this tree.
        type: list
        elements: str
        default: []
  python_env:
    description:
      - Also probe the Python environment these M(gtsfm.cluster.python_env) options describe, in the same process
        (RV(python_env)), exactly as O(gtsfm.cluster.python_env#module:action=probe) would. Its own options for the
        probe - O(gtsfm.cluster.python_env#module:prefix), C(manager), C(python), C(requirements), C(project_dir),
        C(env_file), C(archive), C(archive_sha256), C(import_check), C(imports) - and no others.
    type: dict
    version_added: 0.4.0
    suboptions:
      prefix:
        description: M(gtsfm.cluster.python_env)'s O(gtsfm.cluster.python_env#module:prefix).
        type: path
        required: true
      manager:
        description: Its O(gtsfm.cluster.python_env#module:manager).
        type: str
        choices: [uv, conda, archive]
        default: uv
      python:
        description: Its O(gtsfm.cluster.python_env#module:python).
        type: path
        default: /usr/bin/python3
      requirements:
        description: Its O(gtsfm.cluster.python_env#module:requirements).
        type: list
        elements: str
        default: []
      project_dir:
        description: Its O(gtsfm.cluster.python_env#module:project_dir).
        type: path
      env_file:
        description: Its O(gtsfm.cluster.python_env#module:env_file).
        type: path
      archive:
        description: Its O(gtsfm.cluster.python_env#module:archive).
        type: path
      archive_sha256:
        description: Its O(gtsfm.cluster.python_env#module:archive_sha256).
        type: str
      import_check:
        description: Its O(gtsfm.cluster.python_env#module:import_check).
        type: bool
        default: false
      imports:
        description: Its O(gtsfm.cluster.python_env#module:imports).
        type: list
        elements: str
        default: []
notes:
  - Without O(keypair_create) the module never changes anything, so check mode and normal mode report the same.
seealso:
  - module: gtsfm.cluster.ssh_keypair
  - module: gtsfm.cluster.known_hosts_block
  - module: gtsfm.cluster.managed_block
extends_documentation_fragment:
  - gtsfm.cluster.attributes.info_module
  - gtsfm.cluster.attributes
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    details: >-
      It reads the same in both; with O(keypair_create), check mode makes no key pair and reports the one it would
      make (C(created=true), C(changed=true)).
"""

EXAMPLES = r"""
- name: Read the node the way the cluster stage does in site.yml (making a missing key pair)
  gtsfm.cluster.cluster_node_info:
    aliases: ["{{ inventory_hostname }}"]
    keypair: ~/.ssh/id_ed25519
    keypair_create:
      type: ed25519
      comment: "gtsfm.cluster {{ inventory_hostname }}"
    files:
      - path: ~/.ssh/authorized_keys
        marker: gtsfm.cluster.ssh_mesh
    free_paths: [/opt/gtsfm]
  register: __node

- name: Show which python Dask would start on the node
  ansible.builtin.debug:
    msg: "{{ __node.node.python }} ({{ __node.node.python_version }})"
"""

RETURN = r"""
node:
  description: What peers and roles need to know about this node.
  returned: always
  type: dict
  contains:
    hostname:
      description: Short host name.
      type: str
      sample: node1
    fqdn:
      description: Fully qualified host name.
      type: str
      sample: node1.lab.example.org
    addresses:
      description: Global IPv4 and IPv6 addresses (no loopback, no link-local).
      type: list
      elements: str
      sample: [10.0.0.11]
    home_id:
      description: Identity of the home directory (equal on nodes that share one); null while the home has no marker.
      type: str
      sample: 8c1d0d1e-8f5e-4f52-9b7c-1f2a6e6f3c57
    home:
      description: The remote user's home directory.
      type: str
      sample: /home/alice
    user:
      description: The remote user.
      type: str
      sample: alice
    ssh_dir:
      description: Absolute path of O(ssh_dir).
      type: str
    ssh_dir_state:
      description: V(ok), V(missing), V(open) (group or other may read it) or V(not_a_directory).
      type: str
    python:
      description: The python3 (or python) a non-interactive SSH command finds on its PATH; null if none.
      type: str
      sample: /usr/bin/python3
    python_version:
      description: Its version.
      type: str
      sample: 3.11.2
    free:
      description: Free bytes for each of O(free_paths).
      type: dict
      sample: {/opt/gtsfm: 53687091200}
host_keys:
  description: The SSH server's host public keys as C(type base64), comments dropped.
  returned: always
  type: list
  elements: str
entry:
  description: This node as a M(gtsfm.cluster.known_hosts_block) entry, under every name a peer may use.
  returned: always
  type: dict
  sample: {names: [node1, node1.lab.example.org, 10.0.0.11], keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG...]}
self_names:
  description: The loopback names under which the node reaches itself.
  returned: always
  type: list
  elements: str
  sample: [localhost, 127.0.0.1, "::1"]
keypair:
  description: The key pair at O(keypair); null when O(keypair) is not given.
  returned: always
  type: dict
  contains:
    path:
      description: Absolute path of the private key.
      type: str
    requested:
      description: O(keypair) as given, so a role can tell whether the stage read the key it uses.
      type: str
    exists:
      description: Whether the private key exists.
      type: bool
    mode:
      description: Its mode, as four octal digits.
      type: str
    public_key:
      description: The public key peers must be given (derived from the private key when it has no passphrase).
      type: str
    pub_ok:
      description: Whether the C(.pub) file holds that key.
      type: bool
    needs_write:
      description:
        - Whether M(gtsfm.cluster.ssh_keypair) would change something (missing key, open mode, stale C(.pub), the
          key's directory missing or open, no home marker beside the key).
      type: bool
    dir_state:
      description: The key's directory, as RV(node.ssh_dir_state) tells.
      type: str
      version_added: 0.4.0
    home_id:
      description: The home marker's id beside the key; null while there is none.
      type: str
      version_added: 0.4.0
    created:
      description: Whether this call made the key pair (in check mode - would make it), with O(keypair_create).
      type: bool
      version_added: 0.4.0
    changed:
      description: Whether this call changed the key pair, its directory or the home marker (O(keypair_create)).
      type: bool
      version_added: 0.4.0
    repaired:
      description: What this call repaired in an existing key pair, as M(gtsfm.cluster.ssh_keypair) reports it.
      type: list
      elements: str
      version_added: 0.4.0
files:
  description:
    - For each of O(files), keyed by its path as given, what the file holds now. C(exists); C(mode) (octal text, null
      when missing); C(link) (whether the path is a symlink); C(block) (the block's lines, null without one or
      without O(files[].marker)); C(exact) (whether the block stands exactly as the block writers write it, line
      ends included); C(text) with O(files[].text).
    - Pass one entry as the O(gtsfm.cluster.managed_block#module:observed) of the file's writer, which then skips its
      remote call when nothing would change.
  returned: always
  type: dict
  sample: {"~/.ssh/authorized_keys": {path: /home/alice/.ssh/authorized_keys, exists: true, mode: "0600", block: []}}
checksums:
  description: For each of O(checksums), keyed by its path as given, C(path), C(exists), C(mode), C(checksum) (sha1)
    and C(mtime) (null when the file is missing).
  returned: always
  type: dict
  version_added: 0.4.0
trees:
  description:
    - For each of O(trees), keyed by its path as given - C(path); C(held), the digest the broadcast's record beside
      the tree says it holds, null unless the tree is still exactly what that record describes; C(why); C(written),
      when the record was written (epoch seconds); C(exclude).
  returned: always
  type: dict
  version_added: 0.4.0
python_env:
  description:
    - With O(python_env), what M(gtsfm.cluster.python_env)'s probe returns for those options (its
      RV(gtsfm.cluster.python_env#module:read_with) included), or C({error}) naming what stopped the probe. Pass it as
      the O(gtsfm.cluster.python_env#module:observed) of a probe with the same options, which then makes no remote
      call. Null without O(python_env).
  returned: always
  type: dict
  version_added: 0.4.0
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gtsfm.cluster.plugins.module_utils._python_env import PROBE_SPEC
from ansible_collections.gtsfm.cluster.plugins.module_utils.cluster_probe import HOST_KEY_TYPES, ProbeError, probe
from ansible_collections.gtsfm.cluster.plugins.module_utils.ssh_keypair import KEY_TYPES


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ssh_dir=dict(type="str", default="~/.ssh"),
            host_key_types=dict(
                type="list", elements="str", choices=list(HOST_KEY_TYPES), default=list(HOST_KEY_TYPES)
            ),
            host_key_dir=dict(type="path", default="/etc/ssh"),
            aliases=dict(type="list", elements="str", default=[]),
            port=dict(type="int", default=22),
            keypair=dict(type="str", no_log=False),
            keypair_create=dict(
                type="dict",
                no_log=False,
                options=dict(
                    type=dict(type="str", choices=list(KEY_TYPES), default="ed25519"),
                    comment=dict(type="str", default="gtsfm.cluster"),
                ),
            ),
            files=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    path=dict(type="str", required=True),
                    marker=dict(type="str"),
                    text=dict(type="bool", default=False),
                ),
            ),
            free_paths=dict(type="list", elements="str", default=[]),
            checksums=dict(type="list", elements="str", default=[]),
            trees=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    path=dict(type="str", required=True),
                    exclude=dict(type="list", elements="str", default=[]),
                ),
            ),
            python_env=dict(type="dict", options=PROBE_SPEC),
        ),
        required_by={"keypair_create": "keypair"},
        supports_check_mode=True,
    )
    if not 0 < module.params["port"] < 65536:
        module.fail_json(
            msg="cluster_node_info: port must be 1-65535 (the SSH port peers use for this node: "
            f"known_hosts_port, or ansible_port), got {module.params['port']}."
        )
    keygen = module.get_bin_path("ssh-keygen", required=bool(module.params["keypair"]))
    try:
        result = probe(module.params, module.run_command, keygen, module.check_mode)
    except ProbeError as exc:
        module.fail_json(msg=f"cluster_node_info: {exc}")
    made = result["keypair"] or {}
    for repair in made.get("repaired", []):
        # A warning, as ssh_keypair gives, so a repair shows in every run's output.
        module.warn(f"cluster_node_info on {made['path']}: repaired {repair}")
    module.exit_json(changed=bool(made.get("changed")), **result)


if __name__ == "__main__":
    main()
