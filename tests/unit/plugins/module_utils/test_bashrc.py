# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every ~/.bashrc shape of issue 15: the block lands before the guard, every other line survives, re-runs are
no-ops."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from ansible_collections.gtsfm.cluster.plugins.module_utils._bashrc import (
    BashrcError,
    find_guard,
    place_block,
    split_lines,
)
from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import markers

NAME = "gtsfm.cluster.bashrc_init"
BEGIN, END = markers(NAME)
BLOCK = ["export VIRTUAL_ENV=/opt/env", 'export PATH="/opt/env/bin:$PATH"']
DEBIAN = (Path(__file__).parent / "fixtures" / "debian_bookworm.bashrc").read_text()
CONDA = (
    "# >>> conda initialize >>>\n"
    "# !! Contents within this block are managed by 'conda init' !!\n"
    "__conda_setup=\"$('/home/u/miniforge3/bin/conda' 'shell.bash' 'hook' 2> /dev/null)\"\n"
    'if [ $? -eq 0 ]; then\n    eval "$__conda_setup"\nfi\nunset __conda_setup\n'
    "# <<< conda initialize <<<\n"
)


def lines_kept(before: str, after: str) -> bool:
    """Every line of before is in after, in order, once the block is taken out."""
    start, end = after.index(BEGIN), after.index(END) + len(END)
    rest = after[:start] + after[end:].lstrip("\r\n")
    return sorted(split_lines(rest)) == sorted(split_lines(before)) or rest == before


def block_before_guard(after: str, guard: str) -> bool:
    return after.index(END) < after.index(guard)


def check_idempotent(text: str) -> str:
    once = place_block(text, NAME, BLOCK)
    assert place_block(once, NAME, BLOCK) == once
    assert once.count(BEGIN) == 1
    return once


def test_debian_stock_block_before_guard_and_its_comment():
    after = check_idempotent(DEBIAN)
    assert after.replace(BEGIN + "\n" + "\n".join(BLOCK) + "\n" + END + "\n", "") == DEBIAN
    assert after.index(END) < after.index("# If not running interactively") < after.index("case $- in")


def test_ps1_guard_with_conda_block_after_it_moves_conda_before_guard():
    text = "# mine\nalias ll='ls -l'\n[ -z \"$PS1\" ] && return\nexport EDITOR=vim\n" + CONDA + "echo tail\n"
    after = check_idempotent(text)
    guard = after.index('[ -z "$PS1" ] && return')
    assert after.index("# >>> conda initialize >>>") < after.index(BEGIN) < guard
    assert after.index("# <<< conda initialize <<<") < guard
    assert after.count("__conda_setup=") == 1
    # Every other line is kept, in its order.
    assert after.replace(CONDA, "").replace(BEGIN + "\n" + "\n".join(BLOCK) + "\n" + END + "\n", "") == text.replace(
        CONDA, ""
    )


def test_conda_block_already_before_guard_stays():
    text = CONDA + "[[ $- != *i* ]] && return\nPS1='> '\n"
    after = check_idempotent(text)
    assert after.startswith(CONDA + BEGIN)


@pytest.mark.parametrize(
    "guard",
    [
        "[[ $- != *i* ]] && return",
        '[[ "$-" != *i* ]] && return',
        '[ -z "$PS1" ] && return',
        '[ -z "${PS1-}" ] && return 0',
        '[ -z "$PS1" ] && exit',
        "[[ $- == *i* ]] || return",
        'test -z "$PS1" && return',
        'if [ -z "$PS1" ]; then return; fi',
        "case $- in *i*) ;; *) return;; esac",
        "  [[ $- != *i* ]] && return   # not interactive",
        "case $- in\n  *i*) ;;\n  *) return ;;\nesac",
        'case "$-" in\n*i*) ;;\n*) return\n;;\nesac',
        "if [[ $- != *i* ]]; then\n    return\nfi",
        'if [ -z "$PS1" ]\nthen\n  return\nfi',
    ],
)
def test_guard_variants_are_recognised(guard):
    text = "export A=1\n" + guard + "\nalias x=y\n"
    after = check_idempotent(text)
    assert block_before_guard(after, guard)
    assert after.index("export A=1") < after.index(BEGIN)
    assert find_guard(split_lines(text)) is not None


def test_arch_style_guard():
    text = (
        "#\n# ~/.bashrc\n#\n\n# If not running interactively, don't do anything\n[[ $- != *i* ]] && return\n\n"
        "alias ls='ls --color=auto'\nPS1='[\\u@\\h \\W]\\$ '\n"
    )
    after = check_idempotent(text)
    assert after.index(END) < after.index("# If not running interactively")
    assert after.startswith("#\n# ~/.bashrc\n#\n\n" + BEGIN)


