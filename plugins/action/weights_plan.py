# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of gtsfm.cluster.weights_plan: the model_weights role's plan, made on the controller only.

An action plugin rather than a filter because the plan reads the controller's files (the lock file, and the sums of
the weight files the controller holds): a filter should be a function of its arguments. The reading is all this file
does; every decision is in plugins/plugin_utils/_weights_plan.py, as plain functions the unit tests call directly.
"""

from __future__ import annotations

import os
import random

from ansible_collections.gtsfm.cluster.plugins.module_utils._broadcast_hop import hash_file
from ansible_collections.gtsfm.cluster.plugins.plugin_utils._controller_action import ControllerAction
from ansible_collections.gtsfm.cluster.plugins.plugin_utils._weights import WeightsError, catalog, manifest
from ansible_collections.gtsfm.cluster.plugins.plugin_utils._weights_plan import check_nodes, check_settings, split_held


class ActionModule(ControllerAction):
    """Resolve the manifest and split it into files the controller holds and files to download."""

    ARGUMENT_SPEC = {
        "files": {"type": "list", "elements": "raw", "default": []},
        "sets": {"type": "list", "elements": "str", "default": []},
        "checkout_dir": {"type": "str", "required": True},
        "mirror": {"type": "str", "default": ""},
        "lock_file": {"type": "str", "required": True},
        "repin": {"type": "bool", "default": False},
        "controller_dir": {"type": "str", "default": ""},
        "fetch_on": {"type": "str", "default": "scheduler"},
        "retries": {"type": "int", "default": 5},
        "fetch_timeout": {"type": "int", "default": 14400},
        "poll_delay": {"type": "int", "default": 5},
        "nodes": {"type": "list", "elements": "dict", "required": True},
        "scheduler": {"type": "str", "required": True},
    }

    def act(self, args, task_vars):
        problems = check_settings(args) + check_nodes(args["nodes"], args["scheduler"], args["checkout_dir"])
        if problems:
            return dict(failed=True, msg=" ".join(problems))
        lock_file = os.path.expanduser(args["lock_file"])
        try:
            with open(lock_file, encoding="utf-8") as handle:
                lock_text = handle.read()
        except FileNotFoundError:
            lock_text = ""
        except OSError as exc:
            return dict(
                failed=True,
                msg=f"model_weights: cannot read the lock file {lock_file} ({exc}). Fix: make it readable, or remove "
                "it to pin every file again.",
            )
        home = next(n["home"] for n in args["nodes"] if n["name"] == args["scheduler"])
        try:
            entries = manifest(
                args["files"] or catalog(args["sets"]),
                args["checkout_dir"],
                home,
                args["mirror"],
                lock_text,
                args["lock_file"],
                args["repin"],
                args["controller_dir"],
            )
            held = {}
            for entry in entries:
                if entry["cache"] and os.path.isfile(entry["cache"]):
                    held[entry["cache"]] = {
                        "sha256": hash_file(entry["cache"]),
                        "size": os.path.getsize(entry["cache"]),
                    }
        except WeightsError as exc:
            return dict(failed=True, msg=f"model_weights: {exc}")
        except OSError as exc:
            return dict(
                failed=True,
                msg=f"model_weights: cannot read a file the controller holds ({exc}). Fix: make it readable, or remove "
                "it so that it is downloaded.",
            )
        have, download, problems = split_held(entries, held, args["lock_file"])
        if problems:
            return dict(failed=True, msg="\n".join(problems))
        return dict(
            changed=False,
            entries=entries,
            held=have,
            download=download,
            lock_text=lock_text,
            fetch_on=args["fetch_on"],
            run_id=str(random.SystemRandom().randint(0, 999999999999)),
        )
