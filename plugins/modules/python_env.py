#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: python_env
short_description: One Python environment at one absolute path, identified by a fingerprint, published atomically
version_added: 0.3.0
description:
  - Builds (uv or conda), unpacks (a prebuilt archive) or copies from a peer (rsync over the cluster's SSH mesh) a
    Python environment at C(PREFIX.<fp12>), then points the symlink O(prefix) at it with one C(rename(2)).
  - The fingerprint hashes what defines the environment - manager, the requirements list or the project's
    C(pyproject.toml)/C(uv.lock), or the conda environment file, or the archive's sha256, plus the interpreter's
    path and version and the platform - and is recorded in C(.gtsfm-env.json) inside the environment, written last.
  - A node whose O(prefix) already names an environment with the wanted fingerprint does nothing and asks no
    package source anything. A build happens at C(PREFIX.<fp12>) itself (scripts and conda prefixes name that
    path) and counts as finished only once its record is written, last; a copy from a peer lives in
    C(PREFIX.<fp12>.part) until verified and renamed. Neither is taken for done by a later run, which starts them
    afresh. Older environments are removed once the link names the new one.
  - One writer at a time. A build, copy or publish holds an exclusive lock (C(.NAME.gtsfm-build.lock) beside
    O(prefix), removed when it ends) while it runs; a second one - a re-run after the controller was killed while
    the first went on in the background, or a second controller - waits for it, then finds the environment
    current and changes nothing. The kernel drops the lock with the process that held it, so nothing stale is left.
options:
  prefix:
    description:
      - Absolute path of the environment (a symlink the module manages). A real directory there is never touched.
    type: path
    required: true
  action:
    description:
      - V(probe) reads only - the fingerprint, the state of O(prefix), free space, C(dot).
      - V(build) builds the environment here unless it is already current.
      - V(pull) copies the finished environment from O(source_host) (same path) unless it is already current.
      - V(publish) points O(prefix) at a finished copy already at its real path (e.g. one a shared home holds).
    type: str
    choices: [probe, build, pull, publish]
    default: probe
  manager:
    description: How the environment is made.
    type: str
    choices: [uv, conda, archive]
    default: uv
  python:
    description: The interpreter a uv environment rests on; must be at this path, same version, on every node.
    type: path
    default: /usr/bin/python3
  requirements:
    description: uv - requirement specifiers to install. Empty - use O(project_dir)'s C(pyproject.toml) and C(uv.lock).
    type: list
    elements: str
    default: []
  project_dir:
    description: uv - the project (checkout) whose C(uv.lock) defines the environment when O(requirements) is empty.
    type: path
  env_file:
    description: conda - the environment file (e.g. the checkout's C(environment_linux.yml)).
    type: path
  archive:
    description:
      - archive - a prebuilt environment (tar, optionally gz/bz2/xz), made at this same O(prefix) path.
      - Nothing outside the environment is ever created or changed. Refused, naming the member - an absolute
        name, a name or a link (symbolic or hard) that resolves outside the environment, a link to an absolute path,
        device and FIFO files. Links inside the environment (C(bin/python -> python3.11)) are kept; set-uid and
        set-gid bits are dropped. On a refusal nothing of the archive is kept.
    type: path
  archive_sha256:
    description: archive - the archive's sha256 as the controller computed it, so nodes without the file agree on
      the fingerprint.
    type: str
  uv:
    description: Path of the uv binary; installed there from O(uv_wheel) or O(uv_index) when missing.
    type: path
  uv_wheel:
    description: A uv wheel (or the uv binary itself) already on this node.
    type: path
  uv_index:
    description: A page listing uv wheels (a PEP 503 project page such as C(https://pypi.org/simple/uv/), or a
      find-links directory listing) or a wheel directory on this node, searched when uv is missing and O(uv_wheel)
      is not given. A link is resolved against the page's URL as a browser does; the hash the page gives with it
      (C(#sha256=...)) is checked, and a download that fails it is refused, naming the URL and both sums.
    type: str
  uv_version:
    description: The uv version to pick from O(uv_index); empty - the newest.
    type: str
    default: ""
  conda:
    description: conda - the conda, mamba or micromamba executable.
    type: path
  index_url:
    description: uv - the package index (PyPI or a mirror).
    type: str
  extra_index_urls:
    description: uv - more package indexes.
    type: list
    elements: str
    default: []
  find_links:
    description: uv - wheel directories or pages (a wheelhouse).
    type: list
    elements: str
    default: []
  no_index:
    description: uv - use only O(find_links), no index at all (air-gapped wheelhouse).
    type: bool
    default: false
  channels:
    description: conda - channels (or mirrors) replacing the file's own.
    type: list
    elements: str
    default: []
  source_host:
    description: pull - the peer holding the finished environment at the same path, reached with
      C(ssh -o BatchMode=yes).
    type: str
  min_free_mb:
    description: Free space (MiB) needed where the environment goes before a build or copy starts.
    type: int
    default: 2048
  status_file:
    description:
      - Where a build or copy keeps its progress record (phase, bytes the environment holds so far), for
        M(gtsfm.cluster.follow) and M(gtsfm.cluster.progress_info). Run the task with C(async) and C(poll=0) and
        follow it to see the bytes grow.
    type: path
    version_added: 0.4.0
  option_names:
    description:
      - What the caller calls each of the options, for messages. Messages name options as C(option NAME); those
        this mapping holds are named by their value instead (a role passes the variables it sets the options from,
        so that its users read a variable's name where the module alone says C(option prefix)).
    type: dict
    default: {}
    version_added: 0.4.0
  status_run_id:
    description: A word written into the progress record, so that a follow of this run ignores an earlier run's.
    type: str
    version_added: 0.4.0
  import_check:
    description:
      - probe - when the prefix already names the wanted environment, import O(imports) with its python here
        (C(PYTHON -B -c ...), writing nothing) and return what fails, each as one sentence naming the module, the
        missing shared library with the system package of this node's distribution that provides it and the
        fix, a torchvision built for another torch, or a module not installed (RV(import_problems)).
    type: bool
    default: false
    version_added: 0.4.0
  imports:
    description:
      - The modules O(import_check) imports, in order. Empty - the top-level packages the environment declares
        (the requirements, the C(pyproject.toml) dependencies or the environment file's entries, mapped to import
        names through its C(*.dist-info) and C(conda-meta)).
    type: list
    elements: str
    default: []
    version_added: 0.4.0
  observed:
    description:
      - For O(action=probe) - an earlier read of this node with the same probe options, that is
        M(gtsfm.cluster.cluster_node_info)'s RV(gtsfm.cluster.cluster_node_info#module:python_env) (the stage,
        gtsfm.cluster.cluster_facts, publishes it in C(cluster_facts_probe.python_env)) or an earlier probe's result.
      - When its RV(read_with) equals this task's probe options (C(~) taken as the node's home), the action plugin
        answers with it on the controller, RV(decided_from=observed), without a remote call. Otherwise, or when that
        read failed, or for any other O(action), the module runs on the node as without it.
      - Used on the controller only; the module never receives it.
    type: dict
    version_added: 0.4.0
notes:
  - Check mode reports what would change and changes nothing. Diff mode is not supported.
  - The environment is built at its real path C(PREFIX.<fp12>), so scripts and conda's hard-coded prefixes are valid
    there on every node that gets the same tree at the same path; no relocation is needed.
extends_documentation_fragment:
  - gtsfm.cluster.attributes.observed
  - gtsfm.cluster.attributes
  - ansible.builtin.action_common_attributes
attributes:
  action:
    details: Answers a probe from O(observed) on the controller when that read was made with the same options.
"""

EXAMPLES = r"""
- name: Build a uv environment from an air-gapped wheelhouse
  gtsfm.cluster.python_env:
    action: build
    prefix: /opt/gtsfm/env
    requirements: [dask, distributed, asyncssh]
    uv: ~/.local/share/gtsfm/bin/uv
    uv_index: http://10.0.0.1:8000/wheels/
    find_links: [http://10.0.0.1:8000/wheels/]
    no_index: true

- name: Copy it from the scheduler to the other nodes, same path
  gtsfm.cluster.python_env:
    action: pull
    prefix: /opt/gtsfm/env
    requirements: [dask, distributed, asyncssh]
    source_host: node1
"""

RETURN = r"""
prefix:
  description: The environment's path (the link).
  returned: always
  type: str
real:
  description: The directory the link names when the wanted environment is published.
  returned: always
  type: str
fingerprint:
  description: The wanted fingerprint (sha256); null when a probe could not read what defines the environment yet.
  returned: always
  type: str
inputs_error:
  description: Why the fingerprint is null (a probe before the checkout exists).
  returned: always
  type: str
home_id:
  description: The id of this home directory that the ssh_mesh role publishes (the same on nodes sharing it), or null.
  returned: always
  type: str
spec:
  description: What the fingerprint hashes.
  returned: always
  type: dict
state:
  description: Before this run - V(current), V(other) (another fingerprint), V(broken) (link without record),
    V(missing) or V(foreign) (a path of the user's own).
  returned: always
  type: str
staged:
  description: A finished copy of the wanted environment is already at its real path.
  returned: always
  type: bool
free:
  description: Free bytes where the environment goes.
  returned: always
  type: int
dot:
  description: Path of Graphviz C(dot) with the environment on PATH, or null.
  returned: always
  type: str
import_problems:
  description: What O(import_check) found wrong, one sentence each (empty - every module imported).
  returned: when O(import_check) ran
  type: list
  elements: str
  version_added: 0.4.0
imported:
  description: The modules O(import_check) imported, with the seconds each took.
  returned: when O(import_check) ran
  type: list
  elements: dict
  version_added: 0.4.0
waited_for:
  description: The pid of the other run whose build or copy this one waited for and found finished (null if none).
  returned: when another run made the environment current while this one waited
  type: int
  version_added: 0.4.0
decided_from:
  description: V(observed) when the action plugin answered from O(observed) and the module did not run.
  returned: when the module did not run
  type: str
  sample: observed
  version_added: 0.4.0
read_with:
  description:
    - The options that define what a probe reads (the environment's prefix and inputs, the interpreter, the import
      check), as this run was given them. A later O(action=probe) with the same ones may take this result as its
      O(observed) answer instead of asking the node again.
  returned: always
  type: dict
  version_added: 0.4.0
home:
  description: The user's home directory on this node.
  returned: always
  type: str
seconds:
  description: Wall time of the build or copy.
  returned: when something was built or copied
  type: float
"""

import os
import shutil
import tarfile
import tempfile
import threading
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import fetch_url, open_url

from ansible_collections.gtsfm.cluster.plugins.module_utils import _progress, _terms
from ansible_collections.gtsfm.cluster.plugins.module_utils import _python_env as pe


class Env:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.prefix = os.path.abspath(self.params["prefix"])
        self.progress = None
        self.watching = threading.Event()
        self.lock = None
        self.waited_for = None

    def waiting(self, pid):
        """Called while another process holds this environment's lock: say whom this run waits for."""
        self.waited_for = pid
        if self.progress:
            self.progress.update(
                force=True, phase=f"waiting for another run's build or copy of {self.prefix} (pid {pid}) to end"
            )

    def unlock(self):
        if self.lock is not None:
            _progress.release(self.lock, pe.lock_path(self.prefix))
            self.lock = None

    def fail(self, msg):
        msg = f"python_env: {_terms.option_terms(msg, self.params['option_names'])}"
        self.unlock()
        if self.progress:
            self.watching.set()
            self.progress.finish(failed=True, msg=msg)
        self.module.fail_json(msg=msg, prefix=self.prefix)

    def watch(self, tree):
        """Keep the record's done at the bytes the tree being built or copied holds, every few seconds."""
        self.progress.update(force=True, phase=self.params["action"], done=0, tree=tree)

        def measure():
            while not self.watching.wait(3.0):
                self.progress.update(done=pe.tree_bytes(tree))

        thread = threading.Thread(target=measure)
        thread.daemon = True
        thread.start()

    def run(self, argv, what, env=None):
        rc, out, err = self.module.run_command(argv, environ_update=dict({"UV_NO_PROGRESS": "1"}, **(env or {})))
        if rc != 0:
            self.fail(f"{what} failed (rc={rc}): {' '.join(argv)}\n{out[-3000:]}\n{err[-3000:]}")
        return out

    def check_space(self):
        need = self.params["min_free_mb"] * 1024 * 1024
        free = pe.free_bytes(os.path.dirname(self.prefix))
        if free < need:
            where = os.path.dirname(self.prefix)
            self.fail(
                f"only {free >> 20} MiB free under {where}, {need >> 20} MiB needed. Fix: free space there, or set "
                "option prefix elsewhere (or lower option min_free_mb)"
            )

    def ensure_uv(self):
        uv = self.params["uv"]
        if not uv:
            self.fail("uv is needed to build here. Fix: set option uv")
        if os.access(uv, os.X_OK):
            return uv
        wheel = self.params["uv_wheel"]
        tmpdir = None
        try:
            if not wheel:
                page = self.params["uv_index"]
                if not page:
                    self.fail(
                        f"{uv} is missing and neither a uv wheel nor an index to find one was given. Fix: set "
                        "option uv_wheel or option uv_index"
                    )
                if os.path.isdir(page):
                    # A wheelhouse on this node (shipped from the controller): take uv's wheel from it.
                    listing = "".join(f'<a href="{name}">' for name in sorted(os.listdir(page)))
                    url, _digest = pe.pick_uv_wheel(
                        listing, page.rstrip("/") + "/", self.params["uv_version"], os.uname()[4]
                    )
                    wheel = os.path.join(page, url.rsplit("/", 1)[-1])
                else:
                    response = open_url(page, timeout=60)
                    # Links are relative to where the page really is (an index redirects /simple/uv to /simple/uv/).
                    base = response.geturl() or page
                    url, digest = pe.pick_uv_wheel(
                        response.read().decode("utf-8", "replace"), base, self.params["uv_version"], os.uname()[4]
                    )
                    tmpdir = tempfile.mkdtemp(prefix=".gtsfm-uv.", dir=os.path.dirname(self.prefix))
                    wheel = os.path.join(tmpdir, pe.urlparse(url).path.rsplit("/", 1)[-1])
                    response, info = fetch_url(self.module, url, timeout=600)
                    if info["status"] != 200:
                        self.fail(f"downloading {url} failed: {info['status']} {info.get('msg')}")
                    with open(wheel, "wb") as out:
                        shutil.copyfileobj(response, out)
                    pe.check_digest(wheel, url, digest)
            if wheel.endswith(".whl"):
                pe.extract_uv(wheel, uv)
            else:
                if not os.path.isdir(os.path.dirname(uv)):
                    os.makedirs(os.path.dirname(uv))
                shutil.copy(wheel, uv + ".part")
                os.chmod(uv + ".part", 0o755)
                os.rename(uv + ".part", uv)
        except (pe.EnvError, OSError) as exc:
            self.fail(f"installing uv at {uv}: {exc}")
        finally:
            if tmpdir:
                shutil.rmtree(tmpdir, ignore_errors=True)
        return uv

    def build(self, part):
        p = self.params
        if p["manager"] == "uv":
            uv = self.ensure_uv()
            for argv in pe.uv_commands(
                uv,
                p["python"],
                part,
                p["requirements"],
                p["project_dir"],
                p["index_url"],
                p["extra_index_urls"],
                p["find_links"],
                p["no_index"],
            ):
                env = {"UV_PROJECT_ENVIRONMENT": part} if argv[1] == "sync" else None
                self.run(argv, "building the environment", env)
        elif p["manager"] == "conda":
            conda = p["conda"]
            if not conda or not os.access(conda, os.X_OK):
                self.fail(
                    f"conda executable {conda} is missing. Fix: install conda or "
                    "micromamba (Miniforge) there, or set option conda to one"
                )
            for argv in pe.conda_commands(conda, part, p["env_file"], p["channels"], False):
                self.run(argv, "building the conda environment")
        else:
            os.makedirs(part)
            try:
                pe.extract_archive(p["archive"], part)
            except pe.EnvError as exc:
                self.fail(f"unpacking {exc}")
            except (tarfile.TarError, OSError) as exc:
                self.fail(f"unpacking {p['archive']}: {exc}")

    def pull(self, part):
        rsync = self.module.get_bin_path("rsync", required=True)
        ssh = self.module.get_bin_path("ssh", required=True)
        real = pe.paths(self.prefix, self.fp)["real"]
        self.run(
            [
                rsync,
                "-a",
                "--delete",
                "-e",
                f"{ssh} -o BatchMode=yes",
                f"{self.params['source_host']}:{real}/",
                part + "/",
            ],
            f"copying {real} from {self.params['source_host']}",
        )
        record = pe.read_record(part)
        if not record or record.get("fingerprint") != self.fp:
            self.fail(f"the copy from {self.params['source_host']} holds no finished environment {self.fp[:12]}")

    def main(self):
        action = self.params["action"]
        try:
            result = pe.read_env(self.params, self.module.run_command)
        except pe.EnvError as exc:
            self.fail(str(exc))
        result["changed"] = False
        spec = result["spec"]
        self.fp = result["fingerprint"]
        found = dict((key, result[key]) for key in ("state", "done", "staged", "real", "free"))
        if action == "probe" or found["done"]:
            self.module.exit_json(**result)
        try:
            pe.check_prefix(self.prefix)
        except pe.EnvError as exc:
            self.fail(str(exc))
        result["changed"] = True
        if self.module.check_mode:
            self.module.exit_json(**result)
        paths = pe.paths(self.prefix, self.fp)
        started = time.time()
        if self.params["status_file"]:
            self.progress = _progress.Writer(
                self.params["status_file"],
                run_id=self.params["status_run_id"],
                what="environment",
                phase="checking space",
            )
        try:
            parent = os.path.dirname(self.prefix)
            if not os.path.isdir(parent):
                os.makedirs(parent)
            # Held to the end of this process: a build or copy whose controller died goes on in the background,
            # and a re-run (or a second controller) waits for it here, then reads what it left.
            self.lock = _progress.hold(pe.lock_path(self.prefix), waiting=self.waiting)
            found = pe.probe(self.prefix, self.fp)
            result.update(found)
            if found["done"]:
                result.update(changed=False, waited_for=self.waited_for)
                if self.progress:
                    self.progress.finish(
                        msg=f"{self.prefix} was made current by another run (pid {self.waited_for}) "
                        "while this one waited"
                    )
                self.unlock()
                self.module.exit_json(**result)
            if not found["staged"]:
                if action == "publish":
                    self.fail(f"no finished environment {self.fp[:12]} at {paths['real']} to publish")
                self.check_space()
                pe.clear(paths["part"])
                pe.clear(paths["real"])
                if action == "pull":
                    # A copy goes to .part and is renamed once verified: what it holds was built at the real path.
                    if self.progress:
                        self.watch(paths["part"])
                    self.pull(paths["part"])
                    os.rename(paths["part"], paths["real"])
                else:
                    # Built where it will be used: scripts, activation files and conda's prefixes name this path,
                    # so it cannot be renamed afterwards. Until its record is written last it is not finished,
                    # and no run takes it for done (the link is switched only after).
                    if self.progress:
                        self.watch(paths["real"])
                    self.build(paths["real"])
                    pe.write_record(paths["real"], self.fp, spec)
                result["seconds"] = round(time.time() - started, 2)
            result["removed"] = pe.publish(self.prefix, self.fp)
        except (pe.EnvError, OSError) as exc:
            self.fail(f"{self.prefix}: {exc}")
        result.update(pe.probe(self.prefix, self.fp))
        if self.progress:
            self.watching.set()
            self.progress.update(done=pe.tree_bytes(paths["real"]))
            self.progress.finish(msg=f"{self.prefix} {action}")
        self.unlock()
        self.module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            pe.PROBE_SPEC,
            action=dict(type="str", choices=["probe", "build", "pull", "publish"], default="probe"),
            uv=dict(type="path"),
            uv_wheel=dict(type="path"),
            uv_index=dict(type="str"),
            uv_version=dict(type="str", default=""),
            conda=dict(type="path"),
            index_url=dict(type="str"),
            extra_index_urls=dict(type="list", elements="str", default=[]),
            find_links=dict(type="list", elements="str", default=[]),
            no_index=dict(type="bool", default=False),
            channels=dict(type="list", elements="str", default=[]),
            source_host=dict(type="str"),
            min_free_mb=dict(type="int", default=2048),
            status_file=dict(type="path"),
            status_run_id=dict(type="str"),
            option_names=dict(type="dict", default={}),
            observed=dict(type="dict"),
        ),
        required_if=[("action", "pull", ["source_host"])],
        supports_check_mode=True,
    )
    Env(module).main()


if __name__ == "__main__":
    main()
