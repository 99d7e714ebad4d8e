"""fetch_verified and progress_info as Ansible runs them: arguments, results, check mode, clear failures."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
from ansible.module_utils import basic
from ansible.release import __version__ as ansible_version

from ansible_collections.gtsfm.cluster.plugins.modules import fetch_verified, progress_info

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from http_origin import Origin  # noqa: E402  pylint: disable=wrong-import-position
from module_args import patch_module_args  # noqa: E402  pylint: disable=wrong-import-position

# ansible-core 2.21 adds the invocation to a result only when asked (as -v does); earlier cores always do, and
# refuse the option.
INJECT_INVOCATION = (
    {"_ansible_inject_invocation": True} if tuple(int(p) for p in ansible_version.split(".")[:2]) >= (2, 21) else {}
)
DATA = b"weights" * 1000
SUM = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def origin(tmp_path):
    with Origin(tmp_path / "origin") as server:
        server.put("m.pth", DATA)
        yield server


def test_fetch_then_noop_with_mode(run_module, origin, tmp_path):
    dest = tmp_path / "w" / "m.pth"
    args = {
        "url": origin.url("m.pth"),
        "dest": str(dest),
        "sha256": SUM,
        "mode": "0640",
        "status_path": str(tmp_path / "s.json"),
    }
    failed, res = run_module(fetch_verified.main, args)
    assert not failed and res["changed"] and res["fetched"] and oct(dest.stat().st_mode & 0o777) == "0o640"
    failed, res = run_module(fetch_verified.main, args)
    assert not failed and not res["changed"] and res["requests"] == 0
    failed, res = run_module(progress_info.main, {"path": str(tmp_path / "s.json")})
    assert not failed and res["finished"] and not res["record"]["failed"]
    assert res["record"]["done"] == res["record"]["total"] == dest.stat().st_size


def test_check_mode_reports_a_download_without_one(run_module, origin, tmp_path):
    dest = tmp_path / "m.pth"
    failed, res = run_module(
        fetch_verified.main, {"url": origin.url("m.pth"), "dest": str(dest), "_ansible_check_mode": True}
    )
    assert not failed and res["changed"] and not dest.exists() and origin.requests == []


def test_mismatch_fails_with_one_message(run_module, origin, tmp_path):
    dest = tmp_path / "m.pth"
    failed, res = run_module(fetch_verified.main, {"url": origin.url("m.pth"), "dest": str(dest), "sha256": "f" * 64})
    assert failed and res["msg"] == (
        f"fetch_verified: {dest}: sha256 mismatch for {origin.url('m.pth')}: expected {'f' * 64}, got {SUM}. Nothing "
        f"was installed at {dest}. Fix: if the "
        "origin changed this file on purpose, update the sum (or re-pin); otherwise do not trust this origin."
    )
    assert not dest.exists()


def test_not_an_http_url(run_module, tmp_path):
    failed, res = run_module(fetch_verified.main, {"url": "ftp://x/y", "dest": str(tmp_path / "y")})
    assert failed and "is not an http:// or https:// URL" in res["msg"]


def test_status_before_start(run_module, tmp_path):
    failed, res = run_module(progress_info.main, {"path": str(tmp_path / "none.json")})
    assert not failed and not res["finished"] and res["record"] == {} and not res["changed"]
    assert res["msg"] == "no progress record yet"


def test_status_file_that_is_not_an_object_reads_as_not_yet_written(run_module, tmp_path):
    bad = tmp_path / "s.json"
    bad.write_text("[1]")
    failed, res = run_module(progress_info.main, {"path": str(bad)})
    assert not failed and not res["finished"] and res["record"] == {}


@pytest.fixture
def run_formatted(monkeypatch, capsys):
    """Run main() through AnsibleModule's own result formatting (invocation, no_log masking) and capture what it
    prints (on every core: exit_json and fail_json print the result, then exit) and what it logs on the node."""
    logged = []
    monkeypatch.setattr(basic.AnsibleModule, "log", lambda self, msg, log_args=None: logged.append(msg))

    def _run(args):
        capsys.readouterr()
        with patch_module_args(dict(args, **INJECT_INVOCATION)), pytest.raises(SystemExit):
            fetch_verified.main()
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1]), logged

    return _run


def test_secrets_never_reach_the_result_or_the_log(run_formatted, origin, tmp_path):
    dest = tmp_path / "m.pth"
    args = {
        "url": origin.url("m.pth") + "?token=s3cret-query",
        "dest": str(dest),
        "sha256": SUM,
        "headers": {"Authorization": "Bearer s3cret-header"},
        "status_path": str(tmp_path / "s.json"),
    }
    result, logged = run_formatted(args)
    assert not result.get("failed") and result["fetched"], result
    text = json.dumps(result) + "\n".join(logged) + (tmp_path / "s.json").read_text()
    assert "s3cret" not in text, text
    assert "url=NOT_LOGGING_PARAMETER" in logged[0] and "headers=NOT_LOGGING_PARAMETER" in logged[0], logged
    assert result["url"] == origin.url("m.pth") + "?********"
    assert result["invocation"]["module_args"]["url"] == origin.url("m.pth") + "?********"
    assert result["invocation"]["module_args"]["dest"] == str(dest), "what is no secret stays readable"
    assert origin.gets()[0].authorization == "Bearer s3cret-header"
    # A failure too.
    result, logged = run_formatted(dict(args, url=origin.url("nope") + "?token=s3cret-query", dest=str(dest) + "2"))
    text = json.dumps(result) + "\n".join(logged)
    assert result["failed"] and "HTTP 404" in result["msg"] and "s3cret" not in text, text
    assert result["url"] == origin.url("nope") + "?********"


def test_a_url_without_secrets_is_shown_whole(run_formatted, origin, tmp_path):
    result, _logged = run_formatted({"url": origin.url("m.pth"), "dest": str(tmp_path / "m.pth")})
    assert result["url"] == origin.url("m.pth") and result["invocation"]["module_args"]["url"] == origin.url("m.pth")


def test_the_deadline_option_reaches_the_fetch(run_module, origin, tmp_path):
    origin.drip["m.pth"] = (1, 0.05)
    failed, res = run_module(
        fetch_verified.main, {"url": origin.url("m.pth"), "dest": str(tmp_path / "m.pth"), "deadline": 0.3}
    )
    assert failed and "did not finish within its deadline of 0.3 s" in res["msg"]
