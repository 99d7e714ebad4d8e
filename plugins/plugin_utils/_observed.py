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

from ansible_collections.gtsfm.cluster.plugins.module_utils.known_hosts import render_lines
from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import unchanged

# File options the stage's read does not report: with any of them set, only the module can tell.
UNREAD_FILE_OPTIONS = ("owner", "group", "seuser", "serole", "setype", "selevel", "attributes", "unsafe_writes")


def decide(args: dict, judge, ask_node: bool = False) -> tuple[dict, dict | None]:
    """One write's arguments without `observed`, and its result when that read shows nothing to change.

    The result is None when the module must run: no read given, `ask_node` set, a file option the read does not
    report, or `judge` (one of the judges below) cannot tell. ObservedWrite decides a task's one write with it and
    managed_blocks each of its files, so both follow the same rule.
    """
    args = dict(args)
    observed = args.pop("observed", None)
    if ask_node or not isinstance(observed, dict) or any(args.get(k) is not None for k in UNREAD_FILE_OPTIONS):
        return args, None
    answer = judge(args, observed)
    return args, None if answer is None else dict(answer, changed=False, decided_from="observed")


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
        # A task run in the background (async, for a subclass that allows it) always asks the node.
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        args, answer = decide(self._task.args, self.unchanged, ask_node=wrap_async)
        if answer is not None:
            result.update(answer)
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


# The judges, one per kind of write: each the module's own rule applied to what the stage read, returning the
# module's result without running it, or None when the module must run. managed_blocks judges each of its files by
# the judge of the writer that file would have alone.


def lines_unchanged(args: dict, observed: dict) -> dict | None:
    """managed_block's rule (managed_block.unchanged): the block holds O(lines) and the file has O(mode)."""
    lines = list(args.get("lines") or []) if args.get("state", "present") == "present" else None
    if unchanged(observed, lines, args.get("mode")):
        return {"path": observed.get("path"), "lines": len(lines or [])}
    return None


def known_hosts_unchanged(args: dict, observed: dict) -> dict | None:
    """known_hosts_block's rule: the block holds the lines render_lines makes against it (hashed lines reused)."""
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


def keypair_unchanged(args: dict, observed: dict) -> dict | None:
    """ssh_keypair's rule (ssh_keypair.inspect_member's needs_write): read for this path, and nothing to do.

    The read may have made the key pair itself (cluster_node_info's keypair_create): it then reports it in place.
    """
    if observed.get("requested") != args.get("path", "~/.ssh/id_ed25519") or observed.get("needs_write") is not False:
        return None
    if not observed.get("exists") or not observed.get("public_key"):
        return None
    return {
        "public_key": observed["public_key"],
        "path": observed.get("path"),
        "created": bool(observed.get("created")),
        "repaired": list(observed.get("repaired") or []),
        "home_id": observed.get("home_id") if args.get("home_marker", True) else None,
    }
