# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The conda_env role's cross-host plan, on the controller.

Private to the gtsfm.cluster collection (used by the filters in plugins/filter/conda_env.py); not a public API.

Every function takes plain data - the members' cluster_facts_node (name, home, home_writer, home_mates after the
stage's homes step), each member's python_env probe (state, done, fingerprint, spec, free, prefix, home, real) and
the role's settings - and returns plain data; the role's tasks then run one module on the nodes named here.
  setup()           one node's paths and the python_env options the role's settings make there, what the building
                    nodes are sent from the controller, and where the checkout comes from;
  check_paths()     the environment and the checkout must be at one path on every node;
  checkout_plan()   which nodes receive the scheduler's checkout (broadcast) or pull it (rsync);
  env_plan()        whether the nodes agree on one environment, who is short on space, who builds, who copies
                    (pull or broadcast), who publishes, and whether anything is left to change;
  check_final()     after the changes: every node names the same finished environment;
  check_imports()   one node's environment imports what it holds;
  stage_reads()     what the stage (cluster_facts) reads on every node for the role, so that a no-op re-run asks
                    each node once: the probe's options, the checkout archive the scheduler holds, the checkout tree;
  checkout_sends()  from the stage's read of the scheduler, whether the checkout archive must be sent and unpacked;
  probe_options()   python_env's probe options in one canonical form, to tell whether a read answers a probe.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import posixpath
import re

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.gtsfm.cluster.plugins.module_utils._broadcast_hop import hash_file
from ansible_collections.gtsfm.cluster.plugins.module_utils._plain import plain
from ansible_collections.gtsfm.cluster.plugins.module_utils._python_env import PROBE_SPEC

MIB = 1048576
# Under the node's home: files from the controller wait here for the building node, and the role's progress records.
STAGE = ".cache/gtsfm/conda_env"
PROGRESS = ".cache/gtsfm.cluster/progress"
BOOLS = ("checkout", "no_index", "import_check")


def _expand(path, home):
    return home.rstrip("/") + path[1:] if path == "~" or path.startswith("~/") else path


def _in(path, home):
    return path.startswith(home.rstrip("/") + "/")


def _settings(settings):
    """The role's settings (conda_env_NAME by NAME) as plain data, the yes/no ones as booleans."""
    s = plain(settings)
    for name in BOOLS:
        if name in s:
            s[name] = boolean(s[name], strict=False)
    return s


_DIGESTS: dict = {}


def controller_digest(path, algorithm="sha256"):
    """The hex digest of a controller file (None when it is not a readable file), computed once per file state: the
    plan's filters are evaluated again for every host and every task that names them."""
    path = os.path.expanduser(path or "")
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (path, algorithm, st.st_size, st.st_mtime_ns, st.st_ino)
    if key not in _DIGESTS:
        try:
            _DIGESTS[key] = hash_file(path, algorithm)
        except OSError:
            return None
    return _DIGESTS[key]


