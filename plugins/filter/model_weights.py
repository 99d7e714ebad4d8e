# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters gtsfm.cluster.weights_manifest and gtsfm.cluster.weights_lock; documented in the .yml files beside."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.gtsfm.cluster.plugins.plugin_utils._weights import WeightsError, lock, manifest


def weights_manifest(entries, checkout_dir, home, mirror="", lock_text="", lock_path="", repin=False,
                     controller_dir=""):
    """The model_weights entries resolved for this cluster."""
    try:
        return manifest(entries, checkout_dir, home, mirror, lock_text, lock_path, bool(repin), controller_dir)
    except WeightsError as exc:
        raise AnsibleFilterError("model_weights: %s" % exc)


def weights_lock(lock_text, lock_path, entries, results, repin=False):
    """The lock file's text with the verified sums pinned."""
    try:
        return lock(lock_text, lock_path, entries, results, bool(repin))
    except WeightsError as exc:
        raise AnsibleFilterError("model_weights: %s" % exc)


class FilterModule:
    """The model_weights role's manifest and lock file."""

    def filters(self):
        return {"weights_manifest": weights_manifest, "weights_lock": weights_lock}