def test_no_guard_goes_on_top():
    text = "export A=1\nalias x=y\n"
    after = check_idempotent(text)
    assert after.startswith(BEGIN) and after.endswith(text)


def test_no_final_newline_stays_without():
    text = 'export A=1\n[ -z "$PS1" ] && return\nalias x=y'
    after = check_idempotent(text)
    assert after.endswith("alias x=y") and block_before_guard(after, "[ -z")


def test_conda_block_last_without_final_newline():
    text = '[ -z "$PS1" ] && return\nalias x=y\n' + CONDA.rstrip("\n")
    after = check_idempotent(text)
    assert after.endswith("alias x=y") and after.index("# <<< conda initialize <<<\n") < after.index(BEGIN)


def test_crlf_file_keeps_crlf_and_block_uses_it():
    text = "export A=1\r\n[[ $- != *i* ]] && return\r\nalias x=y\r\n"
    after = check_idempotent(text)
    assert "\r\n".join([BEGIN] + BLOCK + [END]) + "\r\n" in after
    assert after.count("\n") == after.count("\r\n")
    assert after.endswith("[[ $- != *i* ]] && return\r\nalias x=y\r\n")


def test_other_bytes_are_kept():
    text = "a=\x0c1  \t\nb='caf\udce9'\n[ -z \"$PS1\" ] && return\n"
    after = check_idempotent(text)
    assert after.startswith("a=\x0c1  \t\nb='caf\udce9'\n" + BEGIN)


def test_empty_file_gets_only_the_block():
    assert place_block("", NAME, BLOCK) == "\n".join([BEGIN] + BLOCK + [END]) + "\n"


def test_block_updated_in_place_never_duplicated():
    once = place_block(DEBIAN, NAME, BLOCK)
    twice = place_block(once, NAME, ["export NEW=1"])
    assert twice.count(BEGIN) == 1 and "export NEW=1" in twice and BLOCK[0] not in twice


def test_block_found_after_the_guard_is_moved_before_it():
    text = "[[ $- != *i* ]] && return\n" + BEGIN + "\nold\n" + END + "\nalias x=y\n"
    after = check_idempotent(text)
    assert after.startswith(BEGIN) and "old" not in after and after.endswith("[[ $- != *i* ]] && return\nalias x=y\n")


def test_absent_removes_only_the_block():
    once = place_block(DEBIAN, NAME, BLOCK)
    assert place_block(once, NAME, [], state="absent") == DEBIAN
    assert place_block(DEBIAN, NAME, [], state="absent") == DEBIAN


@pytest.mark.parametrize(
    "text, message",
    [
        ('[ -n "$PS1" ] || { echo hi; return; }\n', "looks like an interactive guard"),
        ("if [[ $- != *i* ]]; then\n  echo bye\n  return\nfi\n", "whose body is not the plain 'return' guard"),
        (BEGIN + "\nx\n", "markers are damaged"),
        ('[ -z "$PS1" ] && return\n# >>> conda initialize >>>\nfoo\n', "conda initialize markers are damaged"),
        ("a\0b\n", "NUL bytes"),
    ],
)
def test_unsafe_files_are_refused(text, message):
    with pytest.raises(BashrcError, match=message):
        place_block(text, NAME, BLOCK)


def sourced_env(tmp_path, text: str) -> str:
    """VIRTUAL_ENV after a non-interactive bash sources the file (as for Dask's `ssh host command`)."""
    path = tmp_path / "bashrc"
    path.write_text(text)
    syntax = subprocess.run(["bash", "-O", "extglob", "-n", str(path)], check=False)
    assert syntax.returncode == 0, "not valid bash: " + text
    out = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", '. "$1"; echo "env=$VIRTUAL_ENV"', "bash", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ["PATH"]},
    )
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