def setup(settings, home, scheduler, scheduler_home, controller_home, archive_sha256=None, checkout_src_is_dir=None):
    """What the settings make on one node (home: its home directory; scheduler_home: the scheduler's).

    Returns {options, stage, progress, scheduler_progress, checkout, ship, installer, source, dot_msg}: options the
    gtsfm.cluster.python_env options (every call of the role's takes them), stage the folder for files from the
    controller, progress the folder of the progress records (scheduler_progress: the scheduler's, for its
    broadcasts), checkout the checkout's absolute path, ship the controller files a building node gets ({src, dest,
    mode, directory_mode?} for ansible.builtin.copy), installer the conda installer ({src, url, path, argv}), source
    where the checkout comes from ({route: archive or git, pack, archive, dest}), dot_msg what to say when the
    scheduler has no Graphviz dot.
    """
    s = _settings(settings)
    if checkout_src_is_dir is None:
        checkout_src_is_dir = bool(s.get("checkout_src")) and os.path.isdir(os.path.expanduser(s["checkout_src"]))
    if archive_sha256 is None and s["manager"] == "archive":
        archive_sha256 = controller_digest(s.get("archive_src"))
    stage = "{}/{}".format(home.rstrip("/"), STAGE)
    checkout = _expand(s["checkout_dest"], home)
    wheelhouse = stage + "/wheelhouse" if s.get("wheelhouse_src") else ""
    options = {
        "prefix": s["prefix"],
        "manager": s["manager"],
        "python": s["python"],
        "requirements": s["requirements"],
        "project_dir": checkout,
        "env_file": s["file"] if _HOME_OR_ABS.match(s["file"]) else checkout + "/" + s["file"],
        "uv": s["uv_path"],
        # A shipped wheelhouse holds uv's wheel too (scripts/testbed's does): look there first.
        "uv_index": wheelhouse or s["uv_index"],
        "uv_version": s["uv_version"],
        "extra_index_urls": s["extra_index_urls"],
        "find_links": s["find_links"] + ([wheelhouse] if wheelhouse else []),
        "no_index": s["no_index"] or bool(wheelhouse),
        # Programs get argv without a shell: `~` is expanded here, with the node's home.
        "conda": _expand(s["conda_path"], home),
        "channels": s["channels"],
        "source_host": scheduler,
        "min_free_mb": int(s["min_free_mb"]),
        # Each probe of a finished env also imports its packages on the node (read-only, seconds): a no-op re-run
        # checks with the one read it makes anyway.
        "import_check": s["import_check"],
        "imports": s["imports"],
    }
    if s["index_url"]:
        options["index_url"] = s["index_url"]
    if s.get("uv_src"):
        options["uv_wheel"] = stage + "/" + posixpath.basename(s["uv_src"])
    ship = []
    if s["manager"] == "archive":
        options.update(archive=stage + "/" + posixpath.basename(s["archive_src"]), archive_sha256=archive_sha256)
        ship.append({"src": s["archive_src"], "dest": options["archive"], "mode": "0600"})
    if s["manager"] == "uv" and s.get("uv_src"):
        ship.append({"src": s["uv_src"], "dest": options["uv_wheel"], "mode": "0644"})
    if s["manager"] == "uv" and wheelhouse:
        ship.append(
            {
                "src": s["wheelhouse_src"].rstrip("/") + "/",
                "dest": wheelhouse + "/",
                "mode": "0644",
                "directory_mode": "0755",
            }
        )
    installer = s.get("conda_installer_src") or s.get("conda_installer_url") or ""
    path = stage + "/" + posixpath.basename(installer)
    # Miniforge's installer runs in batch mode into the folder above bin/; micromamba is a binary put in place.
    argv = (
        ["install", "-D", "-m", "0755", path, options["conda"]]
        if posixpath.basename(path).startswith("micromamba")
        else ["bash", path, "-b", "-p", posixpath.dirname(posixpath.dirname(options["conda"]))]
    )
    src = s.get("checkout_src") or ""
    # A checkout directory on the controller is packed there first, to travel as one archive.
    packed = "{}/.cache/gtsfm.cluster/checkout-{}.tar".format(controller_home.rstrip("/"), _sha1(src)[:12])
    archive = packed if src and checkout_src_is_dir else src
    return {
        "options": options,
        "stage": stage,
        "progress": "{}/{}".format(home.rstrip("/"), PROGRESS),
        "scheduler_progress": "{}/{}".format(scheduler_home.rstrip("/"), PROGRESS),
        "checkout": checkout,
        "ship": ship,
        "installer": {
            "src": s.get("conda_installer_src") or "",
            "url": s.get("conda_installer_url") or "",
            "path": path,
            "argv": argv,
        },
        "source": {
            "route": "archive" if src else "git",
            "pack": bool(src and checkout_src_is_dir),
            "archive": archive,
            "dest": stage + "/checkout-" + posixpath.basename(archive),
        },
        "dot_msg": _dot_message(s, scheduler),
    }


