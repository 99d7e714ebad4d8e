"""fetch_verified and progress_info as Ansible runs them: arguments, results, check mode, clear failures."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from ansible_collections.gtsfm.cluster.plugins.modules import fetch_verified, progress_info

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from http_origin import Origin  # noqa: E402  pylint: disable=wrong-import-position

DATA = b"weights" * 1000
SUM = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def origin(tmp_path):
    with Origin(tmp_path / "origin") as server:
        server.put("m.pth", DATA)
        yield server


def test_fetch_then_noop_with_mode(run_module, origin, tmp_path):
    dest = tmp_path / "w" / "m.pth"
    args = {"url": origin.url("m.pth"), "dest": str(dest), "sha256": SUM, "mode": "0640",
            "status_path": str(tmp_path / "s.json")}
    failed, res = run_module(fetch_verified.main, args)
    assert not failed and res["changed"] and res["fetched"] and oct(dest.stat().st_mode & 0o777) == "0o640"
    failed, res = run_module(fetch_verified.main, args)
    assert not failed and not res["changed"] and res["requests"] == 0
    failed, res = run_module(progress_info.main, {"path": str(tmp_path / "s.json")})
    assert not failed and res["finished"] and not res["record"]["failed"]
    assert res["record"]["done"] == res["record"]["total"] == dest.stat().st_size


def test_check_mode_reports_a_download_without_one(run_module, origin, tmp_path):
    dest = tmp_path / "m.pth"
    failed, res = run_module(fetch_verified.main, {"url": origin.url("m.pth"), "dest": str(dest),
                                                   "_ansible_check_mode": True})
    assert not failed and res["changed"] and not dest.exists() and origin.requests == []


def test_mismatch_fails_with_one_message(run_module, origin, tmp_path):
    dest = tmp_path / "m.pth"
    failed, res = run_module(fetch_verified.main, {"url": origin.url("m.pth"), "dest": str(dest),
                                                   "sha256": "f" * 64})
    assert failed and res["msg"] == (
        "fetch_verified: %s: sha256 mismatch for %s: expected %s, got %s. Nothing was installed at %s. Fix: if the "
        "origin changed this file on purpose, update the sum (or re-pin); otherwise do not trust this origin."
        % (dest, origin.url("m.pth"), "f" * 64, SUM, dest))
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
