# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of gtsfm.cluster.managed_block: no remote call when the stage's read shows nothing to change."""

from __future__ import annotations

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._observed import ObservedWrite, lines_unchanged


class ActionModule(ObservedWrite):
    """managed_block, skipped when O(observed) holds the block as asked."""

    def unchanged(self, args, observed):
        return lines_unchanged(args, observed)
