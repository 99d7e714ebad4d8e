# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to gtsfm.cluster (no API promise): place one marked block in a ~/.bashrc before its interactive guard.

Bash runs ``~/.bashrc`` for a non-interactive ``ssh host command`` too, but a stock file returns at its
interactive guard (``case $- in *i*) ;; *) return;; esac``), so whatever Dask's SSH workers need must come
before that guard. These functions take and return plain text: the file is split on ``\\n`` only, so every
other byte (CRLF line ends, a missing final newline, form feeds) is kept as it was.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import markers

CONDA_BEGIN = "# >>> conda initialize >>>"
CONDA_END = "# <<< conda initialize <<<"

# `$-`, `"$-"`, `${-}`, `"${-}"`: the shell's option letters; `i` when interactive.
_DASH = r'"?\$(?:-|\{-\})"?'
# PS1 tests: `$PS1`, `"$PS1"`, `${PS1}`, `${PS1-}`, `${PS1:-}`.
_PS1 = r'"?\$(?:PS1|\{PS1:?-?\})"?'
_TEST = (r"(?:\[\[?\s*(?:-z\s+%(ps1)s|%(dash)s\s*!=\s*\*i\*|!\s+%(dash)s\s*==?\s*\*i\*)\s*\]\]?"
         r"|test\s+-z\s+%(ps1)s)" % {"ps1": _PS1, "dash": _DASH})
_POSITIVE = (r"(?:\[\[?\s*(?:-n\s+%(ps1)s|%(dash)s\s*==?\s*\*i\*)\s*\]\]?|test\s+-n\s+%(ps1)s)"
             % {"ps1": _PS1, "dash": _DASH})
_RETURN = r"(?:return|exit)(?:\s+\d+)?\s*;?"
GUARD_LINE = re.compile(
    r"^\s*(?:%(test)s\s*&&\s*%(ret)s|%(pos)s\s*\|\|\s*%(ret)s"
    r"|if\s+%(test)s\s*;\s*then\s+%(ret)s\s*fi"
    r"|case\s+%(dash)s\s+in\s+\*i\*\)\s*;;\s*\*\)\s*%(ret)s\s*;;\s*esac)\s*(?:#.*)?$"
    % {"test": _TEST, "pos": _POSITIVE, "ret": _RETURN, "dash": _DASH})
CASE_START = re.compile(r"^\s*case\s+%s\s+in\s*(?:#.*)?$" % _DASH)
IF_START = re.compile(r"^\s*if\s+%s\s*;?\s*(?:then)?\s*(?:#.*)?$" % _TEST)
RETURN_LINE = re.compile(r"^\s*(?:\*\)\s*)?%s\s*;?;?\s*(?:#.*)?$" % _RETURN)
PASS_LINE = re.compile(r"^(?:\*i\*\)\s*;;|then|:|;;)\s*(?:#.*)?$")
# Anything that looks like an interactive test: a line we do not recognise but that mentions one of these
# together with return/exit is refused rather than guessed at.
SUSPECT = re.compile(r"(?:\$\{?-\}?|PS1).*\b(?:return|exit)\b|\b(?:return|exit)\b.*(?:\$\{?-\}?|PS1)")


class BashrcError(Exception):
    """The file cannot be edited safely; the message says why and what to do."""


def split_lines(text):
    """Lines of text, each with its own line end; split on LF only, so CR, form feeds etc. stay inside lines."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _bare(line):
    return line.rstrip("\r\n")


def line_end(lines):
    """The file's own line end: CRLF when most of its lines use it, else LF."""
    crlf = sum(1 for line in lines if line.endswith("\r\n"))
    lf = sum(1 for line in lines if line.endswith("\n")) - crlf
    return "\r\n" if crlf > lf else "\n"


