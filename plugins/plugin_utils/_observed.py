# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action plugins of the block writers: a write the play's earlier read already answers makes no remote call.

The stage (cluster_facts) reads every node once. A writer given that read (its `observed` argument) applies the
module's own rule to it here, on the controller, through the same module_utils function the module calls on the
node; when nothing would change it answers at once. So each write is decided once, by one function, and no
`when:` in a role predicts what a module would do.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

# File options the stage's read does not report: with any of them set, only the module can tell.
UNREAD_FILE_OPTIONS = ("owner", "group", "seuser", "serole", "setype", "selevel", "attributes", "unsafe_writes")


class ObservedWrite(ActionBase):
    """Run the module unless `observed` shows that it would change nothing. Subclasses say how to judge."""

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def unchanged(self, args: dict, observed: dict) -> dict | None:
        """The module's result without running it when `observed` shows nothing to change; None to run it."""
        raise NotImplementedError

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        observed = args.pop("observed", None)
        # A task run in the background (async, for a subclass that allows it) always asks the node.
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        answer = None
        unread = any(args.get(k) is not None for k in UNREAD_FILE_OPTIONS)
        if isinstance(observed, dict) and not wrap_async and not unread:
            answer = self.unchanged(args, observed)
        if answer is not None:
            result.update(answer, changed=False, decided_from="observed")
            return result
        result.update(
            self._execute_module(
                module_name=self._task.resolved_action or self._task.action,
                module_args=args,
                task_vars=task_vars,
                wrap_async=wrap_async,
            )
        )
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)  # pylint: disable=protected-access
        return result
