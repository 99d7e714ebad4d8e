# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fetch one file over HTTP(S) to disk, verified, resumable, atomic.

Private to the gtsfm.cluster collection (used by the fetch_verified module); not a public API.

The body is streamed to a partial file beside the destination (``.NAME.gtsfm-partial``: hidden, and a name no
consumer of NAME ever opens) and hashed while it streams, so a file of any size costs one chunk of memory. An
interrupted transfer resumes from the partial file with an HTTP ``Range`` request, in this run (retries) or the next
one, but only against the same file: the origin's validator and size are kept beside the partial file
(``.NAME.gtsfm-partial.json``) and sent as ``If-Range``; without them it starts over. Only a body whose SHA-256 (and
size) match what was asked for is renamed into place, atomically; a mismatch removes the partial file and raises
one FetchError naming the file, the URL and both sums.

The caller's headers go to the URL's own origin only (RedirectHandler), the URL is shown redacted (redact_url)
everywhere, and a whole fetch is bounded by a deadline and its body by size, Content-Length or free space.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import errno
import hashlib
import json
import os
import re
import socket
import ssl
import time

try:  # Python 3 only; the module is documented as needing Python 3 on the node.
    import http.client as http_client
    import urllib.error as urllib_error
    import urllib.parse as urllib_parse
    import urllib.request as urllib_request
except ImportError:  # pragma: no cover
    http_client = urllib_error = urllib_parse = urllib_request = None

from ansible_collections.gtsfm.cluster.plugins.module_utils import _progress
from ansible_collections.gtsfm.cluster.plugins.module_utils._broadcast_hop import hash_file

PARTIAL_SUFFIX = ".gtsfm-partial"
KEPT_SUFFIX = ".gtsfm-partial.json"
LOCK_SUFFIX = ".gtsfm-fetch.lock"
# The longest a fetch may take, retries included, unless told otherwise: 4 h (the model_weights role's own bound).
DEFAULT_DEADLINE = 14400.0
CHUNK = 1024 * 1024
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
CONTENT_RANGE_RE = re.compile(r"^bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)$")
# A write that fails so is no transfer that broke off: another attempt fills the same disk again.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# Statuses worth another attempt: the origin or a proxy may answer better in a moment.
RETRY_STATUSES = (408, 425, 429, 500, 502, 503, 504)


class FetchError(Exception):
    """A fetch that cannot succeed as asked; the message names the file, the URL and the fix."""


class _Retry(Exception):
    """One attempt failed in a way another attempt may not; the partial file is kept."""


def partial_path(dest):
    """Where the body of dest is kept while it downloads: hidden, never the name anything reads."""
    head, tail = os.path.split(dest)
    return os.path.join(head, "." + tail + PARTIAL_SUFFIX)


def kept_path(dest):
    """Where what identifies the partial file's body (validator, total size) is kept beside it, for a resume."""
    head, tail = os.path.split(dest)
    return os.path.join(head, "." + tail + KEPT_SUFFIX)


def lock_path(dest):
    """The lock a fetch of dest holds while it runs: a second fetch of it waits, then finds it in place."""
    head, tail = os.path.split(dest)
    return os.path.join(head, "." + tail + LOCK_SUFFIX)


def normalise_sha256(value, field="sha256"):
    """A SHA-256 as 64 lower-case hex digits (a 'sha256:' prefix is accepted), or None."""
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if text.startswith("sha256:"):
        text = text[len("sha256:") :]
    if not SHA256_RE.match(text):
        raise FetchError(
            f"{field} {value!r} is not a SHA-256 (64 hex digits). Fix: give the sum 'sha256sum FILE' prints, or leave "
            "it out to pin the first download."
        )
    return text


def free_bytes(directory):
    """Bytes an unprivileged user may still write in directory's file system."""
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


def human(num):
    """A byte count for people: 1.5 GiB."""
    value = float(num)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{int(num)} B"  # pragma: no cover


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class StatusFile(_progress.Writer):
    """The fetch's progress record (module_utils/_progress): bytes of the file so far as done, its size as total.

    The rate counts bytes downloaded in this run only, so a resumed file does not show its old bytes as speed."""

    rate_field = "downloaded"

    def __init__(self, path, url, dest, interval=1.0, clock=time.time, run_id=None):
        _progress.Writer.__init__(
            self,
            path,
            run_id=run_id,
            what=os.path.basename(dest),
            interval=interval,
            clock=clock,
            url=url,
            dest=dest,
            attempt=0,
            downloaded=0,
        )

    def update(self, force=False, **fields):
        if "bytes" in fields:
            fields["done"] = fields.pop("bytes")
        _progress.Writer.update(self, force=force, **fields)


