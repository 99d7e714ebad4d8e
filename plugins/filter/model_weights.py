# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters gtsfm.cluster.weights_manifest, weights_lock, weights_catalog, weights_excludes, weights_outcome,
weights_sends and weights_check; documented in the .yml files beside."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._weights import (
    WeightsError,
    catalog,
    checkout_excludes,
    lock,
    manifest,
)
from ansible_collections.gtsfm.cluster.plugins.plugin_utils._weights_plan import check_copies, outcome, sends


def weights_manifest(
    entries, checkout_dir, home, mirror="", lock_text="", lock_path="", repin=False, controller_dir=""
):
    """The model_weights entries resolved for this cluster."""
    try:
        return manifest(entries, checkout_dir, home, mirror, lock_text, lock_path, bool(repin), controller_dir)
    except WeightsError as exc:
        raise AnsibleFilterError(f"model_weights: {exc}")


def weights_lock(lock_text, lock_path, entries, results, repin=False):
    """The lock file's text with the verified sums pinned."""
    try:
        return lock(lock_text, lock_path, entries, results, bool(repin))
    except WeightsError as exc:
        raise AnsibleFilterError(f"model_weights: {exc}")


def weights_catalog(sets):
    """GTSfM's weight files of the named sets ('all' for every set)."""
    try:
        return catalog(sets)
    except WeightsError as exc:
        raise AnsibleFilterError(f"model_weights: {exc}")


def weights_excludes(entries):
    """Exclude patterns for the places the entries' relative dests take inside the checkout."""
    return checkout_excludes(entries)


def weights_outcome(plan, jobs, followed, check_mode, fetch_host, lock_file, repin=False):
    """What the downloads left: verified sums, failures, the lock file's text, the scheduler's copies."""
    try:
        return outcome(plan, jobs, followed, bool(check_mode), fetch_host, lock_file, bool(repin))
    except WeightsError as exc:
        raise AnsibleFilterError(f"model_weights: {exc}")


def weights_sends(entries, nodes, scheduler, held_back=None):
    """The entries to send from the scheduler, each with its target nodes."""
    return sends(entries, nodes, scheduler, list(held_back or []))


def weights_check(expected, sha256sum_lines):
    """One node's problems: files missing or with the wrong sum."""
    return check_copies(expected, sha256sum_lines)


class FilterModule:
    """The model_weights role's catalog, manifest and lock file, and the checkout places its files take."""

    def filters(self):
        return {
            "weights_manifest": weights_manifest,
            "weights_lock": weights_lock,
            "weights_catalog": weights_catalog,
            "weights_excludes": weights_excludes,
            "weights_outcome": weights_outcome,
            "weights_sends": weights_sends,
            "weights_check": weights_check,
        }
