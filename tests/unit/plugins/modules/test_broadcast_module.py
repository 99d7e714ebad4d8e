# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The broadcast module's own checks, without a bed."""

from __future__ import annotations

import json

import pytest

from ansible_collections.gtsfm.cluster.plugins.modules import broadcast


@pytest.mark.parametrize(
    "args, message",
    [
        (dict(buffer_size=10), "broadcast: buffer_size must be between 4096 and 67108864, got 10."),
        (dict(timeout=1), "broadcast: timeout must be between 5 and 86400, got 1."),
        (dict(ssh_args=["-o", "StrictHostKeyChecking=no"]), "ssh_args may not weaken host key checking"),
        (dict(ssh_args=["-oUserKnownHostsFile=/dev/null"]), "ssh_args may not weaken host key checking"),
        (dict(hosts=["node2", "-oProxyCommand=x"]), "hosts holds names ssh cannot take"),
        (dict(path="relative/file"), "broadcast: path must be absolute"),
        (dict(exclude=["*.pyc"]), "broadcast: exclude applies to a directory tree, but "),
    ],
)
def test_bad_input_gets_one_message(tmp_path, run_module, args, message):
    source = tmp_path / "data"
    source.write_bytes(b"x")
    failed, result = run_module(broadcast.main, dict(dict(path=str(source), hosts=["node2"]), **args))
    assert failed and message in result["msg"]


def test_no_targets_sends_nothing_and_reports_the_source(tmp_path, run_module):
    source = tmp_path / "data"
    source.write_bytes(b"payload")
    failed, result = run_module(
        broadcast.main, dict(path=str(source), hosts=[], status_file=str(tmp_path / "status.json"))
    )
    assert not failed and result["changed"] is False and result["received"] == [] and result["size"] == 7
    assert result["digest"].startswith("sha256:") and result["kind"] == "file"
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["finished"] is True and status["phase"] == "done"


def test_the_hop_program_is_shipped_whole():
    text = broadcast._hop_source()
    text = text.decode() if isinstance(text, bytes) else text
    assert "def receive(" in text and text.rstrip().endswith("raise SystemExit(main(sys.argv))")


def test_a_bad_exclude_pattern_is_named(tmp_path, run_module):
    failed, result = run_module(broadcast.main, dict(path=str(tmp_path), hosts=["node2"], exclude=["/cache/", "../x"]))
    assert failed and result["msg"] == (
        "broadcast: exclude pattern '../x': '.', '..' and empty components are not "
        "allowed; give the path as it is below the tree's top."
    )