def _content_range(header):
    """(start, total) from a Content-Range header; either may be None."""
    match = CONTENT_RANGE_RE.match((header or "").strip())
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(3)) if match.group(3) != "*" else None
    return start, total


def redact_url(url):
    """url as it may be shown: its userinfo, query and fragment (where tokens travel) as ********."""
    try:
        parts = urllib_parse.urlsplit(url)
    except ValueError:
        return "(an unparsable URL)"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "********@" + netloc.rpartition("@")[2]
    return urllib_parse.urlunsplit(
        (parts.scheme, netloc, parts.path, "********" if parts.query else "", "********" if parts.fragment else "")
    )


def url_secrets(url):
    """The parts of url that redact_url hides (userinfo, its password, query, fragment): for Ansible's no_log."""
    try:
        parts = urllib_parse.urlsplit(url)
    except ValueError:
        return [url]
    found = [parts.query, parts.fragment]
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        found += [userinfo, userinfo.partition(":")[2]]
    return [value for value in found if value]


def _origin(parts):
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def same_origin(old, new):
    """Whether the headers meant for URL old may go to URL new: the same host and port, or http on 80 upgraded to
    https on 443 on the same host (the rule requests follows for Authorization)."""
    old, new = _origin(urllib_parse.urlsplit(old)), _origin(urllib_parse.urlsplit(new))
    return old == new or (old[1] == new[1] and old[0::2] == ("http", 80) and new[0::2] == ("https", 443))


if urllib_request is not None:

    class RedirectHandler(urllib_request.HTTPRedirectHandler):
        """urllib's redirects, but the caller's headers go to the URL's own origin only, never https -> http."""

        def __init__(self, private, dest):
            self.private = set(name.capitalize() for name in private)  # how urllib.Request stores header names
            self.dest = dest

        def redirect_request(self, req, fp, code, msg, headers, newurl):
            if (
                urllib_parse.urlsplit(req.full_url).scheme == "https"
                and urllib_parse.urlsplit(newurl).scheme != "https"
            ):
                fp.close()
                raise FetchError(
                    f"{self.dest}: {redact_url(req.full_url)} redirects to {redact_url(newurl)}, from https to plain "
                    "http: refused (the body and any headers would travel unencrypted). Fix: use an origin or mirror "
                    "that stays on https."
                )
            new = urllib_request.HTTPRedirectHandler.redirect_request(self, req, fp, code, msg, headers, newurl)
            if new is not None and not same_origin(req.full_url, newurl):
                # urllib copies every header onto the next request; an Authorization meant for the mirror must
                # not reach a CDN (or anyone) it redirects to.
                for name in self.private:
                    new.headers.pop(name, None)
                    new.unredirected_hdrs.pop(name, None)
            return new


