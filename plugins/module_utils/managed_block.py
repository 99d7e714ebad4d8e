# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Content owned by the collection inside a user's file, between two marker lines.

Everything outside the markers is kept byte for byte (CRLF line ends, a
missing final newline, a symlinked file), so the collection can update or
remove its own lines without touching anything the user wrote. The probe that
reads a block and the module that writes it both go through this file, so they
always agree on what a block is.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import stat
import tempfile

MARKER = "# {mark} %s (managed by Ansible: edits here are overwritten)"

# Default block name of known_hosts_block; the known_hosts role's vars/main.yml
# spells the same name and a unit test holds the two equal.
KNOWN_HOSTS_BLOCK = "gtsfm.cluster.known_hosts"


class BlockError(Exception):
    """The file's markers are damaged, or the file cannot be used; the message says how to repair it."""


def markers(name):
    """The BEGIN and END marker lines for a block called name."""
    template = MARKER % name
    return template.replace("{mark}", "BEGIN"), template.replace("{mark}", "END")


def _file_in_the_way(path):
    """The nearest ancestor of path that exists but is not a directory, or None."""
    parent = os.path.dirname(path)
    while parent and parent != os.path.dirname(parent):
        if os.path.lexists(parent) and not os.path.isdir(parent):
            return parent
        parent = os.path.dirname(parent)
    return None


def not_a_directory(blocker, path=None):
    """The message for a file standing where a directory must be (optionally: what it keeps from being written)."""
    blocked = f", so {path} cannot be written" if path else ""
    return (
        f"{blocker} exists but is not a directory{blocked}. Fix: move that file away (for example 'mv {blocker} "
        f"{blocker}.old') so a directory can take its place, then re-run."
    )


def explain(path, exc):
    """A sentence naming the file, what the OS said and what to do."""
    reason = exc.strerror or str(exc)
    blocker = _file_in_the_way(path) if exc.errno == errno.ENOTDIR else None
    if blocker:
        return not_a_directory(blocker, path)
    fixes = {
        errno.ENOSPC: f"free some space on the filesystem that holds {os.path.dirname(path)} and re-run",
        errno.EDQUOT: "your disk quota is full: free some space in your home directory and re-run",
        errno.EACCES: f"make {path} and its directory writable by the remote user, then re-run",
        errno.EPERM: f"make {path} and its directory writable by the remote user, then re-run",
        errno.EROFS: "the filesystem is read-only: mount it read-write or choose another path",
        errno.ENOTDIR: f"a path component of {path} is a file, not a directory: move that file away and re-run",
    }
    fix = fixes.get(exc.errno, "check the file and its directory, then re-run")
    return f"{path}: {reason}. Fix: {fix}."