def _dot_message(s, scheduler):
    if s["manager"] == "conda":
        how = "add graphviz (conda-forge) to the environment file: it puts dot in the env, no root needed; or"
    else:
        how = "no wheel brings the dot program, so a uv environment cannot provide it: either"
    return (
        "conda_env: {} (the scheduler, where GTSfM's runner renders its process graph) has no Graphviz 'dot' on "
        "PATH ({}/bin first), and the runner stops without it. Fix: {} ask an admin to install the graphviz "
        "system package there (sudo apt-get install graphviz, sudo dnf install graphviz), or set "
        "conda_env_graphviz=install (installs it with become: needs sudo rights), or conda_env_graphviz=ignore "
        "when your runner never calls dot.".format(scheduler, s["prefix"], how)
    )


def _sha1(text):
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def check_paths(names, probes, prefix, checkout_dest, checkout):
    """A message when conda_env_prefix or conda_env_checkout_dest would differ between nodes (GTSfM's workers run the
    scheduler's own interpreter path), or '' when both are one path everywhere. probes: {name: python_env probe}."""
    probes = plain(probes)
    prefixes = [probes[n]["prefix"] for n in names]
    checkouts = [_expand(checkout_dest, probes[n]["home"]) for n in names]
    what = []
    if len(set(prefixes)) > 1:
        what.append(f"conda_env_prefix ({prefix})")
    if checkout and len(set(checkouts)) > 1:
        what.append(f"conda_env_checkout_dest ({checkout_dest})")
    if not what:
        return ""
    where = "; ".join("{} -> {} -> {}".format(*trio) for trio in zip(names, prefixes, checkouts))
    return (
        "conda_env: {} would not be at one identical path on every node, but GTSfM's workers run the scheduler's "
        "own interpreter path: {}. Fix: set conda_env_prefix and conda_env_checkout_dest to absolute paths that "
        "exist alike on every node (e.g. /scratch/USER/gtsfm-env).".format(" and ".join(what), where)
    )


def _writers_elsewhere(nodes, scheduler):
    """One writer per home directory other than the scheduler's."""
    by_name = dict((n["name"], n) for n in nodes)
    mates = set(by_name[scheduler].get("home_mates") or [scheduler])
    return [n["name"] for n in nodes if n.get("home_writer") and n["name"] not in mates]


# The broadcast reads a pattern with a slash in its middle from the top, rsync from anywhere: anchor it for rsync.
_RSYNC_ANCHOR = re.compile(r"^(?=[^/]+/.)")


def checkout_plan(
    nodes, scheduler, checkout_path, replicate="broadcast", exclude=(), check_mode=False, reads=None, changed=False
):
    """{broadcast, pull, rsync}: with replicate=broadcast, the nodes the scheduler's checkout is sent to along the
    chain (one per other home when the checkout is in the home, every other node otherwise); with replicate=pull, the
    nodes that rsync it (every other node, but those that share the scheduler's home when the checkout is in it: they
    see it there). The other list is empty. rsync is the command a pulling node runs (exclude: the checkout's exclude
    patterns).

    reads ({name: the stage's cluster_facts_probe}) leaves out of broadcast the nodes whose checkout the broadcast's
    own record shows to hold what the scheduler's holds, unless the scheduler's checkout changed in this run
    (changed) or its record cannot tell: the broadcast module would skip them after asking them (its rule, read by
    the stage with hop.held_digest)."""
    nodes = plain(nodes)
    by_name = dict((n["name"], n) for n in nodes)
    home = by_name[scheduler]["home"]
    others = [n["name"] for n in nodes if n["name"] != scheduler]
    if not _in(checkout_path, home):
        broadcast, pull = others, others
    else:
        mates = set(by_name[scheduler].get("home_mates") or [scheduler])
        broadcast, pull = _writers_elsewhere(nodes, scheduler), [n for n in others if n not in mates]
    # --delete spares what --exclude names on the receiver (no --delete-excluded): each node keeps its own bytecode,
    # run outputs and weights. --omit-dir-times: creating an excluded __pycache__ or results/ changes its folder's
    # time, which would count as a change on every node while a checkout's folder times mean nothing.
    rsync = (
        ["rsync", "-a", "--omit-dir-times", "--delete", "--itemize-changes", "-e", "ssh -o BatchMode=yes"]
        + (["--dry-run"] if check_mode else [])
        + ["--exclude=" + _RSYNC_ANCHOR.sub("/", p) for p in plain(list(exclude))]
        + [f"{scheduler}:{checkout_path}/", checkout_path + "/"]
    )
    if reads and not changed:
        held = dict((n, tree_held(reads.get(n), checkout_path, exclude)) for n in [scheduler] + broadcast)
        if held[scheduler]:
            broadcast = [n for n in broadcast if held[n] != held[scheduler]]
    return {
        "broadcast": broadcast if replicate == "broadcast" else [],
        "pull": pull if replicate == "pull" else [],
        "rsync": rsync,
    }


