"""Serve a wheelhouse directory over HTTP the way PyPI serves files, and count what is fetched.

    python3 scripts/wheelhouse_server.py DIR [--address 10.213.x.1] [--port 0]

The root page lists every wheel as a find-links page (conda_env_find_links) with PEP 658 metadata
(`data-core-metadata` and `<wheel>.metadata`), as PyPI and its mirrors do: uv then reads a wheel's metadata from
that small file and fetches the wheel itself once. (A plain directory listing makes uv fetch every wheel twice,
once to read its metadata.) Tests and benchmarks start it in-process with `serve()` and read the counters.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import hashlib
import html
import http.server
import re
import threading
import time
import zipfile
from pathlib import Path


class Counts:
    """Requests answered and bytes sent, per path; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: collections.Counter = collections.Counter()
        self.bytes: collections.Counter = collections.Counter()

    def add(self, path: str, size: int) -> None:
        with self.lock:
            self.requests[path] += 1
            self.bytes[path] += size

    def wheels(self) -> dict[str, int]:
        with self.lock:
            return {p.rsplit("/", 1)[-1]: n for p, n in self.requests.items() if p.endswith(".whl")}

    def total_bytes(self) -> int:
        with self.lock:
            return sum(self.bytes.values())

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.requests)


def wheel_metadata(directory: Path) -> dict[str, bytes]:
    """Each wheel's METADATA file, by wheel name."""
    found = {}
    for wheel in sorted(directory.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            name = next(n for n in archive.namelist() if re.match(r"^[^/]+\.dist-info/METADATA$", n))
            found[wheel.name] = archive.read(name)
    return found


class Uplink:
    """One shared link for everything the server sends (a token bucket): a package source behind one uplink."""

    def __init__(self, bits_per_second: int | None) -> None:
        self.rate = bits_per_second / 8 if bits_per_second else None
        self.lock = threading.Lock()
        self.next_free = time.monotonic()

    def send(self, out, data: bytes) -> None:
        if self.rate is None:
            out.write(data)
            return
        for start in range(0, len(data), 65536):
            chunk = data[start : start + 65536]
            with self.lock:
                now = time.monotonic()
                begin = max(now, self.next_free)
                self.next_free = begin + len(chunk) / self.rate
            if begin > now:
                time.sleep(begin - now)
            out.write(chunk)


class Handler(http.server.SimpleHTTPRequestHandler):
    counts: Counts
    metadata: dict[str, bytes]
    page: bytes
    uplink: Uplink

    def copyfile(self, source, outputfile) -> None:
        while True:
            data = source.read(65536)
            if not data:
                return
            self.uplink.send(outputfile, data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0].lstrip("/")
        if path in ("", "index.html"):
            return self.send_bytes(self.page, "text/html")
        if path.endswith(".metadata") and path[: -len(".metadata")] in self.metadata:
            return self.send_bytes(self.metadata[path[: -len(".metadata")]], "text/plain")
        target = Path(self.directory) / path
        if target.is_file():
            self.counts.add(self.path, target.stat().st_size)
        return super().do_GET()

    def send_bytes(self, body: bytes, kind: str) -> None:
        self.counts.add(self.path, len(body))
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.uplink.send(self.wfile, body)

    def log_message(self, *args) -> None:  # quiet
        pass


@contextlib.contextmanager
def serve(directory: Path, address: str = "127.0.0.1", port: int = 0, rate: int | None = None):
    """Yield (url, counts) while the server runs in a thread; rate (bits/s) caps what it sends in all."""
    metadata = wheel_metadata(directory)
    page = (
        "<!DOCTYPE html><html><body>\n"
        + "".join(
            f'<a href="{html.escape(name)}" '
            f'data-core-metadata="sha256={hashlib.sha256(body).hexdigest()}">{html.escape(name)}</a><br>\n'
            for name, body in metadata.items()
        )
        + "</body></html>\n"
    )
    counts = Counts()
    handler = functools.partial(
        type(
            "WheelhouseHandler",
            (Handler,),
            {"counts": counts, "metadata": metadata, "page": page.encode(), "uplink": Uplink(rate)},
        ),
        directory=str(directory),
    )
    server = http.server.ThreadingHTTPServer((address, port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{address}:{server.server_address[1]}/", counts
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    with serve(args.directory, args.address, args.port) as (url, counts):
        print(url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        for path, n in sorted(counts.snapshot().items()):
            print(n, path)


if __name__ == "__main__":
    main()
