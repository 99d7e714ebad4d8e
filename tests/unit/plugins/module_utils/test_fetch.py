"""The fetch logic against a real HTTP origin on loopback: streaming, retry, resume, mismatch, free space."""

from __future__ import annotations

import base64
import errno
import hashlib
import io
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
    assert [g.range for g in gets] == [None, f"bytes={1024 * 1024}-"]
    assert [g.status for g in gets] == [200, 206]
    assert res["resumed_from"] == [1024 * 1024] and res["downloaded"] == len(DATA)


def etag(origin, name):
    """The ETag the test origin sends for name now."""
    stat = (origin.root / name).stat()
    return f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'


def kept(dest: Path) -> Path:
    return Path(_fetch.kept_path(str(dest)))


def cut_run(origin, dest, at, name="w/model.pt", **kw):
    """An earlier run that broke off at byte `at` and gave up (retries=0): it leaves the partial file."""
    origin.cut_after[name] = at
    with pytest.raises(FetchError, match="failed after 1 attempts"):
        fetch(origin.url(name), str(dest), **opts(retries=0, **kw))
    assert Path(partial_path(str(dest))).stat().st_size == at


def test_partial_file_from_an_earlier_run_is_resumed_against_the_same_file(origin, tmp_path):
    dest = tmp_path / "model.pt"
    cut_run(origin, dest, 1000)
    assert json.loads(kept(dest).read_text())["validator"] == etag(origin, "w/model.pt")
    origin.reset()
    res = fetch(origin.url("w/model.pt"), str(dest), **opts(sha256=SUM))
    assert dest.read_bytes() == DATA and res["resumed_from"] == [1000]
    assert res["downloaded"] == len(DATA) - 1000
    assert [(g.range, g.if_range, g.status) for g in origin.gets()] == [
        ("bytes=1000-", etag(origin, "w/model.pt"), 206)
    ]
    assert leftovers(tmp_path) == ["model.pt", "origin"], "the kept validator goes with the partial file"


def test_complete_partial_file_is_verified_after_416(origin, tmp_path):
    dest = tmp_path / "model.pt"
    Path(partial_path(str(dest))).write_bytes(DATA)
    kept(dest).write_text(
        json.dumps(
            {
                "origin": _fetch._origin_key(origin.url("w/model.pt")),
                "validator": etag(origin, "w/model.pt"),
                "total": len(DATA),
            }
        )
    )
    res = fetch(origin.url("w/model.pt"), str(dest), **opts(sha256=SUM))
    assert dest.read_bytes() == DATA and res["downloaded"] == 0
    assert [g.status for g in origin.gets()] == [416]


def test_a_partial_file_without_a_kept_validator_starts_over(origin, tmp_path):
    dest = tmp_path / "model.pt"
    Path(partial_path(str(dest))).write_bytes(b"an old head" * 100)  # of what? nothing says
    res = fetch(origin.url("w/model.pt"), str(dest), **opts())
    assert dest.read_bytes() == DATA and res["sha256"] == SUM and res["resumed_from"] == []
    assert [g.range for g in origin.gets()] == [None]


NEW = os.urandom(len(DATA))


def test_a_changed_origin_file_is_not_spliced_onto_an_old_partial(origin, tmp_path):
    dest = tmp_path / "model.pt"
    cut_run(origin, dest, 1024 * 1024)
    old_etag = etag(origin, "w/model.pt")
    origin.put("w/model.pt", NEW)  # same size, new content (a resolve/main URL after a push)
    origin.reset()
    res = fetch(origin.url("w/model.pt"), str(dest), **opts())  # no sum: a splice would be pinned
    assert dest.read_bytes() == NEW and res["sha256"] == hashlib.sha256(NEW).hexdigest()
    assert [(g.range, g.if_range, g.status) for g in origin.gets()] == [("bytes=1048576-", old_etag, 200)]
    assert leftovers(tmp_path) == ["model.pt", "origin"]


@pytest.mark.parametrize("new", [NEW, NEW + b"longer"], ids=["same-size", "other-size"])
def test_an_origin_that_ignores_if_range_is_caught_by_its_validator_or_size(origin, tmp_path, new):
    dest = tmp_path / "model.pt"
    cut_run(origin, dest, 1024 * 1024)
    origin.put("w/model.pt", new)
    origin.if_range = False  # serves the range of the new file although If-Range names the old one
    origin.reset()
    res = fetch(origin.url("w/model.pt"), str(dest), **opts())
    assert dest.read_bytes() == new and res["resumed_from"] == []
    assert [(g.range, g.status) for g in origin.gets()] == [("bytes=1048576-", 206), (None, 200)]


