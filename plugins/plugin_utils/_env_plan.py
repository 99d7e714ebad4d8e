# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The conda_env role's cross-host plan, on the controller.

Private to the gtsfm.cluster collection (used by the filters in plugins/filter/conda_env.py); not a public API.

Every function takes plain data - the members' cluster_facts_node (name, home, home_writer, home_mates after the
stage's homes step), each member's python_env probe (state, done, fingerprint, spec, free, prefix, home, real) and
the role's settings - and returns plain data; the role's tasks then run one module on the nodes named here.
  check_paths()     the environment and the checkout must be at one path on every node;
  checkout_plan()   which nodes receive the scheduler's checkout (broadcast) or pull it (rsync);
  env_plan()        whether the nodes agree on one environment, who is short on space, who builds, who copies
                    (pull or broadcast), who publishes, and whether anything is left to change;
  check_final()     after the changes: every node names the same finished environment.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._weights import plain

MIB = 1048576


def _expand(path, home):
    return home.rstrip("/") + path[1:] if path == "~" or path.startswith("~/") else path


def _in(path, home):
    return path.startswith(home.rstrip("/") + "/")


def check_paths(names, probes, prefix, checkout_dest, checkout):
    """A message when conda_env_prefix or conda_env_checkout_dest would differ between nodes (GTSfM's workers run the
    scheduler's own interpreter path), or '' when both are one path everywhere. probes: {name: python_env probe}."""
    probes = plain(probes)
    prefixes = [probes[n]["prefix"] for n in names]
    checkouts = [_expand(checkout_dest, probes[n]["home"]) for n in names]
    what = []
    if len(set(prefixes)) > 1:
        what.append("conda_env_prefix (%s)" % prefix)
    if checkout and len(set(checkouts)) > 1:
        what.append("conda_env_checkout_dest (%s)" % checkout_dest)
    if not what:
        return ""
    where = "; ".join("%s -> %s -> %s" % trio for trio in zip(names, prefixes, checkouts))
    return ("conda_env: %s would not be at one identical path on every node, but GTSfM's workers run the scheduler's "
            "own interpreter path: %s. Fix: set conda_env_prefix and conda_env_checkout_dest to absolute paths that "
            "exist alike on every node (e.g. /scratch/USER/gtsfm-env)." % (" and ".join(what), where))


def _writers_elsewhere(nodes, scheduler):
    """One writer per home directory other than the scheduler's."""
    by_name = dict((n["name"], n) for n in nodes)
    mates = set(by_name[scheduler].get("home_mates") or [scheduler])
    return [n["name"] for n in nodes if n.get("home_writer") and n["name"] not in mates]


def checkout_plan(nodes, scheduler, checkout_path):
    """{broadcast, pull}: the nodes the scheduler's checkout is sent to along the chain (one per other home when the
    checkout is in the home, every other node otherwise), and the nodes that rsync it (every other node, but those
    that share the scheduler's home when the checkout is in it: they see it there)."""
    nodes = plain(nodes)
    by_name = dict((n["name"], n) for n in nodes)
    home = by_name[scheduler]["home"]
    others = [n["name"] for n in nodes if n["name"] != scheduler]
    if not _in(checkout_path, home):
        return {"broadcast": others, "pull": others}
    mates = set(by_name[scheduler].get("home_mates") or [scheduler])
    return {"broadcast": _writers_elsewhere(nodes, scheduler), "pull": [n for n in others if n not in mates]}


