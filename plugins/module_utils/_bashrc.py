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

import bisect
import re

from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import markers

CONDA_BEGIN = "# >>> conda initialize >>>"
CONDA_END = "# <<< conda initialize <<<"

# `$-`, `"$-"`, `${-}`, `"${-}"`: the shell's option letters; `i` when interactive.
_DASH = r'"?\$(?:-|\{-\})"?'
# PS1 tests: `$PS1`, `"$PS1"`, `${PS1}`, `${PS1-}`, `${PS1:-}`.
_PS1 = r'"?\$(?:PS1|\{PS1:?-?\})"?'
_TEST = (
    rf"(?:\[\[?\s*(?:-z\s+{_PS1}|{_DASH}\s*!=\s*\*i\*|!\s+{_DASH}\s*==?\s*\*i\*)\s*\]\]?"
    rf"|test\s+-z\s+{_PS1})"
)
_POSITIVE = rf"(?:\[\[?\s*(?:-n\s+{_PS1}|{_DASH}\s*==?\s*\*i\*)\s*\]\]?|test\s+-n\s+{_PS1})"
_RETURN = r"(?:return|exit)(?:\s+\d+)?\s*;?"
GUARD_LINE = re.compile(
    rf"^\s*(?:{_TEST}\s*&&\s*{_RETURN}|{_POSITIVE}\s*\|\|\s*{_RETURN}"
    rf"|if\s+{_TEST}\s*;\s*then\s+{_RETURN}\s*fi"
    rf"|case\s+{_DASH}\s+in\s+\*i\*\)\s*;;\s*\*\)\s*{_RETURN}\s*;;\s*esac)\s*(?:#.*)?$"
)
CASE_START = re.compile(rf"^\s*case\s+{_DASH}\s+in\s*(?:#.*)?$")
IF_START = re.compile(rf"^\s*if\s+{_TEST}\s*;?\s*(?:then)?\s*(?:#.*)?$")
RETURN_LINE = re.compile(rf"^\s*(?:\*\)\s*)?{_RETURN}\s*;?;?\s*(?:#.*)?$")
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


# ---------------------------------------------------------------- the file's structure, as bash reads it

_OPERATORS = sorted(
    [
        ";;&",
        ";;",
        ";&",
        ";",
        "&&",
        "||",
        "|&",
        "|",
        "&>>",
        "&>",
        "&",
        "((",
        "(",
        ")",
        "<<<",
        "<<-",
        "<<",
        "<(",
        ">(",
        ">>",
        ">&",
        "<&",
        "<>",
        ">|",
        "<",
        ">",
        "\n",
    ],
    key=len,
    reverse=True,
)
_REDIRECTS = ("&>>", "&>", ">>", ">&", "<&", "<>", ">|", "<", ">", "<<<")
_OPENERS = {"if": "fi", "case": "esac", "for": "done", "while": "done", "until": "done", "select": "done", "{": "}"}
_CLOSERS = ("fi", "esac", "done", "}")
# After these a command word may follow (reserved words are recognised there only).
_LEADERS = ("then", "else", "elif", "do", "!", "time")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\[[^]]*\])?\+?=")
_ARRAY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\[[^]]*\])?\+?=$")
_INERT = ("subshell", "cmdsub", "function")
_SPECIAL = set(" \t\n;&|()<>")


class _Frame:
    def __init__(self, kind, line, function=False):
        self.kind = kind
        self.line = line
        self.function = function
        self.case_mode = None  # in a case: "subject", "in", "pattern" or "body"


