# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every ~/.bashrc shape of issue 15: the block lands before the guard, every other line survives, re-runs are no-ops."""
from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.gtsfm.cluster.plugins.module_utils._bashrc import (
    BashrcError, find_guard, place_block, split_lines)
from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import markers

NAME = "gtsfm.cluster.bashrc_init"
BEGIN, END = markers(NAME)
BLOCK = ["export VIRTUAL_ENV=/opt/env", 'export PATH="/opt/env/bin:$PATH"']
DEBIAN = (Path(__file__).parent / "fixtures" / "debian_bookworm.bashrc").read_text()
CONDA = ("# >>> conda initialize >>>\n"
         "# !! Contents within this block are managed by 'conda init' !!\n"
         "__conda_setup=\"$('/home/u/miniforge3/bin/conda' 'shell.bash' 'hook' 2> /dev/null)\"\n"
         "if [ $? -eq 0 ]; then\n    eval \"$__conda_setup\"\nfi\nunset __conda_setup\n"
         "# <<< conda initialize <<<\n")


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
    assert after.replace(CONDA, "").replace(BEGIN + "\n" + "\n".join(BLOCK) + "\n" + END + "\n", "") == \
        text.replace(CONDA, "")


def test_conda_block_already_before_guard_stays():
    text = CONDA + "[[ $- != *i* ]] && return\nPS1='> '\n"
    after = check_idempotent(text)
    assert after.startswith(CONDA + BEGIN)


@pytest.mark.parametrize("guard", [
    "[[ $- != *i* ]] && return",
    '[[ "$-" != *i* ]] && return',
    "[ -z \"$PS1\" ] && return",
    "[ -z \"${PS1-}\" ] && return 0",
    "[ -z \"$PS1\" ] && exit",
    "[[ $- == *i* ]] || return",
    "test -z \"$PS1\" && return",
    "if [ -z \"$PS1\" ]; then return; fi",
    "case $- in *i*) ;; *) return;; esac",
    "  [[ $- != *i* ]] && return   # not interactive",
    "case $- in\n  *i*) ;;\n  *) return ;;\nesac",
    "case \"$-\" in\n*i*) ;;\n*) return\n;;\nesac",
    "if [[ $- != *i* ]]; then\n    return\nfi",
    "if [ -z \"$PS1\" ]\nthen\n  return\nfi",
])
def test_guard_variants_are_recognised(guard):
    text = "export A=1\n" + guard + "\nalias x=y\n"
    after = check_idempotent(text)
    assert block_before_guard(after, guard)
    assert after.index("export A=1") < after.index(BEGIN)
    assert find_guard(split_lines(text)) is not None


def test_arch_style_guard():
    text = "#\n# ~/.bashrc\n#\n\n# If not running interactively, don't do anything\n[[ $- != *i* ]] && return\n\n" \
           "alias ls='ls --color=auto'\nPS1='[\\u@\\h \\W]\\$ '\n"
    after = check_idempotent(text)
    assert after.index(END) < after.index("# If not running interactively")
    assert after.startswith("#\n# ~/.bashrc\n#\n\n" + BEGIN)


def test_no_guard_goes_on_top():
    text = "export A=1\nalias x=y\n"
    after = check_idempotent(text)
    assert after.startswith(BEGIN) and after.endswith(text)


def test_no_final_newline_stays_without():
    text = "export A=1\n[ -z \"$PS1\" ] && return\nalias x=y"
    after = check_idempotent(text)
    assert after.endswith("alias x=y") and block_before_guard(after, "[ -z")


def test_conda_block_last_without_final_newline():
    text = "[ -z \"$PS1\" ] && return\nalias x=y\n" + CONDA.rstrip("\n")
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


@pytest.mark.parametrize("text, message", [
    ("[ -n \"$PS1\" ] || { echo hi; return; }\n", "looks like an interactive guard"),
    ("if [[ $- != *i* ]]; then\n  echo bye\n  return\nfi\n", "whose body is not the plain 'return' guard"),
    (BEGIN + "\nx\n", "markers are damaged"),
    ("[ -z \"$PS1\" ] && return\n# >>> conda initialize >>>\nfoo\n", "conda initialize markers are damaged"),
    ("a\0b\n", "NUL bytes"),
])
def test_unsafe_files_are_refused(text, message):
    with pytest.raises(BashrcError, match=message):
        place_block(text, NAME, BLOCK)