def find_guard(lines):
    """Return (first, last) line indexes of the interactive guard, or None when the file has none.

    Raises BashrcError for a line that looks like an interactive test with return/exit but matches none of the
    known shapes: placing the block after an early return would make it useless, so it is not guessed.
    """
    index = 0
    while index < len(lines):
        line = _bare(lines[index])
        code = line.strip()
        if not code or code.startswith("#"):
            index += 1
            continue
        if GUARD_LINE.match(line):
            return index, index
        for start, closer in ((CASE_START, "esac"), (IF_START, "fi")):
            if start.match(line):
                body = [_bare(lines[j]).strip() for j in range(index + 1, min(index + 8, len(lines)))]
                if closer in body:
                    end = body.index(closer)
                    inner = [b for b in body[:end] if b and not b.startswith("#")]
                    returns = [b for b in inner if RETURN_LINE.match(b)]
                    if returns and all(RETURN_LINE.match(b) or PASS_LINE.match(b) for b in inner):
                        return index, index + 1 + end
                raise BashrcError(
                    "line %d starts an interactive test (%r) whose body is not the plain 'return' guard this module "
                    "recognises" % (index + 1, code))
        if SUSPECT.search(code):
            raise BashrcError(
                "line %d (%r) looks like an interactive guard but is not one of the shapes this module recognises "
                "(case $- in *i*) ;; *) return;; esac / [ -z \"$PS1\" ] && return / [[ $- != *i* ]] && return)"
                % (index + 1, code))
        index += 1
    return None


def _find_pair(lines, begin, end, what):
    starts = [i for i, line in enumerate(lines) if _bare(line).strip() == begin]
    ends = [i for i, line in enumerate(lines) if _bare(line).strip() == end]
    if not starts and not ends:
        return None
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise BashrcError("the %s markers are damaged (%d '%s' and %d '%s' lines, expected one of each in order)"
                          % (what, len(starts), begin, len(ends), end))
    return starts[0], ends[0]


def place_block(text, name, block_lines, move_conda=True, state="present"):
    """Return the new text: the block called name before the guard (or removed, state absent).

    Everything but the block (and a conda initialize block moved from after the guard to before it) is kept
    byte for byte. Running it on its own output returns that output unchanged.
    """
    if "\0" in text:
        raise BashrcError("it holds NUL bytes: not a shell script")
    lines = split_lines(text)
    had_final_newline = not lines or lines[-1].endswith("\n")
    eol = line_end(lines)
    begin, end = markers(name)
    ours = _find_pair(lines, begin, end, "block '%s'" % name)
    if ours is not None:
        del lines[ours[0]:ours[1] + 1]
    if state == "absent":
        return _join(lines, had_final_newline, text)

    guard = find_guard(lines)
    at = 0
    if guard is not None:
        at = guard[0]
        # The comment right above the guard ("# If not running interactively, ...") stays with it.
        while at > 0:
            above = _bare(lines[at - 1]).strip()
            if not above.startswith("#") or above in (CONDA_BEGIN, CONDA_END):
                break
            at -= 1
    moved = []
    if move_conda:
        conda = _find_pair(lines, CONDA_BEGIN, CONDA_END, "conda initialize")
        if conda is not None and guard is not None:
            if conda[0] < guard[0] <= conda[1]:
                raise BashrcError("the interactive guard (line %d) sits inside the conda initialize block"
                                  % (guard[0] + 1))
            if conda[0] > guard[1]:
                moved = lines[conda[0]:conda[1] + 1]
                del lines[conda[0]:conda[1] + 1]
                if not moved[-1].endswith("\n"):
                    moved[-1] += eol
    block = [line + eol for line in [begin] + list(block_lines) + [end]]
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += eol
    lines[at:at] = moved + block
    return _join(lines, had_final_newline, text)


def _join(lines, had_final_newline, original):
    result = "".join(lines)
    if not had_final_newline and original:
        # The file ended without a newline: keep it that way, whatever line now comes last.
        for ending in ("\r\n", "\n"):
            if result.endswith(ending):
                result = result[:-len(ending)]
                break
    return result
