#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: env_check
short_description: Prove from the scheduler that the cluster env imports on every node, as Dask will start it
version_added: 0.4.0
description:
  - Runs once on the scheduler. Reaches every host of O(workers) over non-interactive SSH at once (C(ssh -T),
    BatchMode, no terminal, the same session Dask's SSHCluster opens to start its scheduler and workers, the
    scheduler's own host included) and there runs C(PYTHON -B -c PROGRAM), which imports each module of
    O(imports) in turn.
  - With O(imports) empty, the modules are those of each top-level package the env declares in the record the
    M(gtsfm.cluster.python_env) module wrote into it (the requirements, the C(pyproject.toml) dependencies or the
    conda environment file's entries, mapped to import names through the env's own C(*.dist-info) and
    C(conda-meta)); an env without such a record is checked for C(dask) and C(distributed).
  - Every failure becomes one line naming the hosts, the module and the cause - a missing shared library with
    the system package that provides it on that node's distribution (read from its C(/etc/os-release); Debian and
    Ubuntu, RHEL and Fedora) and the command that installs it; a torchvision built for CUDA or for another torch
    than the one beside it, with the matching build to install; a module not installed - never a traceback.
  - Checks Graphviz C(dot) (on PATH with the env's C(bin) first, and that C(dot -V) runs) on the first host, where
    GTSfM's runner renders its process graph, as O(graphviz) says.
  - Reads only (C(-B) - no bytecode is written into the env); the per-host work is one SSH session and one
    python process, whatever the number of hosts.
options:
  python:
    description: The env's python, the same absolute path on every node (Dask starts that path everywhere).
    type: str
    required: true
  workers:
    description:
      - The cluster config's workers (GTSfM's shape, scheduler first) - host names or mappings with C(host).
        Each distinct host is checked once.
    type: list
    elements: raw
    required: true
  imports:
    description: Modules to import, in order. Empty - the top-level packages the env declares (see above).
    type: list
    elements: str
    default: []
  graphviz:
    description:
      - What a missing or broken C(dot) on the first host does - V(fail) the task, V(warn), or V(ignore) (not
        checked).
    type: str
    choices: [fail, warn, ignore]
    default: fail
  graphviz_fix:
    description: More words for the missing-C(dot) message's fix (a variable the caller's role offers).
    type: str
    default: ""
  timeout:
    description: Seconds each host's check may take (SSH connection and imports).
    type: int
    default: 300
notes:
  - Host keys are checked as the scheduler's C(~/.ssh/known_hosts) says (the known_hosts role writes it); the
    module never turns that off.
  - Check mode runs the check too (it changes nothing).
extends_documentation_fragment:
  - gtsfm.cluster.attributes
  - ansible.builtin.action_common_attributes
seealso:
  - module: gtsfm.cluster.gtsfm_job
  - module: gtsfm.cluster.python_env
"""

EXAMPLES = r"""
- name: Check that the env imports GTSfM's stack on every node, and dot on the scheduler
  gtsfm.cluster.env_check:
    python: /home/me/gtsfm-env/bin/python
    workers: [node1, node2, node3]
    imports: [dask, distributed, gtsam, torch, torchvision, cv2, open3d, pycolmap]
"""

RETURN = r"""
nodes:
  description:
    - Per host - C(imports) (each with C(name), C(ok), C(seconds), and C(errors) when it failed), C(source)
      (C(given), C(declared) or C(default)), C(os) (its /etc/os-release), C(dists) (torch builds), C(dot),
      C(problems) (the lines about it); or, when the check could not run there, C(rc) and C(said).
  returned: always
  type: dict
errors:
  description: "One line per distinct problem: C(HOSTS: what is wrong, what provides it, the fix)."
  returned: always
  type: list
  elements: str
seconds:
  description: Wall time of the whole check.
  returned: always
  type: float
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gtsfm.cluster.plugins.module_utils import _env_check as ec


def hosts_of(workers):
    """The distinct hosts of a workers list (names or mappings with 'host'), in order; or the error text."""
    hosts = []
    for i, entry in enumerate(workers):
        host = entry.get("host") if isinstance(entry, dict) else entry
        if not isinstance(host, str) or not host.strip() or host.startswith("-") or any(c.isspace() for c in host):
            return None, (
                f"workers[{i}] ({entry!r}) is not a host name. Fix: a plain host name, or a mapping with 'host'."
            )
        if host not in hosts:
            hosts.append(host)
    if not hosts:
        return None, "workers is empty. Fix: list the cluster's hosts, scheduler first."
    return hosts, None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            python=dict(type="str", required=True),
            workers=dict(type="list", elements="raw", required=True),
            imports=dict(type="list", elements="str", default=[]),
            graphviz=dict(type="str", choices=["fail", "warn", "ignore"], default="fail"),
            graphviz_fix=dict(type="str", default=""),
            timeout=dict(type="int", default=300),
        ),
        supports_check_mode=True,
    )
    p = module.params
    hosts, error = hosts_of(p["workers"])
    if error:
        module.fail_json(msg="env_check: " + error)
    if not p["python"].startswith("/"):
        module.fail_json(
            msg=f"env_check: python {p['python']!r} is not an absolute path. Fix: the env's python, the same absolute "
            "path on every node."
        )
    started = time.time()
    dot_hosts = [hosts[0]] if p["graphviz"] != "ignore" else []
    outcomes = ec.run_remote(hosts, p["python"], p["imports"], dot_hosts=dot_hosts, timeout=p["timeout"])
    per_host, dot_lines, nodes = {}, {}, {}
    for host in hosts:
        outcome = outcomes[host]
        problems = ec.diagnose(outcome, p["python"])
        report = outcome.get("report")
        if report is not None and host in dot_hosts:
            dot = ec.dot_text(report, p["graphviz_fix"])
            if dot:
                dot_lines[host] = [dot]
        per_host[host] = problems
        nodes[host] = dict(
            report or {"rc": outcome.get("rc"), "said": outcome.get("said")},
            problems=problems + dot_lines.get(host, []),
        )
    errors = ec.group(per_host)
    if p["graphviz"] == "fail":
        errors += ec.group(dot_lines)
    else:
        for line in ec.group(dot_lines):
            module.warn("env_check: " + line)
    result = dict(changed=False, nodes=nodes, errors=errors, seconds=round(time.time() - started, 2))
    if errors:
        bad = len([h for h in hosts if nodes[h]["problems"]])
        listed = "\n- ".join(errors)
        module.fail_json(
            msg=f"env_check: {p['python']} on {bad} of {len(hosts)} nodes does not hold what the job "
            f"needs (checked from {hosts[0]} over SSH as Dask starts it; nothing was started):\n"
            f"- {listed}",
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