def check_regular(path):
    """Raise BlockError unless path is missing, a regular file, or a symlink to one.

    A FIFO (or a device) would block the reader forever; a directory cannot be edited.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return
        raise BlockError(explain(path, exc))
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a FIFO, socket or device)"
        raise BlockError(f"{path} is {kind}. Fix: move it away (the collection will create a regular file) and re-run.")


def read_text(path):
    """The file's text with its own line ends, or None if it does not exist.

    Any other error is raised, never taken for 'empty'; a file that is not a
    regular file is refused before it is opened.
    """
    check_regular(path)
    try:
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
            return handle.read()
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise BlockError(explain(path, exc))


# The most text a read reports whole (a ~/.bashrc is a few KiB): a writer on the controller decides from it.
TEXT_LIMIT = 256 * 1024


def read_block(path, name, with_text=False):
    """What a file holds of the block called name: {'exists', 'mode', 'block', 'exact', 'link', 'target'} (block None if
    absent or name is None; exact whether the block stands as replace_block writes it, line ends included).

    Lets a read-only probe tell the controller whether a write would change anything. with_text adds 'text', the
    whole file (None when larger than TEXT_LIMIT or not UTF-8), for writers that decide from the text itself.
    """
    text = read_text(path)
    found = {
        "exists": text is not None,
        "mode": None,
        "block": None,
        "exact": True,
        "link": os.path.islink(path),
        "target": os.path.realpath(path),
    }
    if with_text:
        found["text"] = None
    if text is None:
        return found
    found["mode"] = f"{os.stat(path).st_mode & 0o7777:04o}"
    if name is not None:
        try:
            found["block"] = split_block(text, name)[1]
        except BlockError as exc:
            raise BlockError(f"{path}: {exc}")
        if found["block"] is not None:
            found["exact"] = replace_block(text, name, found["block"]) == text
    if with_text and len(text) <= TEXT_LIMIT:
        try:
            text.encode("utf-8")
            found["text"] = text
        except UnicodeEncodeError:
            pass  # bytes that are not UTF-8 (kept as surrogates): only the module itself can judge them
    return found


def unchanged(found, lines, mode=None):
    """Whether apply_block(path, name, lines) and a file mode would change nothing, judged from read_block's
    result for that file (what the stage read); None when the read cannot tell, so the module must look itself.
    """
    if found is None or found.get("link") and not found.get("exists"):
        return None
    if mode is not None:
        wanted = new_file_mode(mode, default=None)
        if wanted is None:
            return None  # a symbolic mode: the module's file options judge it
        if not found.get("exists") or int(found.get("mode") or "0", 8) != wanted:
            return False
    if lines is None:
        return found.get("block") is None
    return bool(found.get("exists")) and found.get("block") == list(lines) and bool(found.get("exact"))


def split_block(text, name):
    """Return (before, block_lines, after) of text; block_lines is None when there is no block.

    Marker lines match whatever their line end (LF or CRLF) and trailing blanks,
    so a file converted to CRLF still holds exactly one block.
    """
    begin, end = markers(name)
    lines = text.splitlines(True)
    starts = [i for i, line in enumerate(lines) if line.rstrip() == begin]
    ends = [i for i, line in enumerate(lines) if line.rstrip() == end]
    if not starts and not ends:
        return text, None, ""
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise BlockError(
            f"the markers of block '{name}' are damaged ({len(starts)} BEGIN and {len(ends)} END lines, expected one "
            "of each in order): remove the lines between them and the markers themselves, then re-run"
        )
    first, last = starts[0], ends[0]
    block = [line.rstrip("\r\n") for line in lines[first + 1 : last]]
    return "".join(lines[:first]), block, "".join(lines[last + 1 :])


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


def write_text(path, text, new_mode=0o644):
    """Replace the file's content atomically; return the path actually written.

    A symlink is written through (its target is replaced, the link stays), an
    existing file keeps its mode, a new file gets new_mode. The temporary file
    sits beside the target and is removed on any failure, so a full disk leaves
    nothing behind. Errors raise BlockError naming the file and the fix.
    """
    target = os.path.realpath(path)
    directory = os.path.dirname(target)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise BlockError(explain(target, exc))
        mode = new_mode
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.gtsfm-", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, target)
        tmp = None
    except OSError as exc:
        raise BlockError(explain(target, exc))
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return target


def plan_block(path, name, lines):
    """What apply_block(path, name, lines) would write, reading only.

    Returns {'path', 'exists', 'before', 'text', 'changed'}: before is the block's old lines (None without one), text
    the file's new content. Raises BlockError naming the file for damaged markers or a file that is not regular.
    """
    before_text = read_text(path)
    exists = before_text is not None
    text = before_text or ""
    try:
        old = split_block(text, name)[1]
    except BlockError as exc:
        raise BlockError(f"{path}: {exc}")
    after_text = replace_block(text, name, lines)
    changed = after_text != text if exists else lines is not None
    return {"path": path, "exists": exists, "before": old, "text": after_text, "changed": changed}


def write_planned(plan, new_mode):
    """Write what plan_block planned, creating the file's directory (0700) if missing; return the path written."""
    directory = os.path.dirname(os.path.realpath(plan["path"]))
    if not os.path.isdir(directory):
        try:
            os.makedirs(directory, 0o700)
        except OSError as exc:
            raise BlockError(explain(directory, exc))
    return write_text(plan["path"], plan["text"], new_mode)


def apply_block(path, name, lines, new_mode, check_mode):
    """Make the file at path hold exactly lines in block name (None removes the block).

    Returns {'changed', 'path', 'before', 'after', 'exists'}: path is the file
    actually written (a symlink's target), before and after the block's lines.
    Nothing is written in check mode or when nothing would change.
    """
    plan = plan_block(path, name, lines)
    written = os.path.realpath(path)
    if plan["changed"] and not check_mode:
        written = write_planned(plan, new_mode)
    return {
        "changed": plan["changed"],
        "path": written,
        "before": plan["before"],
        "after": lines,
        "exists": plan["exists"],
    }


def new_file_mode(mode, default=0o644):
    """The mode a new file is created with: an octal mode given as text or number, else default.

    Symbolic modes (u=rw) are left to the module's file options, applied right after.
    """
    if isinstance(mode, int):
        return mode
    if isinstance(mode, str) and mode.isdigit():
        try:
            return int(mode, 8)
        except ValueError:
            return default
    return default


def exit_with_block(module, path, done, lines):
    """End a block-writing module: apply its file options to the file written, report the diff, exit.

    module is the AnsibleModule (created with add_file_common_args=True), done what apply_block returned.
    """
    changed = done["changed"]
    if os.path.exists(done["path"]):
        file_args = module.load_file_common_arguments(module.params, path=done["path"])
        changed = module.set_fs_attributes_if_different(file_args, changed)
    elif module.params.get("mode") is not None:
        changed = True
    result = dict(changed=changed, path=done["path"], lines=len(lines or []))
    if module._diff:
        result["diff"] = dict(
            before_header=path,
            after_header=path,
            before="\n".join(done["before"] or []) + "\n",
            after="\n".join(lines or []) + "\n",
        )
    module.exit_json(**result)
