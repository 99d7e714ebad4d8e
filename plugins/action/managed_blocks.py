# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of gtsfm.cluster.managed_blocks: only the files the stage's read shows would change go to the node,
and none at all (no remote call) when no file would change. A failure names the node."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._observed import (
    decide,
    known_hosts_unchanged,
    lines_unchanged,
)


class ActionModule(ActionBase):
    """managed_blocks, each file judged from its O(blocks[].observed) by the rule of its writer alone."""

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        host = (task_vars or {}).get("inventory_hostname", "this node")
        blocks = self._task.args.get("blocks")
        if not isinstance(blocks, list) or not all(isinstance(b, dict) and b.get("path") for b in blocks):
            result.update(
                failed=True,
                msg=f"managed_blocks on {host}: blocks must be a list of mappings, each with a path and a marker "
                f"(got {blocks!r}). Fix the task's blocks (the managed_blocks role: managed_blocks_files).",
            )
            return result
        send, answered = [], {}
        for block in blocks:
            judge = lines_unchanged if block.get("entries") is None else known_hosts_unchanged
            block, answer = decide(block, judge)
            if answer is None:
                send.append(block)
            else:
                answered[block["path"]] = answer
        if not send:
            result.update(changed=False, decided_from="observed", files=answered)
            return result
        ran = self._execute_module(
            module_name="gtsfm.cluster.managed_blocks", module_args={"blocks": send}, task_vars=task_vars
        )
        if ran.get("failed") and isinstance(ran.get("msg"), str):
            ran["msg"] = f"managed_blocks on {host}: {ran['msg'].removeprefix('managed_blocks: ')}"
        ran["files"] = dict(answered, **(ran.get("files") or {}))
        result.update(ran)
        return result
