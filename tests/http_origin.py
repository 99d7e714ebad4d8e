"""A small HTTP origin for tests: serves a directory with Range support, counts requests, breaks on request.

It can also misbehave as origins do: redirect (to another origin: two Origins on 127.0.0.1 and 127.0.0.2 are two
hosts), send no validators, ignore If-Range, send a body without Content-Length, or drip it slowly.

Used by the unit tests of the fetch logic (bound to loopback) and by the multihost model_weights tests (bound to
the test bed network's gateway address, so the nodes reach it). Runs in a thread of the test process.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class Served:
    """One request the origin answered."""

    method: str
    path: str
    range: str | None
    status: int
    sent: int
    if_range: str | None = None
    authorization: str | None = None
    headers: dict | None = None


class Origin:
    """Serve root over HTTP on host (port chosen by the OS); see requests, cut_after and fail_next."""

    def __init__(self, root: Path, host: str = "127.0.0.1"):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.requests: list[Served] = []
        self.cut_after: dict[str, int] = {}  # path -> bytes of body to send before dropping the connection (once)
        self.fail_next: dict[str, list[int]] = {}  # path -> statuses to answer the next requests with
        self.ranges = True  # False: ignore Range like a plain server
        self.validators = True  # False: send neither ETag nor Last-Modified
        self.if_range = True  # False: serve a Range even when If-Range does not match (a naive server)
        self.redirects: dict[str, tuple[int, str]] = {}  # path -> (status, Location)
        self.no_length: set[str] = set()  # paths sent without Content-Length, the end marked by closing
        self.drip: dict[str, tuple[int, float]] = {}  # path -> (bytes per write, seconds between writes)
        self.lock = threading.Lock()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                origin.handle(self, body=False)

            def do_GET(self):
                origin.handle(self, body=True)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        # A short poll interval: shutdown() waits up to one, at every test's teardown.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- test side ---------------------------------------------------------------------------------------------
    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def put(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return path

    def gets(self, name: str | None = None) -> list[Served]:
        with self.lock:
            return [
                r for r in self.requests if r.method == "GET" and (name is None or urlsplit(r.path).path == "/" + name)
            ]

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()

    def __enter__(self) -> Origin:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- server side -------------------------------------------------------------------------------------------
    def _record(self, handler, status: int, sent: int) -> None:
        with self.lock:
            self.requests.append(
                Served(
                    handler.command,
                    handler.path,
                    handler.headers.get("Range"),
                    status,
                    sent,
                    handler.headers.get("If-Range"),
                    handler.headers.get("Authorization"),
                    dict(handler.headers.items()),
                )
            )

    def handle(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        name = urlsplit(handler.path).path.lstrip("/")  # a query (a token, say) names no other file
        with self.lock:
            queued = self.fail_next.get(name) or []
            failure = queued.pop(0) if queued else None
            cut = self.cut_after.pop(name, None) if body else None
        redirect = self.redirects.get(name)
        if redirect is not None:
            self._record(handler, redirect[0], 0)
            handler.send_response(redirect[0])
            handler.send_header("Location", redirect[1])
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if failure is not None:
            self._record(handler, failure, 0)
            handler.send_response(failure)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        path = self.root / name
        if not path.is_file() or ".." in Path(name).parts:
            self._record(handler, 404, 0)
            handler.send_response(404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        stat = path.stat()
        size = stat.st_size
        etag = f'"{size:x}-{stat.st_mtime_ns:x}"'
        start, end, status = 0, size - 1, 200
        match = RANGE_RE.match(handler.headers.get("Range") or "")
        if_range = handler.headers.get("If-Range")
        if self.ranges and match and (if_range is None or if_range == etag or not self.if_range):
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else size - 1
            if start >= size:
                self._record(handler, 416, 0)
                handler.send_response(416)
                handler.send_header("Content-Range", f"bytes */{size}")
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                return
            end = min(end, size - 1)
            status = 206
        length = end - start + 1
        unbounded = name in self.no_length
        handler.send_response(status)
        if unbounded:
            handler.send_header("Connection", "close")
        else:
            handler.send_header("Content-Length", str(length))
        if self.validators:
            handler.send_header("ETag", etag)
        handler.send_header("Accept-Ranges", "bytes" if self.ranges else "none")
        if status == 206:
            handler.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        if cut is not None and not unbounded:
            handler.send_header("Connection", "close")
        handler.end_headers()
        sent = 0
        if body:
            limit = length if cut is None else min(cut, length)
            step, pause = self.drip.get(name, (256 * 1024, 0.0))
            try:
                with path.open("rb") as source:
                    source.seek(start)
                    while sent < limit:
                        block = source.read(min(step, limit - sent))
                        if not block:
                            break
                        handler.wfile.write(block)
                        sent += len(block)
                        if pause:
                            handler.wfile.flush()
                            time.sleep(pause)
                handler.wfile.flush()
            except ConnectionError:  # the client went away (it refused the body): count what was sent
                handler.close_connection = True
            if cut is not None or unbounded:
                handler.close_connection = True
        self._record(handler, status, sent)


def main() -> None:
    """Serve a directory until killed (for molecule): write the base URL to a file, log each request as JSON."""
    import argparse
    import json
    import signal
    import time

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--bind", required=True, help="address to bind (a test bed's gateway)")
    parser.add_argument("--root", required=True, help="directory to serve")
    parser.add_argument("--url-file", required=True, help="where to write the base URL once serving")
    parser.add_argument("--log", required=True, help="JSON lines, one per request answered")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with Origin(Path(args.root), host=args.bind) as origin:
        Path(args.url_file).write_text(origin.base + "\n")
        seen = 0
        try:
            while True:
                time.sleep(0.2)
                with origin.lock:
                    new, seen = origin.requests[seen:], len(origin.requests)
                with open(args.log, "a") as log:
                    for served in new:
                        log.write(json.dumps(served.__dict__) + "\n")
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
