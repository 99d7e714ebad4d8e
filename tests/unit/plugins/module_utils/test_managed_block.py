# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import (
    BlockError,
    markers,
    read_block,
    replace_block,
    split_block,
)

BEGIN, END = markers("t")


def test_block_is_appended_and_the_rest_kept_byte_for_byte():
    text = "# mine\nssh-ed25519 AAAA me@laptop\n"
    out = replace_block(text, "t", ["a", "b"])
    assert out == text + BEGIN + "\na\nb\n" + END + "\n"


def test_missing_final_newline_gets_one_before_the_block():
    out = replace_block("line", "t", ["a"])
    assert out.startswith("line\n" + BEGIN)


def test_block_is_replaced_in_place():
    text = "top\n" + BEGIN + "\nold\n" + END + "\nbottom\r\n"
    out = replace_block(text, "t", ["new"])
    assert out == "top\n" + BEGIN + "\nnew\n" + END + "\nbottom\r\n"
    assert split_block(out, "t") == ("top\n", ["new"], "bottom\r\n")


def test_block_removed_and_untouched_when_absent():
    text = "top\n" + BEGIN + "\nold\n" + END + "\nbottom\n"
    assert replace_block(text, "t", None) == "top\nbottom\n"
    assert replace_block("top\n", "t", None) == "top\n"


def test_unchanged_block_gives_identical_text():
    text = replace_block("x\n", "t", ["a"])
    assert replace_block(text, "t", ["a"]) == text


@pytest.mark.parametrize("text", [BEGIN + "\n", END + "\n" + BEGIN + "\n", BEGIN + "\n" + BEGIN + "\n" + END + "\n"])
def test_damaged_markers_are_refused_with_a_fix(text):
    with pytest.raises(BlockError, match="markers of block 't' are damaged.*remove the lines"):
        replace_block(text, "t", ["a"])


def test_markers_are_the_ones_blockinfile_writes():
    # blockinfile with marker="# {mark} t (managed by Ansible: edits here are overwritten)"
    assert (BEGIN, END) == (
        "# BEGIN t (managed by Ansible: edits here are overwritten)",
        "# END t (managed by Ansible: edits here are overwritten)",
    )


def test_read_block_reports_file_mode_and_block(tmp_path):
    path = tmp_path / "authorized_keys"
    assert read_block(str(path), "t") == {
        "exists": False,
        "mode": None,
        "block": None,
        "exact": True,
        "link": False,
        "target": str(path),
    }
    path.write_text("mine\n")
    path.chmod(0o644)
    assert read_block(str(path), "t") == {
        "exists": True,
        "mode": "0644",
        "block": None,
        "exact": True,
        "link": False,
        "target": str(path),
    }
    path.write_text(replace_block("mine\n", "t", ["a", "b"]))
    assert read_block(str(path), "t")["block"] == ["a", "b"]
