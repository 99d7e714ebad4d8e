# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of gtsfm.cluster.follow: waits in the controller, one cheap read per poll, progress lines."""

from __future__ import annotations

import time

from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.common.text.converters import to_text
from ansible.utils.display import Display

from ansible_collections.gtsfm.cluster.plugins.plugin_utils._controller_action import ControllerAction
from ansible_collections.gtsfm.cluster.plugins.plugin_utils._follow import Follower, FollowError, Step, shell_path

display = Display()

STEP_SPEC = {
    "label": {"type": "str", "required": True},
    "notice": {"type": "list", "elements": "str", "default": []},
    "notice_when": {"type": "str"},
    "status": {"type": "str"},
    "run_id": {"type": "str"},
    "job": {"type": "raw"},
    "log": {"type": "str"},
}
# Results of an async job's file that belong to the async wrapper, not to the module.
ASYNC_KEYS = ("ansible_job_id", "started", "finished", "results_file", "stdout_lines", "stderr_lines")


def _step(spec: dict, where: str) -> Step | None:
    """The step spec describes, or None for a start that was skipped (nothing runs, nothing to follow)."""
    job = spec.get("job")
    results_file = None
    if isinstance(job, dict) and job.get("skipped"):
        return None
    if job is not None:
        if not isinstance(job, dict) or not (job.get("results_file") or job.get("ansible_job_id")):
            raise FollowError(
                f"{where}.job must be the registered result of a task started with async and poll: 0 "
                f"(it holds ansible_job_id), got {job!r}. Fix: register the start and pass it."
            )
        results_file = job.get("results_file") or f"~/.ansible_async/{job['ansible_job_id']}"
    if not (spec.get("status") or results_file):
        raise FollowError(f"{where} needs status (a progress record) or job (an async start), or both. Fix: give one.")
    return Step(
        label=spec["label"],
        status=spec.get("status"),
        run_id=spec.get("run_id"),
        results_file=results_file,
        log=spec.get("log"),
        notice=list(spec.get("notice") or []),
        notice_when=spec.get("notice_when"),
    )


def _plain_result(result: dict | None) -> dict:
    out = dict(result or {})
    for key in ASYNC_KEYS:
        out.pop(key, None)
    return dict((k, v) for k, v in out.items() if not k.startswith("_ansible_"))


class ActionModule(ControllerAction):
    """Follow background steps on the task's host to their end."""

    ARGUMENT_SPEC = {
        "steps": {"type": "list", "elements": "dict", "options": STEP_SPEC},
        "label": {"type": "str"},
        "status": {"type": "str"},
        "run_id": {"type": "str"},
        "job": {"type": "raw"},
        "log": {"type": "str"},
        "notice": {"type": "list", "elements": "str", "default": []},
        "notice_when": {"type": "str"},
        "timeout": {"type": "float", "default": 86400.0},
        "poll": {"type": "float", "default": 2.0},
        "report_every": {"type": "float"},
        "unreachable_grace": {"type": "float", "default": 60.0},
        "cleanup": {"type": "bool", "default": True},
    }
    ARGUMENT_RULES = {"mutually_exclusive": [("steps", "label")], "required_one_of": [("steps", "label")]}

    def act(self, args, task_vars):
        # The line names the host the steps run on: the delegated one where the task is delegated.
        host = to_text(self._task.delegate_to or task_vars.get("inventory_hostname", "?"))
        try:
            if args["steps"] is not None:
                found = [_step(spec, f"follow: steps[{i}]") for i, spec in enumerate(args["steps"])]
            else:
                found = [_step(args, "follow")]
        except FollowError as exc:
            return {"failed": True, "msg": str(exc)}
        steps = [s for s in found if s is not None]
        if not steps:
            return {
                "skipped": True,
                "steps": [],
                "result": {},
                "polls": 0,
                "msg": "nothing was started: nothing to follow",
            }

        show = bool(task_vars.get("gtsfm_cluster_progress", True))
        every = (
            args["report_every"]
            if args["report_every"] is not None
            else float(task_vars.get("gtsfm_cluster_progress_every", 5))
        )
        follower = Follower(
            host=host,
            steps=steps,
            run=self._run_command,
            say=display.display if show else _quiet,
            timeout=args["timeout"],
            poll=args["poll"],
            report_every=every,
            unreachable_grace=args["unreachable_grace"],
        )
        started = time.monotonic()
        try:
            snaps = follower.follow()
        except FollowError as exc:
            return {"failed": True, "msg": str(exc), "polls": follower.polls}
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

        if args["cleanup"]:
            done_files = [s.results_file for s in steps if s.results_file]
            if done_files:
                self._run_command("rm -f -- " + " ".join(shell_path(p) for p in done_files))

        results = []
        for step, snap in zip(steps, snaps):
            out = _plain_result(snap.result)
            results.append({"label": step.label, "result": out, "record": snap.record or {}})
        failed = [r for r in results if r["result"].get("failed")]
        result = dict(
            steps=results,
            result=results[0]["result"] if len(results) == 1 else {},
            polls=follower.polls,
            seconds=round(time.monotonic() - started, 3),
            changed=any(r["result"].get("changed") for r in results),
        )
        if failed:
            result.update(
                failed=True, msg="; ".join(f"{r['label']}: {r['result'].get('msg') or 'failed'}" for r in failed)
            )
        return result

    def _run_command(self, command: str) -> str:
        try:
            res = self._low_level_execute_command(command, sudoable=False)
        except AnsibleConnectionFailure as exc:
            raise ConnectionError(to_text(exc)) from exc
        if res.get("rc") == 255:
            raise ConnectionError(to_text(res.get("stderr") or "ssh exited 255"))
        return to_text(res.get("stdout") or "")


def _quiet(_line: str) -> None:
    """Progress lines off (gtsfm_cluster_progress: false)."""