def test_without_validators_a_broken_transfer_starts_over(origin, tmp_path):
    origin.validators = False
    origin.cut_after["w/model.pt"] = 1024 * 1024
    dest = tmp_path / "model.pt"
    res = fetch(origin.url("w/model.pt"), str(dest), **opts(sha256=SUM))
    assert dest.read_bytes() == DATA and res["resumed_from"] == []
    assert [g.range for g in origin.gets()] == [None, None]
    # Nor is anything kept for a next run to resume against.
    cut_run(origin, tmp_path / "again.pt", 1000)
    assert not kept(tmp_path / "again.pt").exists()


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
    assert f"expected {wrong}, got {SUM}" in msg and "Nothing was installed" in msg
    assert leftovers(dest.parent) == []


def test_existing_file_that_fails_its_sum_is_replaced(origin, tmp_path):
    dest = tmp_path / "model.pt"
    dest.write_bytes(b"old")
    res = fetch(origin.url("w/model.pt"), str(dest), **opts(sha256=SUM))
    assert res["removed_mismatch"] and dest.read_bytes() == DATA


def test_size_mismatch_is_refused_before_the_body(origin, tmp_path):
    dest = tmp_path / "d" / "model.pt"
    with pytest.raises(FetchError, match=f"the manifest says 10 bytes, the origin announces {len(DATA)}"):
        fetch(origin.url("w/model.pt"), str(dest), **opts(size=10))
    assert leftovers(dest.parent) == []


def test_free_space_is_checked_before_writing(origin, tmp_path):
    dest = tmp_path / "d" / "model.pt"
    with pytest.raises(FetchError) as err:
        fetch(origin.url("w/model.pt"), str(dest), **opts(free=lambda d: 1000))
    msg = str(err.value)
    assert f"not enough free space in {dest.parent}" in msg and f"({len(DATA)} bytes), 1000 B free" in msg
    assert leftovers(dest.parent) == []
    # Resuming needs only the rest.
    cut_run(origin, dest, len(DATA) - 500)
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


# -- bounds: a total deadline, and a size no body may pass ---------------------------------------------------------
def test_a_dripping_origin_is_bounded_by_the_deadline(origin, tmp_path):
    origin.put("w/slow.pt", b"s" * 1000)
    origin.drip["w/slow.pt"] = (1, 0.05)  # a byte every 50 ms: never a timeout of 5 s
    dest = tmp_path / "slow.pt"
    with pytest.raises(FetchError) as err:
        fetch(origin.url("w/slow.pt"), str(dest), **opts(timeout=5, deadline=0.5))
    msg = str(err.value)
    assert msg.startswith(
        f"{dest}: the download from {origin.url('w/slow.pt')} did not finish within its deadline of 0.5 s ("
    ), msg
    assert "of 1000 B received). Fix: raise deadline (model_weights_fetch_timeout" in msg
    assert 0 < Path(partial_path(str(dest))).stat().st_size < 1000 and kept(dest).exists(), "kept to resume"


def test_the_deadline_counts_the_pauses_between_attempts(origin, tmp_path):
    now = [0.0]
    origin.fail_next["w/model.pt"] = [503] * 10
    with pytest.raises(FetchError, match="did not finish within its deadline of 25 s"):
        fetch(
            origin.url("w/model.pt"),
            str(tmp_path / "m"),
            **opts(
                retries=10,
                retry_delay=10,
                deadline=25,
                clock=lambda: now[0],
                sleep=lambda s: now.__setitem__(0, now[0] + s),
            ),
        )
    assert now[0] == 25 and len(origin.gets()) == 2


@pytest.mark.parametrize("deadline", [0, -1, None])
def test_a_deadline_that_is_no_time_is_refused(tmp_path, deadline):
    with pytest.raises(FetchError, match=f"deadline {deadline!r} for .* is not a number of seconds above 0"):
        fetch("http://127.0.0.1:9/x", str(tmp_path / "m"), **opts(deadline=deadline))


def test_a_body_without_content_length_is_bounded_by_free_space(origin, tmp_path):
    origin.no_length.add("w/model.pt")
    dest = tmp_path / "d" / "model.pt"
    with pytest.raises(FetchError) as err:
        fetch(origin.url("w/model.pt"), str(dest), **opts(free=lambda d: 1024 * 1024 + 100, free_reserve=100))
    msg = str(err.value)
    assert msg.startswith(
        f"{dest}: {origin.url('w/model.pt')} sends no Content-Length, and its body outgrew the free space in "
        f"{dest.parent} (1.0 MiB, beyond a reserve of 100 B)"
    ), msg
    assert "Fix: give the file's 'size' if you know it, free space there" in msg
    assert leftovers(dest.parent) == []


