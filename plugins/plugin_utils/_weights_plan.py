# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The model_weights role's cross-host plan, on the controller.

Private to the gtsfm.cluster collection (used by the action plugin weights_plan and the filters in
plugins/filter/model_weights.py); not a public API.

The role's steps are module calls on the plan's nodes; every decision between them is made here, from plain data:
  check_settings()  the role's settings, before anything changes;
  check_nodes()     the stage's read of every node (cluster_facts_node): the scheduler is a member, and a checkout
                    under ~ means one path everywhere;
  split_held()      the manifest against what the controller holds: files used as they are, files to download, and
                    the held files whose sum is wrong;
  outcome()         the downloads' results: verified sums, failures (by name), the lock file's new text, what the
                    scheduler gets from the controller, and the sum each node's copy must have;
  sends()           which nodes each file is sent to from the scheduler: one node per other home directory for a file
                    in the home, every other node for a file elsewhere;
  check_copies()    one node's sha256sum output against the expected sums.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.gtsfm.cluster.plugins.module_utils._plain import plain
from ansible_collections.gtsfm.cluster.plugins.plugin_utils._weights import WeightsError, lock

FETCH_ON = ("scheduler", "controller")
# sha256sum's line: 64 hex digits, a space and a space (text mode) or '*' (binary mode), the path.
_SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.*)$")


def check_settings(settings):
    """The problems of the role's settings (empty when they make sense), each naming the variable and the fix."""
    s = plain(settings)
    problems = []
    if s.get("fetch_on") not in FETCH_ON:
        problems.append(f"model_weights_fetch_on {s.get('fetch_on')!r} must be scheduler or controller.")
    mirror = s.get("mirror") or ""
    if mirror and not re.match(r"^https?://[^/ ]+", mirror):
        problems.append(f"model_weights_mirror {mirror!r} must be empty or an http(s):// base URL.")
    if not s.get("lock_file"):
        problems.append("model_weights_lock_file must be a path on the controller.")
    if not re.match(r"^(/|~/|~$)", str(s.get("checkout_dir") or "")):
        problems.append(f"model_weights_checkout_dir {s.get('checkout_dir')!r} must be absolute or start with ~/.")
    for name, least in (("retries", 0), ("fetch_timeout", 1), ("poll_delay", 1)):
        value = s.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            problems.append(f"model_weights_{name} {value!r} must be a whole number of {least} or more.")
    return ["model_weights: " + p for p in problems]


def check_nodes(nodes, scheduler, checkout_dir):
    """The problems of the cluster for this role: the scheduler must be a member, and a checkout under ~ needs one
    home directory path on every node (GTSfM runs from the same path everywhere)."""
    nodes = plain(nodes)
    names = [n["name"] for n in nodes]
    if scheduler not in names:
        return [
            f"model_weights: the scheduler {scheduler!r} (the first host of group gtsfm_scheduler) is not a member of "
            f"the cluster ({', '.join(names)}). Fix: make the scheduler one of the cluster's hosts."
        ]
    homes = sorted(set(n["home"] for n in nodes))
    if str(checkout_dir).startswith("~") and len(homes) > 1:
        return [
            f"model_weights: model_weights_checkout_dir {checkout_dir!r} is under ~, but the nodes' home directories "
            f"differ ({', '.join(homes)}); GTSfM needs its checkout at the same path on every node. Set "
            "model_weights_checkout_dir to that absolute path."
        ]
    return []


def split_held(entries, held, lock_file):
    """(held, download, problems): the entries whose file the controller holds, each with the sum and size found
    (held: {cache path: {sha256, size}}); the entries to download; and a message per held file whose sum is not the
    given or pinned one (nothing may be copied then)."""
    held = plain(held)
    have, download, problems = [], [], []
    for entry in plain(entries):
        found = held.get(entry["cache"]) if entry["cache"] else None
        if found is None:
            download.append(entry)
            continue
        if entry["sha256"] is not None and found["sha256"] != entry["sha256"]:
            problems.append(
                f"model_weights: {entry['cache']} (on the controller, for {entry['name']} from {entry['shown']}): "
                f"sha256 mismatch: expected {entry['sha256']} "
                f"({'given' if entry['given'] else 'pinned in ' + lock_file}), got {found['sha256']}. "
                "Nothing was copied. Fix: replace the file with the right one, or remove it so that it is "
                f"downloaded{'' if entry['given'] else ', or re-pin on purpose with model_weights_repin=true'}."
            )
        have.append(dict(entry, found_sha256=found["sha256"], found_size=found["size"]))
    return have, download, problems