def _validator(headers):
    """What If-Range may carry: a strong ETag, else Last-Modified (a weak ETag never matches in If-Range)."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return headers.get("Last-Modified")


class _Restart(Exception):
    """The partial file is not a head of what the origin serves now: it is gone; ask again from byte 0."""


class Fetcher:
    """Fetch url to dest. Construct, then call run(); plain data in, a plain dict out."""

    def __init__(
        self,
        url,
        dest,
        sha256=None,
        size=None,
        force=False,
        retries=5,
        retry_delay=2.0,
        timeout=60.0,
        headers=None,
        validate_certs=True,
        status_path=None,
        free_reserve=0,
        check_mode=False,
        sleep=time.sleep,
        free=free_bytes,
        chunk=CHUNK,
        opener=None,
        status_run_id=None,
        deadline=DEFAULT_DEADLINE,
        clock=time.monotonic,
    ):
        self.shown = redact_url(url)  # the only form of the URL any message, result or status file holds
        self.dest = os.path.abspath(dest)
        self.partial = partial_path(self.dest)
        self.kept = kept_path(self.dest)
        self.sha256 = normalise_sha256(sha256)
        self.size = size
        self.force = force
        self.retries = retries
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.url = self._take_userinfo(url)
        self.deadline = deadline
        self.clock = clock
        self.ends = None
        self.free_reserve = free_reserve
        self.check_mode = check_mode
        self.sleep = sleep
        self.free = free
        self.chunk = chunk
        self.status = StatusFile(status_path, self.shown, self.dest, run_id=status_run_id)
        self.opener = opener or self._make_opener(validate_certs, self.headers, self.dest)
        self.requests = 0
        self.downloaded = 0
        self.resumed_from = []
        self.validator = None  # ETag or Last-Modified of the body being assembled, for If-Range
        self.total = None  # its size, as the origin announced it
        self._digest = None
        self._digest_at = -1

    def _take_userinfo(self, url):
        """url without user:password@, which becomes a Basic Authorization header (urllib cannot send it), so that
        it is dropped on a redirect to another host like any header of the caller's."""
        parts = urllib_parse.urlsplit(url)
        if "@" not in parts.netloc:
            return url
        userinfo, _sep, host = parts.netloc.rpartition("@")
        user, _sep, password = userinfo.partition(":")
        token = f"{urllib_parse.unquote(user)}:{urllib_parse.unquote(password)}"
        self.headers.setdefault("Authorization", "Basic " + base64.b64encode(token.encode("utf-8")).decode("ascii"))
        return urllib_parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))

    @staticmethod
    def _make_opener(validate_certs, private=(), dest=""):
        handlers = [RedirectHandler(private, dest)]
        if not validate_certs:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            handlers.append(urllib_request.HTTPSHandler(context=context))
        return urllib_request.build_opener(*handlers)

    # ----------------------------------------------------------------------------------------------------------
    def run(self):
        """Make dest hold the verified file; returns what happened."""
        started = time.time()
        result = {
            "url": self.shown,
            "dest": self.dest,
            "changed": False,
            "fetched": False,
            "requests": 0,
            "downloaded": 0,
            "resumed_from": [],
            "removed_mismatch": False,
        }
        lock = None
        try:
            if self.size is not None and self.size < 0:
                raise FetchError(
                    f"size {self.size!r} for {self.dest} is negative. Fix: give the file's size in bytes, "
                    "or leave it out."
                )
            if self.deadline is None or self.deadline <= 0:
                raise FetchError(
                    f"deadline {self.deadline!r} for {self.dest} is not a number of seconds above 0. Fix: give the "
                    "longest time the download may take, in seconds."
                )
            if os.path.isdir(self.dest):
                raise FetchError(f"{self.dest} is a directory, not a file. Fix: point dest at the file's full path.")
            if not self.check_mode:
                # Held to the end of the fetch (or of its process): a download whose controller died goes on in
                # the background, and a re-run or a second controller waits here, then verifies what it placed.
                self._ensure_parent()
                lock = _progress.hold(lock_path(self.dest), waiting=self._waiting, sleep=self.sleep)
            if os.path.exists(self.dest) and not self.force:
                total = os.path.getsize(self.dest)
                self.status.update(phase="verify", bytes=0, total=total, force=True)
                have = hash_file(self.dest, chunk=self.chunk, progress=lambda done: self.status.update(bytes=done))
                if self.sha256 is None or have == self.sha256:
                    result.update(sha256=have, size=os.path.getsize(self.dest))
                    self.status.update(
                        phase="done", finished=True, bytes=result["size"], total=result["size"], force=True
                    )
                    return self._finish(result, started)
                # A file that fails its sum is not the file: it goes, so nothing wrong is left in place.
                result["removed_mismatch"] = True
                result["previous_sha256"] = have
                if not self.check_mode:
                    os.unlink(self.dest)
            result["changed"] = True
            if self.check_mode:
                result.update(sha256=self.sha256, size=self.size)
                return self._finish(result, started)
            self._ensure_parent()
            have = self._download()
            result.update(fetched=True, sha256=have, size=os.path.getsize(self.partial))
            self.status.update(phase="install", force=True)
            os.replace(self.partial, self.dest)
            self._forget()
            _fsync_dir(os.path.dirname(self.dest))
            self.status.update(phase="done", finished=True, force=True)
            return self._finish(result, started)
        except FetchError as exc:
            self.status.update(phase="failed", finished=True, failed=True, msg=str(exc), force=True)
            raise
        except OSError as exc:
            fix = (
                "free space on its file system, then run again"
                if exc.errno in DISK_FULL_ERRNOS
                else "check the path and its permissions"
            )
            msg = (
                f"{getattr(exc, 'filename', None) or self.dest}: {exc.strerror or exc} (while fetching "
                f"{self.shown}). Fix: {fix}."
            )
            self.status.update(phase="failed", finished=True, failed=True, msg=msg, force=True)
            raise FetchError(msg)
        finally:
            if lock is not None:
                _progress.release(lock, lock_path(self.dest))

    def _waiting(self, pid):
        self.status.update(phase=f"waiting for another fetch of this file (pid {pid}) to end", force=True)

    def _finish(self, result, started):
        result.update(
            requests=self.requests,
            downloaded=self.downloaded,
            resumed_from=list(self.resumed_from),
            seconds=round(time.time() - started, 3),
        )
        return result

    def _ensure_parent(self):
        parent = os.path.dirname(self.dest)
        if not os.path.isdir(parent):
            os.makedirs(parent)

    # ----------------------------------------------------------------------------------------------------------
    def _download(self):
        attempt = 0
        last = None
        self.ends = self.clock() + self.deadline
        while True:
            attempt += 1
            self._check_deadline()
            self.status.update(phase="download", attempt=attempt, force=True)
            try:
                digest = self._attempt()
                break
            except _Retry as exc:
                last = exc
                if attempt > self.retries:
                    kept = ""
                    if os.path.exists(self.partial):
                        kept = f" {human(os.path.getsize(self.partial))} of it are kept in {self.partial}."
                    raise FetchError(
                        f"{self.dest}: download from {self.shown} failed after {attempt} attempts: {last}.{kept} "
                        "Fix: check that the URL is reachable from this host (or set a mirror), then run again; the "
                        "transfer resumes."
                    )
                self.status.update(phase="retry", msg=str(exc), force=True)
                self.sleep(max(0.0, min(self.retry_delay * (2 ** (attempt - 1)), 60.0, self.ends - self.clock())))
        self.status.update(phase="verify", force=True)
        got = digest.hexdigest()
        size = os.path.getsize(self.partial)
        if self.size is not None and size != self.size:
            self._discard()
            raise FetchError(
                f"{self.dest}: size mismatch for {self.shown}: expected {self.size} bytes, got {size}. Nothing was "
                f"installed at {self.dest}. Fix: correct 'size' in the manifest, or check the origin."
            )
        if self.sha256 is not None and got != self.sha256:
            self._discard()
            raise FetchError(
                f"{self.dest}: sha256 mismatch for {self.shown}: expected {self.sha256}, got {got}. Nothing was "
                f"installed at {self.dest}. Fix: if the origin changed this file on purpose, update the sum (or "
                "re-pin); otherwise do not trust this origin."
            )
        return got

    def _check_deadline(self, done=None):
        if self.clock() < self.ends:
            return
        have = done if done is not None else (os.path.getsize(self.partial) if os.path.exists(self.partial) else 0)
        raise FetchError(
            f"{self.dest}: the download from {self.shown} did not finish within its deadline of {self.deadline:g} s "
            f"({human(have)} of {human(self.total) if self.total is not None else 'an unknown size'} received). Fix: "
            "raise deadline (model_weights_fetch_timeout in the model_weights role), or use a faster origin or "
            "mirror; what arrived is kept, and the next run resumes it if the origin still serves the same file."
        )

    def _discard(self):
        for path in (self.partial, self.kept):
            try:
                os.unlink(path)
            except OSError:
                pass

    def _forget(self):
        try:
            os.unlink(self.kept)
        except OSError:
            pass

    def _keep(self):
        """Write what identifies the body being assembled beside the partial file (atomically), for the next run.

        Without a validator nothing is kept, and a later run starts over: nothing else tells it whether the origin
        still serves the file the partial is the head of.
        """
        if not self.validator:
            self._forget()
            return
        record = {"origin": _origin_key(self.url), "validator": self.validator, "total": self.total}
        # Durable: a later run resumes against it after a crash. Its temp name starts as the side files' do, so the
        # checkout's excludes (.NAME.gtsfm-*) cover it too.
        _progress.write_json(self.kept, record, durable=True, temp_prefix=os.path.basename(self.kept) + ".")

    def _recall(self):
        """(validator, total) kept beside the partial file by an earlier run for this URL, or None."""
        try:
            with open(self.kept) as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            return None
        if (
            not isinstance(record, dict)
            or record.get("origin") != _origin_key(self.url)
            or not record.get("validator")
            or not isinstance(record.get("total"), int)
        ):
            return None
        return record["validator"], record["total"]

    def _partial_digest(self, offset):
        """A running SHA-256 of the partial file's first offset bytes (reused within a run, else re-read)."""
        if self._digest is not None and self._digest_at == offset:
            return self._digest
        digest = hashlib.sha256()
        if offset:
            with open(self.partial, "rb") as handle:
                remaining = offset
                while remaining:
                    block = handle.read(min(self.chunk, remaining))
                    if not block:
                        break
                    digest.update(block)
                    remaining -= len(block)
        self._digest, self._digest_at = digest, offset
        return digest

    def _restart(self):
        self._discard()
        self._digest, self._digest_at = None, -1
        self.validator = None
        self.total = None

    def _open(self, offset):
        headers = {"User-Agent": "gtsfm.cluster-fetch_verified", "Accept-Encoding": "identity"}
        headers.update(self.headers)
        if offset:
            headers["Range"] = f"bytes={offset}-"
            headers["If-Range"] = self.validator
        request = urllib_request.Request(self.url, headers=headers)
        self.requests += 1
        try:
            return self.opener.open(request, timeout=max(0.001, min(self.timeout, self.ends - self.clock())))
        except urllib_error.HTTPError as exc:
            if exc.code == 416:
                return exc
            reason = f"HTTP {exc.code} {exc.reason}"
            exc.close()
            if exc.code in RETRY_STATUSES:
                raise _Retry(reason)
            raise FetchError(
                f"{self.dest}: the origin answered {reason} for {self.shown}. Fix: check the URL (or the "
                "mirror base URL)."
            )
        except urllib_error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                raise FetchError(
                    f"{self.dest}: the TLS certificate of {self.shown} does not verify: {exc.reason}. Fix: use a "
                    "mirror with a valid certificate, or set validate_certs to false if you accept that risk."
                )
            raise _Retry(f"cannot reach the origin: {exc.reason}")
        except (socket.timeout, http_client.HTTPException, OSError) as exc:
            raise _Retry(f"connection failed: {exc}")

    def _attempt(self):
        """One attempt: resume (or start) the partial file and read the body to its end."""
        while True:
            offset = os.path.getsize(self.partial) if os.path.exists(self.partial) else 0
            if offset and self.validator is None:
                # A partial file of an earlier run: resumed only against the same file, which its kept validator
                # (and size) identify; without them the origin may now serve another file, and a head of the old
                # one joined to a tail of the new one must never be assembled.
                kept = self._recall()
                if kept is None:
                    self._restart()
                    offset = 0
                else:
                    self.validator, self.total = kept
            try:
                return self._attempt_at(offset)
            except _Restart:
                if not offset:
                    raise _Retry("the origin answered a request for the whole file with a partial one")
                # Once more, from byte 0 (the partial file is gone).

    def _attempt_at(self, offset):
        response = self._open(offset)
        try:
            status = response.getcode() if hasattr(response, "getcode") else response.code
            headers = response.headers
            if status == 416:
                _start, total = _content_range(headers.get("Content-Range"))
                if offset and total is not None and offset == total == self.total:
                    return self._partial_digest(offset)  # the partial file already holds the whole body
                self._restart()
                raise _Restart()
            if status == 206:
                start, total = _content_range(headers.get("Content-Range"))
                seen = _validator(headers)
                if (
                    start != offset
                    or total is None
                    or (self.total is not None and total != self.total)
                    or (seen is not None and seen != self.validator)
                ):
                    # Not the rest of the file the partial is the head of (another size, another validator, or
                    # not where it was asked): an origin that ignores If-Range.
                    self._restart()
                    raise _Restart()
                self.resumed_from.append(offset)
            elif status == 200:
                if offset:
                    self._restart()  # no Range support, or the file changed (If-Range): take the whole body
                    offset = 0
                length = headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                self.validator = _validator(headers)
                self.total = total
                if self.validator is None or total is None:
                    self.validator = None  # nothing to resume against safely: a break-off starts over
            else:
                raise _Retry(f"unexpected HTTP {status}")
            limit = self._check_sizes(offset, total)
            digest = self._partial_digest(offset)
            done = offset
            self.status.update(phase="download", bytes=done, total=total, force=True)
            read = getattr(response, "read1", None) or response.read
            # Unbuffered: what a write could not put on a full disk is never written again by a flush or a close,
            # so the partial file stays a head of the body, whole to its last byte.
            with open(self.partial, "ab" if offset else "wb", buffering=0) as handle:
                self._keep()
                try:
                    while True:
                        # read1 returns what one receive brings, so the deadline is looked at after each one (at
                        # least every `timeout` seconds), however slowly the origin drips.
                        block = read(self.chunk)
                        if not block:
                            break
                        if done + len(block) > limit[0]:
                            self._refuse_excess(limit, done + len(block))
                        self._write(handle, block)
                        digest.update(block)
                        done += len(block)
                        self.downloaded += len(block)
                        self._digest_at = done
                        self.status.update(bytes=done, downloaded=self.downloaded)
                        self._check_deadline(done)
                except (socket.timeout, http_client.HTTPException, OSError) as exc:
                    handle.flush()
                    os.fsync(handle.fileno())
                    raise _Retry(f"the transfer broke off at byte {done}: {exc or type(exc).__name__}")
                except FetchError:
                    handle.flush()
                    raise
                handle.flush()
                os.fsync(handle.fileno())
            self.status.update(bytes=done, downloaded=self.downloaded, force=True)
            if total is not None and done < total:
                raise _Retry(f"the transfer broke off at byte {done} of {total}")
            return digest
        finally:
            response.close()

    def _write(self, handle, block):
        view = memoryview(block)
        try:
            while view:
                view = view[handle.write(view) :]
        except OSError as exc:
            if exc.errno not in DISK_FULL_ERRNOS:
                raise
            raise FetchError(self._disk_full(exc)) from None

    def _disk_full(self, exc):
        directory = os.path.dirname(self.dest)
        have = os.path.getsize(self.partial) if os.path.exists(self.partial) else 0
        total = human(self.total) if self.total is not None else "an unknown size"
        return (
            f"{self.dest}: the file system of {directory} filled up during the download from {self.shown} "
            f"({exc.strerror or exc}), {human(have)} of {total} received. They are kept in {self.partial}, and the "
            f"next run resumes from there. Fix: free space there ({human(self.free(directory))} free now; remove the "
            "partial file too to start over), or put the file on a larger file system (an absolute dest), then run "
            "again."
        )

    def _check_sizes(self, offset, total):
        """Refuse a body that cannot fit; return (the most bytes the file may reach, why) for the read loop."""
        if total is not None and self.size is not None and total != self.size:
            self._discard()
            raise FetchError(
                f"{self.dest}: size mismatch for {self.shown}: the manifest says {self.size} bytes, the origin "
                f"announces {total}. Nothing was installed at {self.dest}. Fix: correct 'size' in the manifest, or "
                "check the origin."
            )
        directory = os.path.dirname(self.dest)
        have = self.free(directory)
        expected = total if total is not None else self.size
        if expected is not None:
            need = expected - offset + self.free_reserve
            if need > have:
                raise FetchError(
                    f"{self.dest}: not enough free space in {directory} for {self.shown}: {human(expected - offset)} "
                    f"still to download ({expected - offset} bytes), {human(have)} free. Fix: free space there, or put "
                    "the file on a larger file system (an absolute dest)."
                )
            return expected, "size" if total is None else "announced"
        return offset + max(have - self.free_reserve, 0), "free"

    def _refuse_excess(self, limit, reached):
        most, why = limit
        self._discard()
        if why == "size":
            raise FetchError(
                f"{self.dest}: {self.shown} sends more than the {most} bytes 'size' gives (no Content-Length). Nothing "
                f"was installed at {self.dest}. Fix: correct 'size' in the manifest, or check the origin."
            )
        if why == "announced":
            raise FetchError(
                f"{self.dest}: {self.shown} sends more than the {most} bytes it announced. Nothing was installed at "
                f"{self.dest}. Fix: check the origin (or its proxy)."
            )
        directory = os.path.dirname(self.dest)
        raise FetchError(
            f"{self.dest}: {self.shown} sends no Content-Length, and its body outgrew the free space in {directory} "
            f"({human(most)}, beyond a reserve of {human(self.free_reserve)}) at {reached} bytes. Nothing was "
            f"installed at {self.dest}. Fix: give the file's 'size' if you know it, free space there, or put the file "
            "on a larger file system (an absolute dest)."
        )


def _origin_key(url):
    """What a kept record is tied to: scheme, host and path (a signed query may differ each run for one file)."""
    parts = urllib_parse.urlsplit(url)
    return hashlib.sha256((f"{parts.scheme}://{parts.netloc.lower()}{parts.path}").encode()).hexdigest()


def fetch(url, dest, **options):
    """Make dest hold the verified content of url; see Fetcher for the options."""
    return Fetcher(url, dest, **options).run()
