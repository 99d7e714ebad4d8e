# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The frame of the action plugins that do their own work on the controller (follow, pack_tree, weights_plan).

They run no module of their name: each checks its arguments against its ARGUMENT_SPEC and then does its work in
`act`. The frame is here once, so each plugin file holds only what it does. (The block writers' action plugins,
which do run their module, share theirs in _observed.py.)
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase


class ControllerAction(ActionBase):
    """Validate the task's arguments, then merge what `act` returns into the task's result."""

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    ARGUMENT_SPEC: dict = {}
    # Further rules for validate_argument_spec: mutually_exclusive, required_one_of, ...
    ARGUMENT_RULES: dict = {}

    def act(self, args: dict, task_vars: dict) -> dict:
        """The task's own result fields (failed and msg on a failure), from the validated arguments."""
        raise NotImplementedError

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC, **self.ARGUMENT_RULES)
        result.update(self.act(args, task_vars or {}))
        return result