class ShellStructure:
    """Where each line of a bash file stands, read the way bash reads it, well enough for a ~/.bashrc.

    top[i]: line i starts a command outside any compound command, function body, heredoc, quoted text or continued
    line. exits: the lines of every return or exit that ends the reading of the file when it runs (one in a
    function body, a subshell or a command substitution does not). Raises BashrcError naming the line it cannot
    follow (an unmatched fi, done, esac or }, an unclosed quote or compound command).
    """

    def __init__(self, lines):
        self.text = "".join(lines)
        self.starts = [0]
        for line in lines:
            self.starts.append(self.starts[-1] + len(line))
        self.top = [False] * len(lines)
        self.exits = []
        self.stack = []
        self.heredocs = []
        self.pos = 0
        self.cmdpos = True
        self.continues = False
        self.pending_function = False
        self.expect = None  # "function name", "for name", "redirect" or "heredoc": what the next word is
        self.strip_tabs = False
        if lines:
            self.top[0] = True
        self._parse(None)
        if self.stack:
            frame = self.stack[-1]
            raise BashrcError(
                f"line {frame.line + 1} opens {'a function body' if frame.function else repr(frame.kind)}, which the "
                "file never closes"
            )

    # -- positions
    def line_of(self, pos):
        return max(0, bisect.bisect_right(self.starts, pos) - 1)

    def _fail(self, pos, what):
        raise BashrcError(
            f"line {self.line_of(pos) + 1}: {what} (this module reads the file's if/case/loop/function structure, "
            "heredocs and quotes to find its top-level interactive guard)"
        )

    # -- the command level
    def _parse(self, frame):
        """Read commands until frame (a command substitution's) is closed by its ')', or to the end."""
        while True:
            token, start, quoted = self._token()
            if token is None:
                if frame is not None:
                    self._fail(start, f"a $( ... ) opened on line {frame.line + 1} is never closed")
                return
            if self._command_token(token, start, quoted, frame):
                return

    def _command_token(self, token, start, quoted, frame):
        """Handle one token; True when it closed frame."""
        case = self.stack[-1] if self.stack and self.stack[-1].kind == "case" else None
        if token == "\n":
            self._newline()
            return False
        if case is not None and case.case_mode in ("subject", "in"):
            if case.case_mode == "subject":
                case.case_mode = "in"
            elif token == "in" and not quoted:
                case.case_mode = "pattern"
            else:
                self._fail(start, "'case' without 'in'")
            return False
        if case is not None and case.case_mode == "pattern":
            if token == "esac" and not quoted:
                self.stack.pop()
                self.cmdpos = False
            elif token == ")":
                case.case_mode = "body"
                self.cmdpos = True
            return False
        if token in ("<(", ">("):
            self._nested(start)
            self.expect = None if self.expect == "redirect" else self.expect
            self.cmdpos = False
            return False
        if self.expect == "redirect":
            self.expect = None
            return False
        if self.expect == "heredoc":
            self.expect = None
            self.heredocs.append(self._delimiter(token))
            return False
        if token in (";;", ";&", ";;&"):
            if case is None:
                self._fail(start, f"{token!r} outside a case clause")
            case.case_mode = "pattern"
            return False
        if token in _REDIRECTS:
            self.expect = "redirect"
            return False
        if token in ("<<", "<<-"):
            self.expect = "heredoc"
            self.strip_tabs = token == "<<-"
            return False
        if token in (";", "&", "&&", "||", "|", "|&"):
            self.cmdpos = True
            self.continues = token in ("&&", "||", "|", "|&")
            return False
        self.continues = False
        if token == "((":
            self._skip_arithmetic(start)
            self.cmdpos = False
            return False
        if token == "(":
            if self.cmdpos:
                self._push("subshell", start)
                return False
            self._fail(start, "an unexpected '('")
        if token == ")":
            if not self.stack or self.stack[-1].kind not in ("subshell", "cmdsub"):
                self._fail(start, "an unexpected ')'")
            closed = self.stack.pop()
            self.cmdpos = closed.kind == "subshell"
            return closed is frame
        self._word(token, start, quoted)
        return False

    def _word(self, word, start, quoted):
        if self.expect == "function name":
            self.expect = None
            self.pending_function = True
            self._maybe_parens()
            return
        if self.expect == "for name":
            self.expect = None
            return
        if not self.cmdpos:
            return
        if word in ("return", "exit") or quoted and re.sub(r"""['"\\]""", "", word) in ("return", "exit"):
            # A builtin, quoted or not: it ends the reading of the file unless a function or subshell runs it.
            if not any(f.kind in _INERT or f.function for f in self.stack):
                self.exits.append(self.line_of(start))
            self.cmdpos = False
            return
        if quoted:
            self.cmdpos = False
            return
        if word in _OPENERS:
            self._push(word if word not in ("while", "until", "select") else "for", start)
            if word == "case":
                self.stack[-1].case_mode = "subject"
                self.cmdpos = False
            elif word in ("for", "select"):
                at = self._skip_blanks(self.pos)
                if self.text.startswith("((", at):
                    self._skip_arithmetic(at)
                else:
                    self.expect = "for name"
                self.cmdpos = False
            else:
                self.cmdpos = True
            return
        if word in _CLOSERS:
            want = {"fi": "if", "esac": "case", "done": "for", "}": "{"}[word]
            if not self.stack or self.stack[-1].kind != want:
                self._fail(start, f"an unexpected {word!r}")
            self.stack.pop()
            self.cmdpos = True  # bash reads a reserved word right after a compound command: `done }`, `} fi`
            return
        if word in _LEADERS:
            self.cmdpos = True
            return
        if word == "function":
            self.expect = "function name"
            return
        if word == "[[":
            self._skip_test(start)
            self.cmdpos = False
            return
        if _ASSIGNMENT.match(word):
            return
        self.cmdpos = False
        # name() starts a function definition; its body is the compound command that follows.
        if self._maybe_parens():
            self.pending_function = True

    def _maybe_parens(self):
        at = self._skip_blanks(self.pos)
        if self.text.startswith("(", at):
            close = self._skip_blanks(at + 1)
            if self.text.startswith(")", close):
                self.pos = close + 1
                self.cmdpos = True
                return True
        return False

    def _push(self, kind, start):
        self.stack.append(_Frame(kind, self.line_of(start), self.pending_function))
        self.pending_function = False
        self.cmdpos = True

    def _newline(self):
        for delimiter, strip_tabs in self.heredocs:
            self._heredoc_body(delimiter, strip_tabs)
        self.heredocs = []
        line = self.line_of(self.pos)
        if self.pos < len(self.text) and line < len(self.top):
            self.top[line] = not self.stack and not self.continues and not self.pending_function and not self.expect
        if not self.continues:
            self.cmdpos = True

    def _heredoc_body(self, delimiter, strip_tabs):
        while self.pos < len(self.text):
            end = self.text.find("\n", self.pos)
            end = len(self.text) if end < 0 else end + 1
            body = self.text[self.pos : end].rstrip("\n").rstrip("\r")
            self.pos = end
            if (body.lstrip("\t") if strip_tabs else body) == delimiter:
                return
        # bash reads a heredoc that the file never closes to its end (with a warning): so does this reader.

    def _delimiter(self, word):
        return (re.sub(r"""\\(.)|['"]""", lambda m: m.group(1) or "", word), self.strip_tabs)

    def _nested(self, start):
        """Read a $( ... ), <( ... ) or >( ... ) to its ')': its commands, none of which ends the file."""
        frame = _Frame("cmdsub", self.line_of(start))
        self.stack.append(frame)
        saved = (self.cmdpos, self.continues, self.expect)
        self.cmdpos, self.continues, self.expect = True, False, None
        self._parse(frame)
        self.cmdpos, self.continues, self.expect = saved

    # -- tokens
    def _skip_blanks(self, pos):
        while pos < len(self.text):
            if self.text[pos] in " \t" or self.text.startswith("\r\n", pos):
                pos += 1  # a CR before the LF is the line end's (a CRLF file), not part of a word
            elif self.text.startswith("\\\n", pos):
                pos += 2
            elif self.text.startswith("\\\r\n", pos):
                pos += 3
            else:
                break
        return pos

    def _token(self):
        """The next token: (text, start, quoted) - an operator, "\\n", or a word - or (None, end, False)."""
        self.pos = self._skip_blanks(self.pos)
        if self.pos >= len(self.text):
            return None, self.pos, False
        start = self.pos
        if self.text[start] == "#":
            end = self.text.find("\n", start)
            self.pos = len(self.text) if end < 0 else end
            return self._token()
        for op in _OPERATORS:
            if self.text.startswith(op, start):
                self.pos = start + len(op)
                return op, start, False
        return self._read_word(start)

    def _read_word(self, start):
        """A word from start: (its raw text, start, whether any of it is quoted or escaped)."""
        text, pos, quoted = self.text, start, False
        while pos < len(text):
            c = text[pos]
            if c in _SPECIAL or c == "\r" and text.startswith("\n", pos + 1):
                # name=( ... ) and extglob @( ... ) belong to the word.
                if c == "(" and pos > start and (text[pos - 1] in "@!+*?" or _ARRAY.match(text[start:pos])):
                    pos = self._skip_group(pos)
                    continue
                break
            if c == "\\":
                pos += 2
                quoted = True
            elif c == "'":
                end = text.find("'", pos + 1)
                if end < 0:
                    self._fail(pos, "a quote (') that is never closed")
                pos, quoted = end + 1, True
            elif c == '"':
                pos, quoted = self._skip_double(pos), True
            elif c == "`":
                pos, quoted = self._skip_backquote(pos), True
            elif text.startswith("$'", pos):
                pos, quoted = self._skip_ansi(pos), True
            else:
                pos = self._skip_expansion(pos)
        self.pos = pos
        return text[start:pos], start, quoted

    def _skip_double(self, pos):
        text, opened = self.text, pos
        pos += 1
        while pos < len(text):
            c = text[pos]
            if c == "\\":
                pos += 2
            elif c == '"':
                return pos + 1
            elif c == "`":
                pos = self._skip_backquote(pos)
            else:
                pos = self._skip_expansion(pos)
        self._fail(opened, 'a quote (") that is never closed')

    def _skip_expansion(self, pos):
        """After the $((...)), $(...) or ${...} that starts at pos, in a word or in double quotes; else pos + 1."""
        text = self.text
        if text.startswith("$((", pos):
            return self._skip_arithmetic(pos + 1)
        if text.startswith("$(", pos):
            self.pos = pos + 2
            self._nested(pos)
            return self.pos
        if text.startswith("${", pos):
            return self._skip_braces(pos + 1)
        return pos + 1

    def _skip_backquote(self, pos):
        return self._skip_to_unescaped(pos, pos + 1, "`", "a backquote (`) that is never closed")

    def _skip_ansi(self, pos):
        return self._skip_to_unescaped(pos, pos + 2, "'", "a quote ($') that is never closed")

    def _skip_to_unescaped(self, pos, end, close, what):
        """From end to after the first close a backslash does not escape; opened at pos, for the message."""
        while end < len(self.text):
            if self.text[end] == "\\":
                end += 2
            elif self.text[end] == close:
                return end + 1
            else:
                end += 1
        self._fail(pos, what)

    def _skip_braces(self, pos):
        """From the { of ${...} to after its }, across quotes and nested expansions."""
        return self._skip_matched(pos, "{", "}", comments=False, what="a ${ that is never closed")

    def _skip_group(self, pos):
        """From a ( that belongs to a word (name=(...), @(...)) to after its ), across quotes."""
        return self._skip_matched(pos, "(", ")", comments=True, what="a ( that is never closed")

    def _skip_matched(self, pos, opener, closer, comments, what):
        """From opener at pos to after its matching closer, across quotes, $( ) and (with comments) # comments."""
        depth, end = 0, pos
        while end < len(self.text):
            c = self.text[end]
            if c == "\\":
                end += 2
                continue
            if c == opener:
                depth += 1
            elif c == closer:
                depth -= 1
                if depth == 0:
                    return end + 1
            elif c == "'":
                close = self.text.find("'", end + 1)
                end = close if close >= 0 else len(self.text)
            elif c == '"':
                end = self._skip_double(end) - 1
            elif opener == "{" and self.text.startswith("$(", end):
                self.pos = end + 2
                self._nested(end)
                end = self.pos - 1
            elif comments and c == "#" and (end == 0 or self.text[end - 1] in " \t\n"):
                close = self.text.find("\n", end)
                end = (close if close >= 0 else len(self.text)) - 1
            end += 1
        self._fail(pos, what)

    def _skip_arithmetic(self, pos):
        """From the (( of (( ... )) or $(( ... )) to after its )); sets self.pos there too."""
        self.pos = self._skip_group(pos)
        return self.pos

    def _skip_test(self, start):
        """Past the ]] of a [[ ... ]] (whose parentheses, < and > are its own)."""
        while True:
            token, at, quoted = self._token()
            if token is None:
                self._fail(start, "a [[ that is never closed by ]]")
            if token == "]]" and not quoted:
                return