def tree_held(read, path, exclude=()):
    """The digest the stage's read (cluster_facts_probe) says the tree at path holds, read with these exclude
    patterns (cluster_node_info's trees); None when the read cannot tell."""
    for entry in (plain(read) or {}).get("trees", {}).values():
        if entry.get("path") == path and list(entry.get("exclude") or []) == list(plain(list(exclude))):
            return entry.get("held")
    return None


def stage_reads(settings, controller_home):
    """What the stage reads on every node for conda_env ({python_env, checksums, trees}, cluster_node_info's options
    of those names): the probe's options as env_setup makes them (~ for the node's home), the checkout archive the
    scheduler is sent from the controller, and the checkout tree with the broadcast's exclude patterns."""
    s = _settings(settings)
    setup_ = setup(settings, "~", "", "~", controller_home)
    source = setup_["source"]
    return {
        "python_env": dict((k, v) for k, v in setup_["options"].items() if k in PROBE_SPEC),
        "checksums": [source["dest"]] if s["checkout"] and source["route"] == "archive" else [],
        "trees": [{"path": setup_["checkout"], "exclude": list(s["checkout_exclude"])}] if s["checkout"] else [],
    }


def checkout_sends(read, source, checkout_path, exclude=()):
    """{send, unpack} for the scheduler, from the stage's read of it (cluster_facts_probe) and setup's source:
    send unless the archive there has the controller's sha1 (copy's own rule) and mode 0600; unpack when sent, or
    unless the checkout is still what the broadcast last recorded of it, after that archive arrived (a record from
    before would not show that an unpack finished)."""
    read, source = plain(read) or {}, plain(source)
    theirs = next((e for e in read.get("checksums", {}).values() if e.get("path") == source["dest"]), {})
    ours = controller_digest(source["archive"], "sha1")
    send = not (ours and theirs.get("checksum") == ours and theirs.get("mode") == "0600")
    tree = next((e for e in read.get("trees", {}).values() if e.get("path") == checkout_path), {})
    recorded = tree_held(read, checkout_path, exclude) and (tree.get("written") or 0) > (theirs.get("mtime") or 0)
    return {"send": send, "unpack": send or not recorded}


def probe_options(options, home=None):
    """python_env's probe options (PROBE_SPEC) in one form: defaults filled in, yes/no as booleans, and with home a
    leading ~ of a path taken as that home, as the module on the node would take it."""
    options = plain(options) or {}
    out = {}
    for name, spec in PROBE_SPEC.items():
        value = options.get(name, spec.get("default"))
        if value is not None and spec["type"] == "path":
            value = _expand(str(value), home) if home else str(value)
        elif value is not None and spec["type"] == "list":
            value = [str(v) for v in value]
        elif value is not None and spec["type"] == "bool":
            value = boolean(value, strict=False)
        elif value is not None:
            value = str(value)
        out[name] = value
    return out


