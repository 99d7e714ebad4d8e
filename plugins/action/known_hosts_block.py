# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of gtsfm.cluster.known_hosts_block: no remote call when the stage's read shows nothing to change."""

from __future__ import annotations

from ansible_collections.gtsfm.cluster.plugins.module_utils.known_hosts import render_lines
from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import unchanged
from ansible_collections.gtsfm.cluster.plugins.plugin_utils._observed import ObservedWrite


class ActionModule(ObservedWrite):
    """known_hosts_block, skipped when O(observed) holds the lines the module would render (hashes reused)."""

    def unchanged(self, args, observed):
        lines = None
        if args.get("state", "present") == "present":
            try:
                # The module renders against the block it finds: the same block the stage read.
                lines = render_lines(
                    list(args.get("entries") or []), bool(args.get("hash_hosts")), list(observed.get("block") or [])
                )
            except (ValueError, KeyError, TypeError):
                return None  # the module words the error
        if unchanged(observed, lines, args.get("mode")):
            return {"path": observed.get("path"), "lines": len(lines or [])}
        return None
