"""What one ansible-runner run did, from its event stream: the one rule for what counts as a remote call.

The multihost tests assert on it (tests/multihost/conftest.py remote_calls) and benchmarks/ssh_mesh.py prints it;
both import it from here (tests/ on sys.path, as tests/http_origin.py is imported).
"""

from __future__ import annotations

import datetime

# Actions that run on the controller only: they never reach a node.
CONTROLLER_ACTIONS = frozenset(
    {
        "assert",
        "set_fact",
        "fail",
        "debug",
        "meta",
        "validate_argument_spec",
        "include_tasks",
        "import_tasks",
        "include_role",
        "import_role",
        "add_host",
        "group_by",
        "include_vars",
        "set_stats",
        "pause",
        "gtsfm.cluster.pack_tree",
    }
)
RESULT_EVENTS = ("runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped")
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _when(event: dict) -> float:
    return datetime.datetime.fromisoformat(event["created"]).timestamp()


def _is_remote(data: dict) -> bool:
    """True when the task ran a module on the node itself: not a controller action, not delegated to localhost,
    not a writer answered on the controller from the stage's read (decided_from: observed)."""
    if (data.get("res") or {}).get("decided_from") == "observed":
        return False
    for key in ("task_action", "resolved_action"):
        action = str(data.get(key) or "")
        for prefix in ("ansible.builtin.", "ansible.legacy."):
            action = action.removeprefix(prefix)
        if action in CONTROLLER_ACTIONS:
            return False
    delegated = (data.get("res") or {}).get("_ansible_delegated_vars") or {}
    if delegated:
        target = {str(delegated.get(k)) for k in ("ansible_delegated_host", "ansible_host")}
        if target & LOCAL_NAMES or delegated.get("ansible_connection") == "local":
            return False
    return True


def _invocations(data: dict) -> int:
    """Module runs behind one result: one, or one per item that ran for a loop."""
    items = (data.get("res") or {}).get("results")
    if isinstance(items, list):
        return sum(1 for item in items if isinstance(item, dict) and not item.get("skipped"))
    return 1


class PlayRecord:
    """What one ansible-runner run did, from its event stream."""

    def __init__(self, hosts: list[str]) -> None:
        self.per_host: dict[str, int] = {h: 0 for h in hosts}
        # The same counts by the role whose task ran them ("" for a play's own tasks).
        self.per_role: dict[str, dict[str, int]] = {}
        self.tasks: dict[str, dict] = {}
        self.first_play: float | None = None
        self.stats: dict = {}

    def handle(self, event: dict) -> bool:
        kind = event.get("event")
        data = event.get("event_data") or {}
        if kind == "playbook_on_play_start" and self.first_play is None:
            self.first_play = _when(event)
        elif kind == "playbook_on_task_start":
            self.tasks[data["task_uuid"]] = {
                "task": data.get("task"),
                "role": data.get("role"),
                "action": data.get("resolved_action") or data.get("task_action"),
                "start": _when(event),
                "end": _when(event),
                "remote": None,
                "ran": 0,
                "skipped": 0,
                "changed": 0,
                "max_host_s": 0.0,
            }
        elif kind in RESULT_EVENTS and data.get("task_uuid") in self.tasks:
            task = self.tasks[data["task_uuid"]]
            task["end"] = max(task["end"], _when(event))
            task["max_host_s"] = max(task["max_host_s"], float(data.get("duration") or 0.0))
            if kind == "runner_on_skipped":
                task["skipped"] += 1
            else:
                remote = _is_remote(data)
                task["remote"] = remote
                task["ran"] += 1
                task["changed"] += bool((data.get("res") or {}).get("changed"))
                # Only the bed's nodes count: a play on localhost runs on the controller.
                if remote and data.get("host") in self.per_host:
                    self.per_host[data["host"]] += _invocations(data)
                    role = self.per_role.setdefault(task["role"] or "", dict.fromkeys(self.per_host, 0))
                    role[data["host"]] += _invocations(data)
        elif kind == "playbook_on_stats":
            self.stats = data
        return True

    def task_rows(self) -> list[dict]:
        return [
            {
                "task": t["task"],
                "role": t["role"],
                "action": t["action"],
                "remote": t["remote"],
                "ran_on": t["ran"],
                "skipped_on": t["skipped"],
                "changed_on": t["changed"],
                "wall_s": round(t["end"] - t["start"], 3),
                "max_host_s": round(t["max_host_s"], 3),
            }
            for t in self.tasks.values()
        ]
