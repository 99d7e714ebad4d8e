"""The fetch logic against a real HTTP origin on loopback: streaming, retry, resume, mismatch, free space."""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

from ansible_collections.gtsfm.cluster.plugins.module_utils import _fetch, _progress
from ansible_collections.gtsfm.cluster.plugins.module_utils._fetch import FetchError, fetch, partial_path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from http_origin import Origin  # noqa: E402  pylint: disable=wrong-import-position

DATA = os.urandom(3 * 1024 * 1024 + 17)
SUM = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def origin(tmp_path):
    with Origin(tmp_path / "origin") as server:
        server.put("w/model.pt", DATA)
        yield server


def opts(**kw):
    base = dict(retry_delay=0, sleep=lambda s: None, timeout=10, chunk=64 * 1024)
    base.update(kw)
    return base


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_fetch_streams_verifies_and_installs(origin, tmp_path):
    dest = tmp_path / "dst" / "sub" / "model.pt"
    status = tmp_path / "status.json"
    res = fetch(origin.url("w/model.pt"), str(dest), **opts(sha256=SUM, size=len(DATA), status_path=str(status)))
    assert dest.read_bytes() == DATA
    assert res["changed"] and res["fetched"] and res["sha256"] == SUM and res["size"] == len(DATA)
    assert res["requests"] == 1 and res["downloaded"] == len(DATA) and res["resumed_from"] == []
    assert leftovers(dest.parent) == ["model.pt"]
    state = json.loads(status.read_text())
    assert state["finished"] and not state["failed"] and state["phase"] == "done" and state["done"] == len(DATA)


def test_second_fetch_asks_the_origin_nothing(origin, tmp_path):
    dest = tmp_path / "model.pt"
    fetch(origin.url("w/model.pt"), str(dest), **opts(sha256=SUM))
    origin.reset()
    res = fetch(origin.url("w/model.pt"), str(dest), **opts(sha256=SUM))
    assert not res["changed"] and res["requests"] == 0 and origin.requests == []
    # Without a sum the file present is reported with its sum (for the pin), still no request.
    res = fetch(origin.url("w/model.pt"), str(dest), **opts())
    assert not res["changed"] and res["sha256"] == SUM and origin.requests == []


def test_without_sum_the_first_fetch_reports_the_sum_to_pin(origin, tmp_path):
    res = fetch(origin.url("w/model.pt"), str(tmp_path / "m"), **opts())
    assert res["sha256"] == SUM and res["changed"]


def test_cut_transfer_resumes_with_range_in_the_same_run(origin, tmp_path):
    origin.cut_after["w/model.pt"] = 1024 * 1024
    dest = tmp_path / "model.pt"
    res = fetch(origin.url("w/model.pt"), str(dest), **opts(sha256=SUM))
    assert dest.read_bytes() == DATA
    gets = origin.gets("w/model.pt")
    assert [g.range for g in gets] == [None, "bytes=%d-" % (1024 * 1024)]
    assert [g.status for g in gets] == [200, 206]
    assert res["resumed_from"] == [1024 * 1024] and res["downloaded"] == len(DATA)


def test_partial_file_from_an_earlier_run_is_resumed(origin, tmp_path):
    dest = tmp_path / "model.pt"
    Path(partial_path(str(dest))).write_bytes(DATA[:1000])
    res = fetch(origin.url("w/model.pt"), str(dest), **opts(sha256=SUM))
    assert dest.read_bytes() == DATA and res["resumed_from"] == [1000]
    assert res["downloaded"] == len(DATA) - 1000
    assert origin.gets()[0].range == "bytes=1000-"


def test_complete_partial_file_is_verified_after_416(origin, tmp_path):
    dest = tmp_path / "model.pt"
    Path(partial_path(str(dest))).write_bytes(DATA)
    res = fetch(origin.url("w/model.pt"), str(dest), **opts(sha256=SUM))
    assert dest.read_bytes() == DATA and res["downloaded"] == 0
    assert [g.status for g in origin.gets()] == [416]


def test_origin_without_range_support_restarts_cleanly(origin, tmp_path):
    origin.ranges = False
    dest = tmp_path / "model.pt"
    Path(partial_path(str(dest))).write_bytes(b"x" * 5000)  # junk that must not end up in the file
    fetch(origin.url("w/model.pt"), str(dest), **opts(sha256=SUM))
    assert dest.read_bytes() == DATA


def test_server_errors_are_retried(origin, tmp_path):
    origin.fail_next["w/model.pt"] = [503, 500]
    slept = []
    res = fetch(origin.url("w/model.pt"), str(tmp_path / "m"), **opts(sha256=SUM, retry_delay=1, sleep=slept.append))
    assert res["requests"] == 3 and slept == [1, 2]


def test_retries_run_out_with_one_clear_message(origin, tmp_path):
    origin.fail_next["w/model.pt"] = [503] * 10
    dest = tmp_path / "m"
    with pytest.raises(FetchError) as err:
        fetch(origin.url("w/model.pt"), str(dest), **opts(retries=2))
    msg = str(err.value)
    assert str(dest) in msg and origin.url("w/model.pt") in msg and "after 3 attempts" in msg
    assert "HTTP 503" in msg and not dest.exists()