def test_a_body_without_content_length_is_bounded_by_size(origin, tmp_path):
    origin.no_length.add("w/model.pt")
    dest = tmp_path / "d" / "model.pt"
    with pytest.raises(
        FetchError,
        match=r"sends more than the 1000 bytes 'size' gives \(no Content-Length\)\. "
        r"Nothing was installed",
    ):
        fetch(origin.url("w/model.pt"), str(dest), **opts(size=1000))
    assert leftovers(dest.parent) == []
    # Too big for the free space, by its size, before a byte is written.
    with pytest.raises(FetchError, match=rf"not enough free space in .* \({len(DATA)} bytes\), 1000 B free"):
        fetch(origin.url("w/model.pt"), str(dest), **opts(size=len(DATA), free=lambda d: 1000))
    assert leftovers(dest.parent) == []
    res = fetch(origin.url("w/model.pt"), str(dest), **opts(size=len(DATA), sha256=SUM))
    assert dest.read_bytes() == DATA and res["requests"] == 1


# -- secrets: headers stay with their origin, the URL's secrets stay out of what is shown ----------------------------
@pytest.fixture
def other(tmp_path):
    """A second origin on another host (127.0.0.2 is loopback too, but another host to urllib)."""
    with Origin(tmp_path / "other", host="127.0.0.2") as server:
        server.put("w/model.pt", DATA)
        yield server


SECRET_HEADERS = {"Authorization": "Bearer s3cret-token", "X-Api-Key": "k3y"}


def test_headers_are_dropped_on_a_redirect_to_another_host(origin, other, tmp_path):
    origin.redirects["w/model.pt"] = (302, other.url("w/model.pt") + "?sig=cdn-signature")
    res = fetch(origin.url("w/model.pt"), str(tmp_path / "m"), **opts(sha256=SUM, headers=SECRET_HEADERS))
    assert res["sha256"] == SUM
    assert origin.gets()[0].authorization == "Bearer s3cret-token" and origin.gets()[0].headers["X-Api-Key"] == "k3y"
    (at_other,) = other.gets()
    assert at_other.authorization is None and "X-Api-Key" not in at_other.headers, at_other.headers
    assert at_other.headers["User-Agent"] == "gtsfm.cluster-fetch_verified"


def test_headers_follow_a_redirect_on_the_same_origin(origin, tmp_path):
    origin.redirects["old/model.pt"] = (301, "/w/model.pt")
    fetch(origin.url("old/model.pt"), str(tmp_path / "m"), **opts(sha256=SUM, headers=SECRET_HEADERS))
    assert [g.authorization for g in origin.requests] == ["Bearer s3cret-token"] * 2


def test_a_resumed_range_survives_a_redirect_but_the_headers_do_not(origin, other, tmp_path):
    dest = tmp_path / "m"
    origin.redirects["w/model.pt"] = (302, other.url("w/model.pt"))
    other.cut_after["w/model.pt"] = 1000
    res = fetch(origin.url("w/model.pt"), str(dest), **opts(sha256=SUM, headers=SECRET_HEADERS))
    assert res["resumed_from"] == [1000]
    assert [(g.range, g.authorization) for g in other.gets()] == [(None, None), ("bytes=1000-", None)]


def test_a_redirect_from_https_to_http_is_refused():
    handler = _fetch.RedirectHandler(["Authorization"], "/d/m")

    class Body:
        closed = False

        def close(self):
            self.closed = True

    body = Body()
    request = _fetch.urllib_request.Request("https://mirror.example/m?token=s3cret")
    with pytest.raises(FetchError) as err:
        handler.redirect_request(request, body, 302, "Found", {}, "http://cdn.example/m?sig=abc")
    assert str(err.value) == (
        "/d/m: https://mirror.example/m?******** redirects to http://cdn.example/m?********, from https to plain "
        "http: refused (the body and any headers would travel unencrypted). Fix: use an origin or mirror that stays "
        "on https."
    )
    assert body.closed


@pytest.mark.parametrize(
    "old, new, same",
    [
        ("https://h.example/a", "https://h.example/b", True),
        ("https://h.example/a", "https://H.EXAMPLE:443/b", True),
        ("http://h.example/a", "https://h.example/b", True),  # an upgrade on the same host
        ("https://h.example/a", "https://cdn.example/b", False),
        ("https://h.example/a", "https://h.example:8443/b", False),
        ("http://h.example:8080/a", "https://h.example/b", False),
        ("http://127.0.0.1:8000/a", "http://localhost:8000/b", False),
    ],
)
def test_same_origin(old, new, same):
    assert _fetch.same_origin(old, new) is same


@pytest.mark.parametrize(
    "url, shown",
    [
        ("https://h.example/a/b.pt", "https://h.example/a/b.pt"),
        ("https://h.example/a/b.pt?token=s3cret&x=1", "https://h.example/a/b.pt?********"),
        ("https://user:pa55@h.example:8443/b.pt", "https://********@h.example:8443/b.pt"),
        ("https://h.example/b.pt#frag", "https://h.example/b.pt#********"),
    ],
)
def test_redact_url(url, shown):
    assert _fetch.redact_url(url) == shown
    assert all(secret not in shown for secret in _fetch.url_secrets(url))