def find_guard(lines):
    """Return (first, last) line indexes of the top-level interactive guard, or None when the block belongs on top.

    Only a guard at the file's top level counts: one in a function body, a heredoc, quoted text or a continued line
    is not a command that ends the file's reading, and one inside an if, case or loop ends it only sometimes. None
    also when something else may end the reading before the guard (a return or exit above it, even a conditional
    one): the top of the file is the one place that runs in every shell.

    Raises BashrcError for a top-level line that looks like an interactive test with return/exit but matches none
    of the known shapes (placing the block after an early return would make it useless, so it is not guessed), and
    for a file whose structure it cannot follow (naming the line).
    """
    shell = ShellStructure(lines)
    guard = None
    index = 0
    while index < len(lines):
        line = _bare(lines[index])
        code = line.strip()
        if not shell.top[index] or not code or code.startswith("#"):
            index += 1
            continue
        if GUARD_LINE.match(line):
            guard = index, index
            break
        for start, closer in ((CASE_START, "esac"), (IF_START, "fi")):
            if start.match(line):
                body = [_bare(lines[j]).strip() for j in range(index + 1, min(index + 8, len(lines)))]
                if closer in body:
                    end = body.index(closer)
                    inner = [b for b in body[:end] if b and not b.startswith("#")]
                    returns = [b for b in inner if RETURN_LINE.match(b)]
                    if returns and all(RETURN_LINE.match(b) or PASS_LINE.match(b) for b in inner):
                        guard = index, index + 1 + end
                        break
                raise BashrcError(
                    f"line {index + 1} starts an interactive test ({code!r}) whose body is not the plain 'return' "
                    "guard this module recognises"
                )
        if guard is not None:
            break
        if SUSPECT.search(code) and index in shell.exits:
            raise BashrcError(
                f"line {index + 1} ({code!r}) looks like an interactive guard but is not one of the shapes this module "
                "recognises "
                '(case $- in *i*) ;; *) return;; esac / [ -z "$PS1" ] && return / [[ $- != *i* ]] && return)'
            )
        index += 1
    if guard is None or any(line < guard[0] for line in shell.exits):
        return None
    return guard