GUARD = "[[ $- != *i* ]] && return\n"
# Guard-shaped lines that are not the file's guard: in a function body, a heredoc, a string, a continued line, a
# conditional, a subshell. Each case: the text, and the text the block must come right before (None: the top).
NOT_THE_GUARD = {
    "function body": ('f() {\n  [ -z "$PS1" ] && return\n  echo f\n}\n' + GUARD + "alias x=y\n", GUARD),
    "function keyword, body on the next line": (
        "function f\n{\n  case $- in *i*) ;; *) return;; esac\n}\n" + GUARD,
        GUARD,
    ),
    "heredoc": ("cat > /dev/null <<'EOF'\ncase $- in\n  *i*) ;;\n  *) return;;\nesac\nEOF\n" + GUARD, GUARD),
    "heredoc with tabs": ('cat > /dev/null <<-EOF\n\t[ -z "$PS1" ] && return\n\tEOF\n' + GUARD, GUARD),
    "multi-line string": ("MSG='\n[ -z \"$PS1\" ] && return\n'\n" + GUARD, GUARD),
    "continued line": ('echo not a guard: \\\n[ -z "$PS1" ] \\&\\& return\n' + GUARD, GUARD),
    "command substitution": ('x=$(\n  [ -z "$PS1" ] && exit\n  echo y)\n' + GUARD, GUARD),
    "false conditional only": ('if [ -f /nonexistent/.work ]; then\n  [ -z "$PS1" ] && return\nfi\nalias x=y\n', None),
    "true conditional before the guard": ('if [ -n "$HOME" ]; then\n  [[ $- != *i* ]] && return\nfi\n' + GUARD, None),
    "another early return above the guard": ("[ -f /etc/hostname ] && return\n" + GUARD, None),
    "guard only in a function": ('quiet() {\n  [ -z "$PS1" ] && return\n}\nalias x=y\n', None),
    "subshell": ('( [ -z "$PS1" ] && exit )\n' + GUARD, GUARD),
    "loop": ('for d in /nonexistent; do\n  [ -z "$PS1" ] && return\ndone\n' + GUARD, None),
    "case clause": ('case "$TERM" in\n  dumb) [ -z "$PS1" ] && return ;;\nesac\n' + GUARD, None),
}


@pytest.mark.parametrize("case", sorted(NOT_THE_GUARD))
def test_only_a_top_level_guard_counts_and_a_non_interactive_shell_gets_the_env(tmp_path, case):
    text, before = NOT_THE_GUARD[case]
    after = check_idempotent(text)
    block = "\n".join([BEGIN] + BLOCK + [END]) + "\n"
    if before is None:
        assert after == block + text
    else:
        assert after.replace(block, "") == text and after.index(block) + len(block) == text.rindex(before) + len(block)
    assert sourced_env(tmp_path, after) == "env=/opt/env"


def test_debian_stock_file_still_gets_the_block_before_its_guard_and_works(tmp_path):
    after = check_idempotent(DEBIAN)
    assert after.index(END) < after.index("case $- in")
    assert sourced_env(tmp_path, after) == "env=/opt/env"


@pytest.mark.parametrize(
    "text",
    [
        # Shapes the reader must follow without losing the top level (each ends with the real guard).
        'a=(one "two three" $(echo four))\n',
        "shopt -s extglob\ncase x in\n  +([0-9])) echo n;;\n  (y|z) echo yz ;;\n  *) ;;\nesac\n",
        '[[ $PS1 =~ ^(a|b)$ && -n ${x:-"}"} ]] && echo ok\n',
        "for ((i = 0; i < 2; i++)); do echo $((i * (2 + 1))); done\n",
        "while read -r line; do echo \"$line\"; done < <(printf 'a\\nb\\n')\n",
        'echo `echo hi` $\'it\\\'s\' "nested \\"$(echo "q")\\"" # a comment with ) and fi\n',
        "if true; then :; elif false; then :; else :; fi >/dev/null 2>&1\n",
        "{ echo grouped; } | cat\nf () ( echo subshell body )\n",
        "x=1 y=2 eval 'echo $x'\n! true || echo no\n",
        "cat <<EOF | cat\n$(echo inside)\nEOF\n",
    ],
)
def test_valid_shapes_keep_the_top_level(tmp_path, text):
    text = text + GUARD
    lines = split_lines(text)
    assert find_guard(lines) == (len(lines) - 1, len(lines) - 1)
    assert sourced_env(tmp_path, check_idempotent(text)) == "env=/opt/env"


@pytest.mark.parametrize(
    "text, message",
    [
        ("if true; then\n  echo\n", "line 1 opens 'if', which the file never closes"),
        ("echo a\nfi\n" + GUARD, "line 2: an unexpected 'fi'"),
        ("f() {\n  echo\n" + GUARD, "line 1 opens a function body"),
        ("echo 'open\n" + GUARD, "line 1: a quote (') that is never closed"),
        ('echo "open\n' + GUARD, 'line 1: a quote (") that is never closed'),
        ("echo $(date\n" + GUARD, "a $( ... ) opened on line 1 is never closed"),
    ],
)
def test_a_file_whose_structure_cannot_be_followed_is_refused_naming_the_line(text, message):
    with pytest.raises(BashrcError, match=re.escape(message)):
        place_block(text, NAME, BLOCK)
