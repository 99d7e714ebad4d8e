# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to gtsfm.cluster: several files' managed blocks in one module call (the module managed_blocks).

Each file by the rules of the writer it would have alone: a block of lines as managed_block writes it, a block of
host entries as known_hosts_block renders it (hashed lines that still match reused), both through managed_block.py's
plan_block and write_text, so each file is written atomically. Every file is read and planned before any is written:
a damaged marker or a file that is not a regular file stops the call with nothing written. A write that fails after
another file was written in full says which; no file is ever left half-written.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

from ansible_collections.gtsfm.cluster.plugins.module_utils.known_hosts import render_lines
from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import (
    BlockError,
    explain,
    new_file_mode,
    plan_block,
    read_text,
    split_block,
    write_planned,
)


def wanted_mode(block):
    """The block's file mode as a number, None when it sets none; BlockError for a mode that is not octal."""
    mode = block.get("mode")
    if mode is None:
        return None
    number = new_file_mode(mode, default=None)
    if number is None or not 0 <= number <= 0o7777:
        raise BlockError(
            f"{block['path']}: mode {mode!r} is not an octal file mode. Fix: give it as four octal digits, e.g. '0600'."
        )
    return number


def _lines(block, path):
    """The block's lines: its own, or its entries rendered against the block the file holds now."""
    if block.get("entries") is None:
        return list(block.get("lines") or [])
    text = read_text(path)
    try:
        old = split_block(text or "", block["marker"])[1]
    except BlockError as exc:
        raise BlockError(f"{path}: {exc}")
    try:
        return render_lines(block["entries"], bool(block.get("hash_hosts")), old)
    except (ValueError, KeyError, TypeError) as exc:
        raise BlockError(f"{path}: {exc}")


def _current_mode(path):
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def plan_blocks(blocks):
    """Read and plan every block, writing nothing: a list of plan_block's results with 'lines', 'mode' and
    'mode_changed' added. Raises BlockError naming the file for the first that cannot be written."""
    plans = []
    for block in blocks:
        path = os.path.abspath(os.path.expanduser(block["path"]))
        mode = wanted_mode(block)
        lines = _lines(block, path)
        plan = plan_block(path, block["marker"], lines)
        current = _current_mode(path) if plan["exists"] else None
        plan.update(
            given=block["path"],
            lines=lines,
            mode=mode,
            mode_changed=mode is not None and plan["exists"] and current != mode,
        )
        plans.append(plan)
    return plans


def apply_blocks(blocks, check_mode):
    """Make every file hold its block; return {path as given: {'changed', 'path', 'lines', 'before', 'after'}}.

    Nothing is written in check mode. A failure raises BlockError naming the file, and the files of this call
    already written in full, if any.
    """
    plans = plan_blocks(blocks)
    done = {}
    for plan in plans:
        written = os.path.realpath(plan["path"])
        try:
            if plan["changed"] and not check_mode:
                written = write_planned(plan, 0o644 if plan["mode"] is None else plan["mode"])
            if plan["mode_changed"] and not check_mode:
                try:
                    os.chmod(written, plan["mode"])
                except OSError as exc:
                    raise BlockError(explain(written, exc))
        except BlockError as exc:
            finished = [f"{d['path']} ({'changed' if d['changed'] else 'unchanged'})" for d in done.values()]
            whole = f" The files before it are whole: {', '.join(finished)}." if finished else ""
            raise BlockError(f"{exc}{whole} {plan['path']} is as it was.")
        done[plan["given"]] = {
            "changed": plan["changed"] or plan["mode_changed"],
            "path": written,
            "lines": len(plan["lines"]),
            "before": plan["before"],
            "after": plan["lines"],
        }
    return done