def _find_pair(lines, begin, end, what):
    starts = [i for i, line in enumerate(lines) if _bare(line).strip() == begin]
    ends = [i for i, line in enumerate(lines) if _bare(line).strip() == end]
    if not starts and not ends:
        return None
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise BashrcError(
            f"the {what} markers are damaged ({len(starts)} '{begin}' and {len(ends)} '{end}' lines, "
            "expected one of each in order)"
        )
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
    ours = _find_pair(lines, begin, end, f"block '{name}'")
    if ours is not None:
        del lines[ours[0] : ours[1] + 1]
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
                raise BashrcError(f"the interactive guard (line {guard[0] + 1}) sits inside the conda initialize block")
            if conda[0] > guard[1]:
                moved = lines[conda[0] : conda[1] + 1]
                del lines[conda[0] : conda[1] + 1]
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
                result = result[: -len(ending)]
                break
    return result


def rewrite(before, exists, params):
    """(after, changed) for bashrc_block's params on a file holding before (exists: whether the file is there).

    The module runs it on the node; its action plugin runs it on the controller on the text the stage read, so the
    two cannot disagree on whether a write is needed. Raises BashrcError as place_block does.
    """
    present = params.get("state", "present") == "present"
    block = (params.get("block") or "").rstrip("\n").split("\n") if present else []
    block = [line.rstrip("\r") for line in block]
    after = place_block(
        before,
        params.get("marker") or "gtsfm.cluster.bashrc_init",
        block,
        params.get("move_conda_init", True),
        "present" if present else "absent",
    )
    return after, after != before or (not exists and present)
