# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of gtsfm.cluster.bashrc_block: no remote call when the stage's read shows nothing to change."""

from __future__ import annotations

from ansible_collections.gtsfm.cluster.plugins.module_utils._bashrc import BashrcError, rewrite
from ansible_collections.gtsfm.cluster.plugins.plugin_utils._observed import ObservedWrite


class ActionModule(ObservedWrite):
    """bashrc_block, skipped when O(observed)'s text already has the block where the module would put it."""

    def unchanged(self, args, observed):
        if args.get("mode") is not None or observed.get("link") and not observed.get("exists"):
            return None
        exists = bool(observed.get("exists"))
        text = observed.get("text")
        if exists and not isinstance(text, str):
            return None  # the read did not hold the text (too large, not UTF-8): the module reads it
        try:
            _after, changed = rewrite(text or "", exists, args)
        except BashrcError:
            return None  # the module words the error, naming the fix
        if changed:
            return None
        return {
            "path": observed.get("path"),
            "target": observed.get("target") or observed.get("path"),
            "created": False,
        }
