# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Content owned by the collection inside a user's file, between two marker lines.

Everything outside the markers is kept byte for byte, so the collection can
update or remove its own lines without touching anything the user wrote.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os

MARKER = "# {mark} %s (managed by Ansible: edits here are overwritten)"


class BlockError(Exception):
    """The file's markers are damaged; the message says how to repair them."""


def markers(name):
    """The BEGIN and END marker lines for a block called name.

    The same lines ansible.builtin.blockinfile writes with marker=MARKER % name,
    so blocks written by either are read by both.
    """
    template = MARKER % name
    return template.replace("{mark}", "BEGIN"), template.replace("{mark}", "END")


def read_text(path):
    """The file's text, or None if it does not exist; any other error is raised, never taken for 'empty'."""
    try:
        with open(path) as handle:
            return handle.read()
    except IOError as exc:
        if exc.errno != errno.ENOENT:
            raise
        return None


def read_block(path, name):
    """What a file holds of the block called name: {'exists', 'mode', 'block'} (block None if absent).

    Lets a read-only probe tell the controller whether a write would change anything.
    """
    text = read_text(path)
    if text is None:
        return {"exists": False, "mode": None, "block": None}
    mode = "%04o" % (os.stat(path).st_mode & 0o7777)
    try:
        block = split_block(text, name)[1]
    except BlockError as exc:
        raise BlockError("%s: %s" % (path, exc))
    return {"exists": True, "mode": mode, "block": block}


def split_block(text, name):
    """Return (before, block_lines, after) of text; block_lines is None when there is no block."""
    begin, end = markers(name)
    lines = text.splitlines(True)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\r\n") == begin]
    ends = [i for i, line in enumerate(lines) if line.rstrip("\r\n") == end]
    if not starts and not ends:
        return text, None, ""
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise BlockError(
            "the markers of block '%s' are damaged (%d BEGIN and %d END lines, expected one of each in order): "
            "remove the lines between them and the markers themselves, then re-run" % (name, len(starts), len(ends)))
    first, last = starts[0], ends[0]
    block = [line.rstrip("\r\n") for line in lines[first + 1:last]]
    return "".join(lines[:first]), block, "".join(lines[last + 1:])


def replace_block(text, name, block_lines):
    """Return text with the block called name holding exactly block_lines (None removes the block)."""
    before, old, after = split_block(text, name)
    if block_lines is None:
        return before + after if old is not None else text
    begin, end = markers(name)
    block = "".join(line + "\n" for line in [begin] + list(block_lines) + [end])
    if old is None and before and not before.endswith("\n"):
        before += "\n"
    return before + block + after
