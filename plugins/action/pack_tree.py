# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of gtsfm.cluster.pack_tree: runs on the controller only."""

from __future__ import annotations

import os

from ansible.plugins.action import ActionBase

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._pack import PackError, pack_tree


class ActionModule(ActionBase):
    """Pack a controller directory into one deterministic tar in the controller's cache."""

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(
            argument_spec={
                "src": {"type": "path", "required": True},
                "dest": {"type": "path", "required": True},
                "exclude": {"type": "list", "elements": "str", "default": []},
            }
        )
        try:
            result.update(
                pack_tree(
                    os.path.expanduser(args["src"]).rstrip("/") or "/",
                    os.path.expanduser(args["dest"]),
                    args["exclude"],
                )
            )
        except (PackError, OSError) as exc:
            result.update(failed=True, msg=f"pack_tree: {exc}")
        return result