def env_plan(nodes, probes, scheduler, strategy, replicate, min_free_mb, check_mode):
    """The environment's plan over every member.

    Returns {mismatch, short, builders, pull, broadcast, publish, source, changed}: mismatch is a message when the
    nodes would not build the same environment (interpreter, platform or inputs differ; empty otherwise); short
    the nodes without the environment whose free space is below min_free_mb; builders the nodes
    that build (the scheduler for build_once; for every_node each node, or one per home when the prefix is in the
    home); pull the nodes that rsync the scheduler's environment; broadcast the nodes the scheduler sends it to
    (one per other home, only those without it); publish the nodes whose prefix is then pointed at the broadcast
    copy; source the scheduler's real path of the environment; changed whether any node lacks the environment.
    Nodes already done appear in none of the lists.
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
        mismatch = ("conda_env: the nodes do not agree on what the environment is, so one tree cannot serve them all: "
                    "%s. Fix: give every node the same interpreter at the same path (conda_env_python) and the same "
                    "OS, or use conda_env_strategy=every_node."
                    % "; ".join("%s: %s" % (n, json.dumps(probes[n].get("spec"), sort_keys=True)) for n in names))
    short = [n for n in todo if (probes[n].get("free") or 0) < int(min_free_mb) * MIB]
    if strategy == "build_once":
        builders = [scheduler]
    else:
        in_home = _in(probes[scheduler]["prefix"], probes[scheduler]["home"])
        builders = [n["name"] for n in nodes if n.get("home_writer")] if in_home else names
    builders = [n for n in builders if n in todo]
    copying = strategy == "build_once"
    pull = [n for n in todo if n != scheduler] if copying and replicate == "pull" else []
    broadcast = [n for n in _writers_elsewhere(nodes, scheduler) if n in todo] \
        if copying and replicate == "broadcast" else []
    publish = [n for n in todo if n != scheduler] if copying and replicate == "broadcast" else []
    return {"mismatch": mismatch, "short": short, "builders": builders, "pull": pull, "broadcast": broadcast,
            "publish": publish, "source": probes[scheduler].get("real"), "changed": bool(todo)}


def check_final(names, probes, prefix):
    """A message unless every node's prefix names the same finished environment ('' when it does)."""
    probes = plain(probes)
    states = [probes[n].get("state") for n in names]
    fps = set(probes[n].get("found_fingerprint") for n in names)
    if set(states) == {"current"} and len(fps) == 1:
        return ""
    return ("conda_env: not every node holds the wanted environment at %s: %s. Re-run; a node reported as "
            "other/broken/missing is rebuilt or copied again."
            % (prefix, ", ".join("%s: %s" % pair for pair in zip(names, states))))


CHOICES = (("manager", ("conda", "uv", "archive")), ("strategy", ("build_once", "every_node")),
           ("replicate", ("pull", "broadcast")), ("graphviz", ("fail", "warn", "install", "ignore")))
_HOME_OR_ABS = re.compile(r"^(~/|/)")
_EXCLUDE = re.compile(r"^/?[^/\\]+(/[^/\\]+)*/?$")
_EXCLUDE_BAD = re.compile(r"[*][*]|(^|/)[.][.]?(/|$)")


def check_settings(settings):
    """One message per bad conda_env setting (empty when they make sense), naming the variable and the fix."""
    s = plain(settings)
    problems = []
    for name, choices in CHOICES:
        if s.get(name) not in choices:
            problems.append("conda_env_%s %r must be one of %s." % (name, s.get(name), ", ".join(choices)))
    prefix = str(s.get("prefix") or "")
    if not _HOME_OR_ABS.match(prefix) or prefix.rstrip("/") in ("~", "", s.get("checkout_dest")):
        problems.append("conda_env_prefix %r must be an absolute or ~/ path of its own (not ~, / or the checkout)."
                        % prefix)
    if s.get("manager") == "archive" and not s.get("archive_src"):
        problems.append("conda_env_manager archive needs conda_env_archive_src (the prebuilt environment).")
    if s.get("manager") == "uv" and not s.get("requirements") and not s.get("checkout"):
        problems.append("conda_env_manager uv needs conda_env_requirements or the checkout (pyproject.toml + uv.lock).")
    if s.get("manager") == "conda" and not s.get("checkout") and not _HOME_OR_ABS.match(str(s.get("file") or "")):
        problems.append("conda_env_manager conda without the checkout needs an absolute conda_env_file.")
    if s.get("checkout") and not _HOME_OR_ABS.match(str(s.get("checkout_dest") or "")):
        problems.append("conda_env_checkout_dest %r must be an absolute or ~/ path." % (s.get("checkout_dest"),))
    if not str(s.get("python") or "").startswith("/"):
        problems.append("conda_env_python %r must be an absolute path." % (s.get("python"),))
    bad = [p for p in s.get("checkout_exclude") or [] if not _EXCLUDE.match(p) or _EXCLUDE_BAD.search(p)]
    if s.get("checkout") and bad:
        problems.append("conda_env_checkout_exclude holds patterns that cannot be used: %s. Fix: give a name "
                        "(__pycache__/, *.pyc) or a path from the checkout's top (/results/), without '**', '\\', "
                        "'.', '..' or empty components." % ", ".join(bad))
    return ["conda_env: " + p for p in problems]