def _items(registered):
    """The per-item results of a registered loop (none when the task was skipped or never ran)."""
    return list((registered or {}).get("results") or [])


def outcome(plan, jobs, followed, check_mode, fetch_host, lock_file, repin=False):
    """What the downloads left: {verified, failures, lock, copy, pending, expected}.

    jobs: the registered async starts of the downloads (in check mode, their check results); followed: the registered
    follow of those jobs (skipped in check mode). A download that failed has no sha256 in its result.
    """
    plan = plain(plan)
    if not isinstance(plan, dict) or "held" not in plan:
        # A skipped plan (no weights asked for): a loop is templated before its when, so this must still answer.
        return {"verified": [], "failures": [], "lock": "", "to_copy": [], "pending": [], "expected": {}}
    if check_mode:
        results = [(r, r["item"]) for r in _items(jobs)]
    else:
        results = [(r.get("result") or {}, r["item"]["item"]) for r in _items(followed)]
    verified = [
        {"origin": e["origin"], "name": e["name"], "sha256": r["sha256"], "size": r.get("size")}
        for r, e in results
        if r.get("sha256")
    ]
    verified += [
        {"origin": e["origin"], "name": e["name"], "sha256": e["found_sha256"], "size": e["found_size"]}
        for e in plan["held"]
    ]
    failures = (
        []
        if check_mode
        else [
            f"{fetch_host}: {r.get('msg') or 'a download did not finish in time'}"
            for r, _e in results
            if not r.get("sha256")
        ]
    )
    if failures and not all(e["given"] for e in plan["entries"]):
        failures.append(
            f"(The sums of entries without sha256 are pinned in {lock_file}, trust on first use; if an origin changed "
            "a file on purpose, re-pin with model_weights_repin=true.)"
        )
    by_controller = plan["fetch_on"] == "controller"
    copy = list(plan["held"]) + (list(plan["download"]) if by_controller and not check_mode else [])
    # In check mode a file the scheduler does not hold yet cannot be sent: its fetch already reports the change.
    if not check_mode:
        pending = []
    elif by_controller:
        pending = [e["name"] for e in plan["download"]]
    else:
        pending = [r["item"]["name"] for r in _items(jobs) if r.get("changed")]
    sums = dict((v["name"], v["sha256"]) for v in verified)
    return {
        "verified": verified,
        "failures": failures,
        "lock": lock(plan["lock_text"], lock_file, plan["entries"], verified, repin),
        "to_copy": copy,
        "pending": pending,
        "expected": dict((e["path"], e["sha256"] or sums.get(e["name"])) for e in plan["entries"]),
    }


def sends(entries, nodes, scheduler, held_back=()):
    """[{entry..., targets}] for each entry to send from the scheduler (entries without targets left out).

    nodes: every member's cluster_facts_node after the stage's homes step (home, home_writer, home_mates). A file in
    the scheduler's home reaches the nodes that share that home already: it goes to one writer per other home; a file
    elsewhere goes to every other node. held_back: names not to send (check mode: the scheduler lacks them yet).
    """
    nodes = plain(nodes)
    by_name = dict((n["name"], n) for n in nodes)
    home = by_name[scheduler]["home"].rstrip("/") + "/"
    mates = set(by_name[scheduler].get("home_mates") or [scheduler])
    in_home = [n["name"] for n in nodes if n.get("home_writer") and n["name"] not in mates]
    elsewhere = [n["name"] for n in nodes if n["name"] != scheduler]
    out = []
    for entry in plain(entries):
        targets = in_home if entry["path"].startswith(home) else elsewhere
        if targets and entry["name"] not in held_back:
            out.append(dict(entry, targets=targets))
    return out


def check_copies(expected, sha256sum_lines):
    """One message per file a node lacks or holds with the wrong sum. expected: {path: sum or None (not known: the
    file must only be there)}; sha256sum_lines: what `sha256sum -- PATH...` printed for the files it could read."""
    have = {}
    for line in plain(sha256sum_lines or []):
        match = _SUM_LINE.match(line)
        if match:
            have[match.group(2)] = match.group(1)
    bad = []
    for path, want in plain(expected).items():
        got = have.get(path)
        if got is None:
            bad.append(f"{path} is missing")
        elif want and got != want:
            bad.append(f"{path}: sha256 {got}, expected {want}")
    return bad


__all__ = ["WeightsError", "check_settings", "check_nodes", "split_held", "outcome", "sends", "check_copies"]