def env_plan(nodes, probes, scheduler, strategy, replicate, min_free_mb, check_mode, prefix="~/gtsfm-env"):
    """The environment's plan over every member.

    Returns {problem, mismatch, short, builders, pull, broadcast, publish, source, changed}: mismatch is a message
    when the nodes would not build the same environment (interpreter, platform or inputs differ; empty otherwise);
    short the nodes without the environment whose free space is below min_free_mb; builders the nodes that build
    (the scheduler for build_once; for every_node each node, or one per home when the prefix is in the home); pull
    the nodes that rsync the scheduler's environment; broadcast the nodes the scheduler sends it to (one per other
    home, only those without it); publish the nodes whose prefix is then pointed at the broadcast
    copy; source the scheduler's real path of the environment; changed whether any node lacks the environment.
    Nodes already done appear in none of the lists. problem is the message to stop with before any build or copy
    (the mismatch, or else the nodes short on space under prefix's folder), empty when there is none.
    """
    nodes, probes = plain(nodes), plain(probes)
    names = [n["name"] for n in nodes]
    todo = [n for n in names if not probes[n].get("done")]
    mismatch = ""
    fps = [probes[n].get("fingerprint") for n in names]
    known = set(fp for fp in fps if fp is not None)
    # In check mode a checkout not there yet leaves a fingerprint unknown: nothing to compare then. Checked for
    # every_node too: the final check wants one environment on every node whatever the strategy.
    if len(known) > 1 or (None in fps and not check_mode):
        mismatch = (
            "conda_env: the nodes do not agree on what the environment is, so one tree cannot serve them all: "
            "{}. Fix: give every node the same interpreter at the same path (conda_env_python) and the same "
            "OS, or use conda_env_strategy=every_node.".format(
                "; ".join(f"{n}: {json.dumps(probes[n].get('spec'), sort_keys=True)}" for n in names)
            )
        )
    short = [n for n in todo if (probes[n].get("free") or 0) < int(min_free_mb) * MIB]
    if strategy == "build_once":
        builders = [scheduler]
    else:
        in_home = _in(probes[scheduler]["prefix"], probes[scheduler]["home"])
        builders = [n["name"] for n in nodes if n.get("home_writer")] if in_home else names
    builders = [n for n in builders if n in todo]
    copying = strategy == "build_once"
    pull = [n for n in todo if n != scheduler] if copying and replicate == "pull" else []
    broadcast = (
        [n for n in _writers_elsewhere(nodes, scheduler) if n in todo] if copying and replicate == "broadcast" else []
    )
    publish = [n for n in todo if n != scheduler] if copying and replicate == "broadcast" else []
    problem = mismatch
    if short and not problem:
        problem = (
            "conda_env: not enough free space for the environment under {} ({} MiB needed) on {}; nothing was "
            "built or copied. Fix: free space there, or set conda_env_prefix to a path with room on every node "
            "(or lower conda_env_min_free_mb).".format(posixpath.dirname(prefix), min_free_mb, ", ".join(short))
        )
    return {
        "problem": problem,
        "mismatch": mismatch,
        "short": short,
        "builders": builders,
        "pull": pull,
        "broadcast": broadcast,
        "publish": publish,
        "source": probes[scheduler].get("real"),
        "changed": bool(todo),
    }


def check_final(names, probes, prefix):
    """A message unless every node's prefix names the same finished environment ('' when it does)."""
    probes = plain(probes)
    states = [probes[n].get("state") for n in names]
    fps = set(probes[n].get("found_fingerprint") for n in names)
    if set(states) == {"current"} and len(fps) == 1:
        return ""
    return (
        "conda_env: not every node holds the wanted environment at {}: {}. Re-run; a node reported as "
        "other/broken/missing is rebuilt or copied again.".format(
            prefix, ", ".join(f"{name}: {state}" for name, state in zip(names, states))
        )
    )


def check_imports(host, probe, prefix):
    """A message naming what the node's environment failed to import (one problem a line), or '' when it imported
    everything. probe: the node's last python_env probe (import_problems only when its import_check ran)."""
    problems = plain(probe).get("import_problems") or []
    if not problems:
        return ""
    return (
        "conda_env: {}: {}/bin/python does not import what the environment holds (checked on the node itself, as "
        "its non-interactive SSH sessions run it; set conda_env_imports to the modules that matter, or "
        "conda_env_import_check=false, to check less):{}".format(host, prefix, "".join("\n- " + p for p in problems))
    )


