# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of gtsfm.cluster.ssh_keypair: no remote call when the stage's read shows the key pair in place."""

from __future__ import annotations

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._observed import ObservedWrite, keypair_unchanged


class ActionModule(ObservedWrite):
    """ssh_keypair, skipped when O(observed) (the stage's read of this key pair) shows nothing to do."""

    def unchanged(self, args, observed):
        return keypair_unchanged(args, observed)
