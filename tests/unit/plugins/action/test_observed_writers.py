"""The block writers' action plugins as ansible-playbook runs them (connection local): the stage's read of a file,
passed as `observed`, answers a write that would change nothing without running the module; anything else runs it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from localhost_play import run_localhost  # tests/, put on sys.path by conftest.py

from ansible_collections.gtsfm.cluster.plugins.module_utils._bashrc import rewrite
from ansible_collections.gtsfm.cluster.plugins.module_utils.managed_block import read_block, replace_block, unchanged

ROOT = Path(__file__).resolve().parents[4]
BLOCK = 'export PATH="$HOME/env/bin:$PATH"'


def play(tmp_path: Path, tasks: str) -> list[dict]:
    """Run the tasks on localhost; the writer's registered result (its last task keeps it in result.json)."""
    book = tmp_path / "play.yml"
    book.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n" + tasks)
    out = run_localhost(book)
    assert out.returncode == 0, out.stdout + out.stderr
    return [json.loads((tmp_path / "result.json").read_text())]


def read_then_write(path: Path, writer: str, args: str, text: bool = False, marker: str | None = "t") -> str:
    entry = f"{{path: {str(path)!r}" + (f", marker: {marker}" if marker else "")
    entry += (", text: true" if text else "") + "}"
    return f"""
    - name: Read
      gtsfm.cluster.cluster_node_info:
        ssh_dir: {str(path.parent)!r}
        host_key_types: []
        files: [{entry}]
      register: read
    - name: Write
      {writer}:
        path: {str(path)!r}
{args}
        observed: "{{{{ read.files[{str(path)!r}] }}}}"
      register: wrote
    - name: Keep the writer's result
      ansible.builtin.copy:
        content: "{{{{ wrote | to_json }}}}"
        dest: {str(path.parent / "result.json")!r}
        mode: "0600"
"""


@pytest.mark.parametrize(
    "writer,args,text,marker",
    [
        ("gtsfm.cluster.managed_block", "        marker: t\n        lines: [a, b]\n        mode: '0600'", False, "t"),
        (
            "gtsfm.cluster.known_hosts_block",
            "        marker: t\n        hash_hosts: true\n        entries: [{names: [node1], keys: ['ssh-ed25519 "
            "AAAAC3Nz']}]",
            False,
            "t",
        ),
        ("gtsfm.cluster.bashrc_block", f"        block: {BLOCK!r}", True, None),
    ],
)
def test_a_write_the_read_shows_done_makes_no_remote_call(tmp_path, writer, args, text, marker):
    path = tmp_path / "file"
    path.write_text('# mine\n[ -z "$PS1" ] && return\n')
    task = read_then_write(path, writer, args, text, marker)
    first, second = play(tmp_path, task) + play(tmp_path, task)
    assert first["changed"] and "decided_from" not in first, first
    assert second == {**second, "changed": False, "decided_from": "observed"}, second
    assert path.read_text().startswith("# mine\n") or writer.endswith("bashrc_block")


def test_a_block_the_user_edited_since_the_last_run_is_written_again(tmp_path):
    path = tmp_path / "authorized_keys"
    path.write_text(replace_block("", "t", ["a", "evil"]))
    task = read_then_write(path, "gtsfm.cluster.managed_block", "        marker: t\n        lines: [a]")
    (result,) = play(tmp_path, task)
    assert result["changed"] and "decided_from" not in result
    assert read_block(str(path), "t")["block"] == ["a"]


def test_another_file_option_the_read_does_not_report_runs_the_module(tmp_path):
    path = tmp_path / "authorized_keys"
    path.write_text(replace_block("", "t", ["a"]))
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True, check=True).stdout.strip()
    args = f"        marker: t\n        lines: [a]\n        group: {group}"
    task = read_then_write(path, "gtsfm.cluster.managed_block", args)
    (result,) = play(tmp_path, task)
    assert "decided_from" not in result and not result["changed"]


def _found(tmp_path, text, name="t", mode=0o600):
    path = tmp_path / f"f{len(list(tmp_path.iterdir()))}"
    if text is not None:
        path.write_text(text, newline="")
        path.chmod(mode)
    return read_block(str(path), name)


def test_unchanged_follows_apply_block_rule(tmp_path):
    block = replace_block("mine\n", "t", ["a"])
    assert unchanged(_found(tmp_path, block), ["a"]) is True
    assert unchanged(_found(tmp_path, block), ["a", "b"]) is False
    assert unchanged(_found(tmp_path, block), ["a"], "0600") is True
    assert unchanged(_found(tmp_path, block, mode=0o644), ["a"], "0600") is False
    assert unchanged(_found(tmp_path, block), ["a"], "u=rw") is None  # symbolic: the module judges
    # A block with CRLF line ends reads as the same lines, but the module rewrites it with LF.
    assert unchanged(_found(tmp_path, block.replace("\n", "\r\n")), ["a"]) is False
    assert unchanged(_found(tmp_path, None), None) is True
    assert unchanged(_found(tmp_path, None), []) is False  # an empty block still creates the file
    assert unchanged(_found(tmp_path, "mine\n"), None) is True
    assert unchanged(None, ["a"]) is None


def test_bashrc_rewrite_is_what_the_module_and_its_action_both_judge_by():
    after, changed = rewrite("", False, {"block": BLOCK})
    assert changed and BLOCK in after
    assert rewrite(after, True, {"block": BLOCK}) == (after, False)
    assert rewrite(after, True, {"block": BLOCK, "state": "absent"})[1]
    assert rewrite("", False, {"state": "absent"}) == ("", False)
