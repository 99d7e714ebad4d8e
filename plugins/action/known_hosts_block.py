# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of gtsfm.cluster.known_hosts_block: no remote call when the stage's read shows nothing to change."""

from __future__ import annotations

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._observed import ObservedWrite, known_hosts_unchanged


class ActionModule(ObservedWrite):
    """known_hosts_block, skipped when O(observed) holds the lines the module would render (hashes reused)."""

    def unchanged(self, args, observed):
        return known_hosts_unchanged(args, observed)