CHOICES = (
    ("manager", ("conda", "uv", "archive")),
    ("strategy", ("build_once", "every_node")),
    ("replicate", ("pull", "broadcast")),
    ("graphviz", ("fail", "warn", "install", "ignore")),
)
_HOME_OR_ABS = re.compile(r"^(~/|/)")
_EXCLUDE = re.compile(r"^/?[^/\\]+(/[^/\\]+)*/?$")
_EXCLUDE_BAD = re.compile(r"[*][*]|(^|/)[.][.]?(/|$)")


def missing_sources(settings):
    """The settings ending in _src (by NAME) whose controller file is not there; empty ones are not used."""
    return [k for k, v in _settings(settings).items() if k.endswith("_src") and v and not os.path.exists(str(v))]


# What the role registers for the checkout's steps: the scheduler's copy, unarchive and git, the others' rsync pull,
# the chain's broadcast (run_once, so every node holds it).
CHECKOUT_STEPS = (
    "__conda_env_checkout_copy",
    "__conda_env_checkout_unarchive",
    "__conda_env_checkout_git",
    "__conda_env_checkout_sync",
    "__conda_env_bcast",
)


def checkout_changed(hosts):
    """Whether any of these nodes' checkout steps (their hostvars) changed the checkout in this run; a step that did
    not run counts as unchanged."""
    return any(
        boolean((host.get(step) or {}).get("changed", False), strict=False) for host in hosts for step in CHECKOUT_STEPS
    )


def check_settings(settings, missing=()):
    """One message per bad conda_env setting (empty when they make sense), naming the variable and the fix; when
    they make sense, one for the controller files that are not there (missing: the settings naming them)."""
    s = _settings(settings)
    problems = []
    for name, choices in CHOICES:
        if s.get(name) not in choices:
            problems.append("conda_env_{} {!r} must be one of {}.".format(name, s.get(name), ", ".join(choices)))
    prefix = str(s.get("prefix") or "")
    if not _HOME_OR_ABS.match(prefix) or prefix.rstrip("/") in ("~", "", s.get("checkout_dest")):
        problems.append(
            f"conda_env_prefix {prefix!r} must be an absolute or ~/ path of its own (not ~, / or the checkout)."
        )
    if s.get("manager") == "archive" and not s.get("archive_src"):
        problems.append("conda_env_manager archive needs conda_env_archive_src (the prebuilt environment).")
    if s.get("manager") == "uv" and not s.get("requirements") and not s.get("checkout"):
        problems.append("conda_env_manager uv needs conda_env_requirements or the checkout (pyproject.toml + uv.lock).")
    if s.get("manager") == "conda" and not s.get("checkout") and not _HOME_OR_ABS.match(str(s.get("file") or "")):
        problems.append("conda_env_manager conda without the checkout needs an absolute conda_env_file.")
    if s.get("checkout") and not _HOME_OR_ABS.match(str(s.get("checkout_dest") or "")):
        problems.append("conda_env_checkout_dest {!r} must be an absolute or ~/ path.".format(s.get("checkout_dest")))
    if not str(s.get("python") or "").startswith("/"):
        problems.append("conda_env_python {!r} must be an absolute path.".format(s.get("python")))
    bad = [p for p in s.get("checkout_exclude") or [] if not _EXCLUDE.match(p) or _EXCLUDE_BAD.search(p)]
    if s.get("checkout") and bad:
        problems.append(
            "conda_env_checkout_exclude holds patterns that cannot be used: {}. Fix: give a name "
            "(__pycache__/, *.pyc) or a path from the checkout's top (/results/), without '**', '\\', "
            "'.', '..' or empty components.".format(", ".join(bad))
        )
    missing = ["conda_env_" + name for name in plain(list(missing))]
    if missing and not problems:
        problems.append(
            "not found on the controller: {}. Fix: correct the path, or empty the variable to use the "
            "network route.".format(", ".join(missing))
        )
    return ["conda_env: " + p for p in problems]