def test_a_token_in_the_url_stays_out_of_messages_results_and_the_status_file(origin, tmp_path):
    status = tmp_path / "s.json"
    with pytest.raises(FetchError) as err:
        fetch(origin.url("nope") + "?token=s3cret", str(tmp_path / "m"), **opts(status_path=str(status)))
    assert "s3cret" not in str(err.value) and origin.url("nope") + "?********" in str(err.value)
    assert "s3cret" not in status.read_text() and "HTTP 404" in status.read_text()
    res = fetch(origin.url("w/model.pt") + "?token=s3cret", str(tmp_path / "m"), **opts(status_path=str(status)))
    assert res["url"] == origin.url("w/model.pt") + "?********" and res["sha256"] == SUM
    assert "s3cret" not in status.read_text() and "s3cret" not in json.dumps(res)
    assert origin.gets()[-1].path == "/w/model.pt?token=s3cret", "the origin still gets the token"


def test_userinfo_in_the_url_becomes_a_header_for_its_origin_only(origin, other, tmp_path):
    url = origin.url("w/model.pt").replace("http://", "http://us%40er:pa55@")
    origin.redirects["w/model.pt"] = (302, other.url("w/model.pt"))
    res = fetch(url, str(tmp_path / "m"), **opts(sha256=SUM))
    assert origin.gets()[0].authorization == "Basic " + base64.b64encode(b"us@er:pa55").decode()
    assert other.gets()[0].authorization is None
    assert res["url"] == origin.url("w/model.pt").replace("http://", "http://********@")


def test_a_second_fetch_waits_for_the_first_then_verifies_its_file_and_asks_nothing(origin, tmp_path):
    dest = tmp_path / "model.pt"
    lock = _fetch.lock_path(str(dest))
    held = _progress.hold(lock)
    status = tmp_path / "status.json"
    phases = []

    def first_finishes(_seconds):  # the first fetch (this test) places the file and lets go
        phases.append(json.loads(status.read_text())["phase"])
        dest.write_bytes(DATA)
        _progress.release(held, lock)

    options = opts(sha256=SUM, status_path=str(status), sleep=first_finishes)
    res = fetch(origin.url("w/model.pt"), str(dest), **options)
    assert phases == [f"waiting for another fetch of this file (pid {os.getpid()}) to end"]
    assert not res["changed"] and res["requests"] == 0 and origin.requests == []
    assert leftovers(tmp_path) == ["model.pt", "origin", "status.json"]


class FullAfter(io.FileIO):
    """A file on a disk that fills at `limit` bytes: a short write up to there, then ENOSPC, as the kernel does."""

    limit = 0

    def write(self, data):
        room = self.limit - self.tell()
        if room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.name)
        return super().write(bytes(data[:room]))


def test_a_disk_that_fills_mid_download_fails_at_once_keeps_a_whole_head_and_the_next_run_resumes(
    origin, tmp_path, monkeypatch
):
    dest = tmp_path / "d" / "model.pt"
    partial = partial_path(str(dest))
    FullAfter.limit = 1024 * 1024 + 100  # not on a chunk's edge: the write that fills the disk is a short one

    def full_open(path, mode="r", buffering=-1):
        if path == partial and mode in ("ab", "wb"):
            assert buffering == 0  # a buffer would write its rest again at close, onto the full disk
            return FullAfter(path, mode[0])
        return open(path, mode, buffering)

    monkeypatch.setattr(_fetch, "open", full_open, raising=False)
    with pytest.raises(FetchError) as err:
        fetch(origin.url("w/model.pt"), str(dest), **opts(sha256=SUM, free=lambda d: 10 * len(DATA)))
    msg = str(err.value)
    assert (
        msg.startswith(f"{dest}: the file system of {dest.parent} filled up")
        and "No space left on device" in msg
        and "1.0 MiB of 3.0 MiB received" in msg
    ), msg
    assert f"kept in {partial}, and the next run resumes from there" in msg and "Fix: free space there" in msg
    assert len(origin.gets("w/model.pt")) == 1  # no retry: another attempt would fill the same disk
    assert not dest.exists() and Path(partial).read_bytes() == DATA[: FullAfter.limit]
    monkeypatch.undo()
    origin.reset()
    res = fetch(origin.url("w/model.pt"), str(dest), **opts(sha256=SUM))
    assert dest.read_bytes() == DATA and res["resumed_from"] == [FullAfter.limit]
    assert res["downloaded"] == len(DATA) - FullAfter.limit and leftovers(dest.parent) == ["model.pt"]