def test_not_found_fails_at_once(origin, tmp_path):
    with pytest.raises(FetchError, match=r"answered HTTP 404 .* for http://.*/nope\. Fix: check the URL"):
        fetch(origin.url("nope"), str(tmp_path / "m"), **opts())
    assert len(origin.requests) == 1


def test_unreachable_origin(tmp_path):
    with pytest.raises(FetchError, match="cannot reach the origin"):
        fetch("http://127.0.0.1:9/x", str(tmp_path / "m"), **opts(retries=1))


def test_mismatch_names_file_url_and_both_sums_and_leaves_nothing(origin, tmp_path):
    dest = tmp_path / "dst" / "model.pt"
    wrong = "0" * 64
    with pytest.raises(FetchError) as err:
        fetch(origin.url("w/model.pt"), str(dest), **opts(sha256=wrong))
    msg = str(err.value)
    assert msg.startswith(str(dest) + ": sha256 mismatch for " + origin.url("w/model.pt"))
    assert "expected %s, got %s" % (wrong, SUM) in msg and "Nothing was installed" in msg
    assert leftovers(dest.parent) == []


def test_existing_file_that_fails_its_sum_is_replaced(origin, tmp_path):
    dest = tmp_path / "model.pt"
    dest.write_bytes(b"old")
    res = fetch(origin.url("w/model.pt"), str(dest), **opts(sha256=SUM))
    assert res["removed_mismatch"] and dest.read_bytes() == DATA


def test_size_mismatch_is_refused_before_the_body(origin, tmp_path):
    dest = tmp_path / "d" / "model.pt"
    with pytest.raises(FetchError, match="the manifest says 10 bytes, the origin announces %d" % len(DATA)):
        fetch(origin.url("w/model.pt"), str(dest), **opts(size=10))
    assert leftovers(dest.parent) == []


def test_free_space_is_checked_before_writing(origin, tmp_path):
    dest = tmp_path / "d" / "model.pt"
    with pytest.raises(FetchError) as err:
        fetch(origin.url("w/model.pt"), str(dest), **opts(free=lambda d: 1000))
    msg = str(err.value)
    assert "not enough free space in %s" % dest.parent in msg and "(%d bytes), 1000 B free" % len(DATA) in msg
    assert leftovers(dest.parent) == []
    # Resuming needs only the rest.
    Path(partial_path(str(dest))).write_bytes(DATA[:-500])
    fetch(origin.url("w/model.pt"), str(dest), **opts(free=lambda d: 1000, sha256=SUM))
    assert dest.read_bytes() == DATA


def test_check_mode_asks_nothing_and_writes_nothing(origin, tmp_path):
    dest = tmp_path / "d" / "model.pt"
    res = fetch(origin.url("w/model.pt"), str(dest), **opts(check_mode=True))
    assert res["changed"] and origin.requests == [] and not dest.parent.exists()


def test_force_fetches_again_and_replaces_only_after_verifying(origin, tmp_path):
    dest = tmp_path / "model.pt"
    fetch(origin.url("w/model.pt"), str(dest), **opts())
    origin.put("w/model.pt", b"new content")
    with pytest.raises(FetchError, match="sha256 mismatch"):
        fetch(origin.url("w/model.pt"), str(dest), **opts(force=True, sha256=SUM))
    assert dest.read_bytes() == DATA  # the verified old file stays
    res = fetch(origin.url("w/model.pt"), str(dest), **opts(force=True))
    assert dest.read_bytes() == b"new content" and res["sha256"] == hashlib.sha256(b"new content").hexdigest()


@pytest.mark.parametrize("value", ["abc", "g" * 64, "1" * 63])
def test_bad_sum_is_refused(value, tmp_path):
    with pytest.raises(FetchError, match="is not a SHA-256"):
        fetch("http://127.0.0.1:9/x", str(tmp_path / "m"), **opts(sha256=value))


def test_sum_prefix_and_case_are_accepted():
    assert _fetch.normalise_sha256("sha256:" + SUM.upper()) == SUM


def test_dest_that_is_a_directory(tmp_path):
    with pytest.raises(FetchError, match="is a directory, not a file"):
        fetch("http://127.0.0.1:9/x", str(tmp_path), **opts())


def test_read_status_before_and_after(tmp_path, origin):
    status = tmp_path / "s.json"
    assert _progress.read(str(status)) is None
    with pytest.raises(FetchError):
        fetch(origin.url("nope"), str(tmp_path / "m"), **opts(status_path=str(status)))
    state = _progress.read(str(status))
    assert state["finished"] and state["failed"] and "HTTP 404" in state["msg"]


def test_status_of_an_earlier_run_reads_as_not_yet_written(tmp_path, origin):
    status = tmp_path / "s.json"
    fetch(origin.url("w/model.pt"), str(tmp_path / "m"), **opts(status_path=str(status), status_run_id="run1"))
    assert _progress.read(str(status), "run1")["finished"]
    assert _progress.read(str(status), "run2") is None
