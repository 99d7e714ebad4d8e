# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of gtsfm.cluster.pack_tree: runs on the controller only."""

from __future__ import annotations

import os

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._controller_action import ControllerAction
from ansible_collections.gtsfm.cluster.plugins.plugin_utils._pack import PackError, pack_tree


class ActionModule(ControllerAction):
    """Pack a controller directory into one deterministic tar in the controller's cache."""

    ARGUMENT_SPEC = {
        "src": {"type": "path", "required": True},
        "dest": {"type": "path", "required": True},
        "exclude": {"type": "list", "elements": "str", "default": []},
    }

    def act(self, args, task_vars):
        try:
            return pack_tree(
                os.path.expanduser(args["src"]).rstrip("/") or "/", os.path.expanduser(args["dest"]), args["exclude"]
            )
        except (PackError, OSError) as exc:
            return {"failed": True, "msg": f"pack_tree: {exc}"}
