# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of gtsfm.cluster.python_env: a probe the stage's read already answers makes no remote call."""

from __future__ import annotations

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._env_plan import probe_options
from ansible_collections.gtsfm.cluster.plugins.plugin_utils._observed import ObservedWrite

# What a registered result carries besides the read itself.
_NOT_READ = ("changed", "failed", "skipped", "invocation", "decided_from", "msg")


class ActionModule(ObservedWrite):
    """python_env, answered from O(observed) for O(action=probe) when that read was made with the task's options."""

    _supports_async = True

    def unchanged(self, args, observed):
        if args.get("action", "probe") != "probe" or observed.get("failed") or observed.get("error"):
            return None
        read_with = observed.get("read_with")
        if not isinstance(read_with, dict) or probe_options(args, observed.get("home")) != probe_options(read_with):
            return None
        return dict((k, v) for k, v in observed.items() if k not in _NOT_READ and not k.startswith("_ansible"))
