# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The source side of gtsfm.cluster.broadcast. Private to this collection: no stable interface.

Plain functions and small classes over the local machine and the ``ssh`` client, so unit tests can drive them
without AnsibleModule. ``broadcast()`` is the whole run:

1. identify the source content (cached in a record beside it, keyed by its on-disk signature);
2. probe every target in parallel (does it hold the content already? room? zstd?);
3. stream once along the chain of the targets that need it; every hop reports back through the chain;
4. repair: re-probe the targets without a verified copy and chain again over those that answer;
5. report per node; the caller fails naming nodes without a copy.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import random
import stat
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

# ansible-core 2.21's sanity asks for AnsibleModule.run_command; these are plain functions streaming tar, zstd
# and ssh through pipes while they run, which run_command (one command run to its end) cannot do.
# pylint: disable=ansible-bad-function
from ansible_collections.gtsfm.cluster.plugins.module_utils import _broadcast_hop as hop
from ansible_collections.gtsfm.cluster.plugins.module_utils import _progress

KEEPALIVE_COUNT = 3
PROBE_PARALLEL = 16


class BroadcastError(Exception):
    """Bad input or an unusable source: one sentence naming what and how to fix it."""


def default_status_file(path):
    """Where the status of a broadcast of path is written unless status_file says otherwise."""
    key = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return os.path.join(os.path.expanduser("~"), ".cache", "gtsfm.cluster", f"broadcast-{key}.json")


def order_hosts(hosts, order):
    """Targets in chain order, duplicates dropped (first kept)."""
    seen = []
    for host in hosts:
        if host not in seen:
            seen.append(host)
    if order == "sorted":
        return sorted(seen)
    if order == "shuffle":
        random.shuffle(seen)
    return seen


def ssh_options(params):
    """ssh arguments every connection of the broadcast uses (before the host name)."""
    connect = max(1, int(params["connect_timeout"]))
    alive = max(1, int(params["keepalive"]))
    opts = [
        "-T",
        "-x",
        "-a",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"ConnectTimeout={connect}",
        "-o",
        f"ServerAliveInterval={alive}",
        "-o",
        f"ServerAliveCountMax={KEEPALIVE_COUNT}",
        "-o",
        "Compression=no",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ClearAllForwardings=yes",
    ]
    if params.get("cipher"):
        opts += ["-c", params["cipher"]]
    return opts + list(params.get("ssh_args") or [])


def check_exclude(patterns):
    """The exclude patterns as a plain list, or BroadcastError naming the first bad one and why."""
    patterns = [str(p) for p in (patterns or [])]
    for pattern in patterns:
        problem = hop.exclude_problem(pattern)
        if problem:
            raise BroadcastError(f"exclude pattern {pattern!r}: {problem}.")
    return patterns


def stat_source(path, exclude=None):
    """kind, size, mode, mtime and on-disk signature of the source; its digest too when the record beside it is
    current (digest None otherwise: source_digest() computes it). exclude: patterns a tree is read without."""
    if not os.path.isabs(path):
        raise BroadcastError(f"path must be absolute (the same path on every node), got {path!r}")
    exclude = check_exclude(exclude)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise BroadcastError(
            f"path {path}: {exc.strerror} on the source node. Fix: point path at an existing file or directory there "
            "(delegate_to names the source)."
        )
    if stat.S_ISREG(st.st_mode):
        kind, size = "file", st.st_size
    elif stat.S_ISDIR(st.st_mode):
        kind = "tree"
    else:
        raise BroadcastError(f"path {path} is neither a file nor a directory on the source node")
    if exclude and kind == "file":
        raise BroadcastError(
            f"exclude applies to a directory tree, but {path} is a file on the source node. Fix: drop "
            "exclude, or broadcast the directory."
        )
    try:
        if kind == "file":
            sig = hop.signature(path, kind)
        else:
            digest, size = hop.tree_manifest(path, content=False, exclude=exclude)[:2]
            sig = "tree:" + digest
    except hop.HopError as exc:
        raise BroadcastError(str(exc))
    except OSError as exc:
        raise BroadcastError(f"cannot read {exc.filename or path} on the source node: {exc.strerror}")
    record = hop.read_record(path)
    cached = bool(record and record.get("kind") == kind and record.get("signature") == sig and record.get("digest"))
    return {
        "path": path,
        "kind": kind,
        "size": size,
        "mode": stat.S_IMODE(st.st_mode),
        "mtime_ns": st.st_mtime_ns,
        "signature": sig,
        "digest": record["digest"] if cached else None,
        "cached": cached,
        "exclude": exclude,
    }


def source_digest(source, check_mode=False):
    """Fill source['digest'] (reading every byte unless cached) and cache it in a record beside the source."""
    if source["digest"]:
        return source["digest"]
    path, kind = source["path"], source["kind"]
    try:
        source["digest"] = hop.content_digest(path, kind, source.get("exclude"))
    except hop.HopError as exc:
        raise BroadcastError(str(exc))
    except OSError as exc:
        raise BroadcastError(f"cannot read {exc.filename or path} on the source node: {exc.strerror}")
    if not check_mode:
        try:
            hop.write_record(
                path,
                {
                    "by": "gtsfm.cluster.broadcast",
                    "path": path,
                    "kind": kind,
                    "digest": source["digest"],
                    "size": source["size"],
                    "signature": source["signature"],
                    "written": time.time(),
                },
            )
        except OSError:
            pass
    return source["digest"]


def describe_source(path, check_mode=False, exclude=None):
    """stat_source() and source_digest() in one."""
    source = stat_source(path, exclude)
    source_digest(source, check_mode)
    return source


class Status:
    """The broadcast's progress record (module_utils/_progress): bytes per target, their mean as the step's done."""

    def __init__(self, path, source, hosts, run_id=None):
        self.writer = _progress.Writer(
            path,
            run_id=run_id,
            what=os.path.basename(source["path"].rstrip("/")) or "/",
            total=source["size"],
            phase="probing",
            kind=source["kind"],
            nodes=dict((h, {"state": "pending", "done": 0}) for h in hosts),
        )

    def _mean(self):
        nodes = [n for n in self.writer.data["nodes"].values() if n.get("state") not in ("held", "failed")]
        # Nothing to send is as good as all sent.
        return int(sum(n.get("done") or 0 for n in nodes) / len(nodes)) if nodes else self.writer.data["total"]

    def node(self, host, final=False, **fields):
        """Update a node's entry; a final state (received, failed) is written at once."""
        if "bytes" in fields:
            fields["done"] = fields.pop("bytes")
        if fields.get("state") == "received":
            fields["done"] = self.writer.data["total"]  # the content's size; a hop's byte count includes tar's framing
        if fields.get("state") == "skipped":
            fields["state"] = "held"  # what a person reads: the node has it already
        with self.writer.lock:
            self.writer.data["nodes"].setdefault(host, {}).update(fields)
            self.writer.data["done"] = self._mean()
        self.writer.write(force=final)

    def phase(self, phase, finished=False, result=None, msg="", **fields):
        if finished:
            self.writer.update(**fields)
            self.writer.finish(failed=phase == "failed", msg=msg, result=result, phase=phase)
        else:
            self.writer.update(force=True, phase=phase, **fields)


def run_remote(argv, timeout):
    """(rc, stdout, stderr) of a short ssh command; a hung one counts as failed."""
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return 255, b"", b"no answer within %d s" % timeout
    return proc.returncode, proc.stdout, proc.stderr


def _last_line(data):
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def probe_hosts(hosts, source, params, ctx):
    """{host: probe answer} for every host, in parallel; an unreachable host gets {'error': ...}."""
    cfg = {
        "mode_of_run": "probe",
        "path": source["path"],
        "kind": source["kind"],
        "checksum": params["checksum"],
        "python": params["remote_python"],
        "exclude": source.get("exclude") or [],
    }
    command = hop.hop_command(cfg, ctx["code"])

    def one(host):
        rc, out, err = run_remote(
            [ctx["ssh"]] + ctx["opts"] + [host, command], params["connect_timeout"] + params["timeout"] + 30
        )
        why = _last_line(err) or f"exit code {rc}"
        if rc == 255:
            return host, {
                "error": f"unreachable over ssh ({why}). Check that the node is up and that site.yml's "
                "ssh_mesh and known_hosts stages ran.",
                "unreachable": True,
            }
        if rc != 0:
            return host, {
                "error": f"the probe failed ({why}). Check that {params['remote_python']} runs there (remote_python)."
            }
        try:
            return host, json.loads(_last_line(out))
        except ValueError:
            return host, {"error": f"the probe answered {_last_line(out + err)!r}"}

    if not hosts:
        return {}
    with ThreadPoolExecutor(max_workers=min(PROBE_PARALLEL, len(hosts))) as pool:
        return dict(pool.map(one, hosts))


def feed_stdin(proc, chunks):
    """Write the byte strings of chunks to proc's stdin from a daemon thread and close it at the end; a reader that
    quits (a broken pipe) or a chunk source that fails to read ends the feeding, and proc sees end of input."""

    def feed():
        try:
            for data in chunks:
                hop.write_all(proc.stdin.fileno(), data)
        except OSError:
            pass
        finally:
            proc.stdin.close()

    feeder = threading.Thread(target=feed)
    feeder.daemon = True
    feeder.start()
    return feeder


def _payload(source, params, ctx):
    """(chunks iterator of the uncompressed payload, cleanup): the file's bytes or a tar stream of the tree."""
    bufsize = params["buffer_size"]
    if source["kind"] == "file":
        handle = open(source["path"], "rb")  # noqa: SIM115 - read by the chunks() generator, closed at its end

        def chunks():
            while True:
                data = handle.read(bufsize)
                if not data:
                    return
                yield data

        return chunks(), handle.close, None
    exclude = source.get("exclude")
    if not exclude:
        tar = subprocess.Popen(
            [ctx["tar"], "-C", source["path"], "-c", "-f", "-", "."], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    else:
        # tar reads the names the manifest keeps, so what travels is exactly what was identified (tar's own
        # --exclude globbing differs from ours).
        tar = subprocess.Popen(
            [ctx["tar"], "-C", source["path"], "-c", "-f", "-", "--no-recursion", "--null", "-T", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

        names = (
            ("." if rel == "." else "./" + rel).encode("utf-8", "surrogateescape") + b"\0"
            for rel, dummy in hop._walk(source["path"], exclude)
        )
        feed_stdin(tar, names)

    def chunks():
        while True:
            data = tar.stdout.read1(bufsize)
            if not data:
                return
            yield data

    def cleanup():
        if tar.poll() is None:
            tar.kill()
        tar.wait()

    return chunks(), cleanup, tar


class Chain:
    """One pass along the chain: feeds the first hop's ssh, hears every hop's status lines."""

    def __init__(self, hosts, source, params, ctx, status, compress):
        self.hosts = hosts
        self.source = source
        self.params = params
        self.ctx = ctx
        self.status = status
        self.compress = compress
        self.results = {}
        self.progress = dict((h, 0) for h in hosts)
        self.started = time.monotonic()
        self.stderr_tail = []

    def _listen(self, stream):
        for raw in stream:
            try:
                event = json.loads(raw.decode())
            except ValueError:
                continue
            host, kind = event.get("n"), event.get("e")
            if host not in self.progress:
                continue
            if kind == "progress":
                self.progress[host] = event.get("b", 0)
                self.status.node(
                    host, state="receiving", bytes=event.get("b", 0), seconds=round(time.monotonic() - self.started, 1)
                )
            elif kind in ("done", "failed", "lost") and host not in self.results:
                seconds = round(time.monotonic() - self.started, 3)
                self.results[host] = dict(event, s=seconds)
                self.status.node(
                    host,
                    final=True,
                    state="received" if kind == "done" else "failed",
                    bytes=event.get("b", self.progress[host]),
                    seconds=seconds,
                    error=event.get("error"),
                )

    def _stderr(self, stream):
        for raw in stream:
            self.stderr_tail = (self.stderr_tail + [raw.decode("utf-8", "replace").strip()])[-5:]

    def run(self):
        """Stream the payload once; returns {host: final event} for the hosts that reported."""
        params, source = self.params, self.source
        cfg = {
            "mode_of_run": "receive",
            "chain": self.hosts,
            "path": source["path"],
            "kind": source["kind"],
            "exclude": source.get("exclude") or [],
            "digest": source["digest"],
            "size": source["size"],
            "mode": source["mode"],
            "mtime_ns": source["mtime_ns"],
            "compress": self.compress,
            "bufsize": params["buffer_size"],
            "timeout": params["timeout"],
            "token": uuid.uuid4().hex[:12],
            "python": params["remote_python"],
            "ssh": ["ssh"] + self.ctx["opts"],
        }
        argv = [self.ctx["ssh"]] + self.ctx["opts"] + [self.hosts[0], hop.hop_command(cfg, self.ctx["code"])]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        listener = threading.Thread(target=self._listen, args=(proc.stdout,))
        listener.daemon = True
        listener.start()
        errors = threading.Thread(target=self._stderr, args=(proc.stderr,))
        errors.daemon = True
        errors.start()
        chunks, cleanup, tar = _payload(source, params, self.ctx)
        digest = hashlib.sha256()
        size = [0]
        broken = None
        zstd = None
        feeder = None
        fd = proc.stdin.fileno()
        try:

            def hashed():
                for data in chunks:
                    digest.update(data)
                    size[0] += len(data)
                    yield data

            if self.compress:
                zstd = subprocess.Popen(
                    [self.ctx["zstd"], "-q", "-c", "-T0", f"-{params['compress_level']}"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
                feeder = feed_stdin(zstd, hashed())

                def wire_chunks():
                    while True:
                        data = zstd.stdout.read1(params["buffer_size"])
                        if not data:
                            return
                        yield data

                wire = wire_chunks()
            else:
                wire = hashed()
            for data in wire:
                hop.write_all(fd, hop.HEADER.pack(len(data)))
                hop.write_all(fd, data)
            if feeder is not None:
                feeder.join()
            if tar is not None and tar.wait() != 0:
                raise BroadcastError(
                    f"tar -c of {source['path']} failed on the source: "
                    f"{tar.stderr.read().decode('utf-8', 'replace').strip()}"
                )
            hop.write_all(fd, hop.trailer({"digest": "sha256:" + digest.hexdigest(), "bytes": size[0]}))
        except OSError as exc:
            broken = f"the stream to it broke ({exc.strerror or exc})"
        finally:
            cleanup()
            if zstd is not None and zstd.poll() is None:
                zstd.kill()
            try:
                proc.stdin.close()
            except OSError:
                pass
        rc = proc.wait()
        listener.join()
        errors.join()
        first = self.hosts[0]
        if first not in self.results:
            detail = "; ".join(line for line in self.stderr_tail if line) or broken or f"exit code {rc}"
            self.results[first] = {
                "n": first,
                "e": "lost",
                "b": self.progress[first],
                "error": f"connection lost during the transfer (ssh exit {rc}: {detail})",
                "s": round(time.monotonic() - self.started, 3),
            }
        if source["kind"] == "file" and "sha256:" + digest.hexdigest() != source["digest"] and size[0]:
            raise BroadcastError(
                f"{source['path']} changed on the source while it was being sent; run again once it is stable"
            )
        return self.results


def broadcast(params, check_mode, ctx, warn):
    """Run the broadcast described by params; returns the module result (with 'failed' and 'msg' on failure).

    ctx: {'ssh': ssh binary, 'tar': tar binary, 'zstd': zstd binary or None, 'code': the hop program, shipped}.
    """
    started = time.monotonic()
    if check_mode and os.path.isabs(params["path"]) and not os.path.lexists(params["path"]):
        return _not_there_yet(params, started)
    source = stat_source(params["path"], params.get("exclude"))
    hosts = order_hosts(params["hosts"], params["order"])
    ctx = dict(ctx, opts=ssh_options(params))
    status = Status(
        None if check_mode else (params["status_file"] or default_status_file(source["path"])),
        source,
        hosts,
        run_id=params.get("status_run_id"),
    )
    nodes = dict((h, {"status": "pending"}) for h in hosts)
    # The probes ask each node what it holds; meanwhile the source hashes its content (unless cached).
    with ThreadPoolExecutor(max_workers=1) as pool:
        probing = pool.submit(probe_hosts, hosts, source, params, ctx)
        source_digest(source, check_mode)
        answers = probing.result()
    need = []
    for host in hosts:
        verdict, why = hop.decide(answers[host], source["path"], source["kind"], source["digest"], source["size"])
        if verdict == "have":
            nodes[host] = {"status": "skipped", "bytes": 0, "why": why}
            status.node(host, state="skipped")
        elif verdict == "error":
            nodes[host] = {"status": "failed", "error": why}
            status.node(host, state="failed", error=why)
        else:
            need.append(host)
    result = {
        "broadcast_path": source["path"],
        "kind": source["kind"],
        "size": source["size"],
        "digest": source["digest"],
        "nodes": nodes,
        "changed": False,
        "rounds": 0,
        "compressed": False,
    }
    if check_mode:
        for host in need:
            nodes[host] = {"status": "would receive", "bytes": source["size"]}
        result["changed"] = bool(need)
        return _finish(result, started, status)
    compress = bool(params["compress"])
    if compress and need and (not ctx.get("zstd") or not all(answers[h].get("zstd") for h in need)):
        missing = [h for h in need if not answers[h].get("zstd")]
        warn(f"compress: zstd is missing on {', '.join(missing) or 'the source'}; sending uncompressed.")
        compress = False
    result["compressed"] = compress
    rounds = 0
    while need and rounds <= params["repair_rounds"]:
        rounds += 1
        status.phase("sending" if rounds == 1 else "repairing", round=rounds)
        events = Chain(need, source, params, ctx, status, compress).run()
        for host in need:
            event = events.get(host)
            if event and event.get("e") == "done":
                seconds = max(event["s"], 0.001)
                nodes[host] = {
                    "status": "received",
                    "bytes": source["size"],
                    "wire_bytes": event.get("b", 0),
                    "seconds": event["s"],
                    "rate_mbps": round(source["size"] * 8 / seconds / 1e6, 1),
                    "round": rounds,
                }
            elif event:
                nodes[host] = {"status": "failed", "error": event.get("error"), "bytes": 0, "round": rounds}
            else:
                nodes[host] = {
                    "status": "failed",
                    "bytes": 0,
                    "round": rounds,
                    "error": "no report: the chain broke before it",
                }
        left = [h for h in need if nodes[h]["status"] != "received"]
        if not left or rounds > params["repair_rounds"]:
            break
        status.phase("probing", round=rounds)
        answers = probe_hosts(left, source, params, ctx)
        need = []
        for host in left:
            verdict, why = hop.decide(answers[host], source["path"], source["kind"], source["digest"], source["size"])
            if verdict == "have":
                nodes[host] = {
                    "status": "received",
                    "bytes": source["size"],
                    "round": rounds,
                    "why": "placed, its report was lost",
                }
            elif verdict == "error":
                nodes[host]["error"] = f"{nodes[host].get('error')}; then: {why}"
            else:
                need.append(host)
    result["rounds"] = rounds
    result["changed"] = any(n["status"] == "received" for n in nodes.values())
    return _finish(result, started, status)


def _not_there_yet(params, started):
    """Check mode before the source exists: the step that makes it (a build, a copy) only said it would, so every
    target would receive it; nothing is asked of them."""
    hosts = order_hosts(params["hosts"], params["order"])
    result = {
        "broadcast_path": params["path"],
        "kind": None,
        "size": None,
        "digest": None,
        "nodes": dict((h, {"status": "would receive"}) for h in hosts),
        "changed": bool(hosts),
        "rounds": 0,
        "compressed": False,
    }
    return _finish(result, started, Status(None, {"path": params["path"], "kind": None, "size": 0}, hosts))


def _finish(result, started, status):
    nodes = result["nodes"]
    # Not 'skipped'/'failed': Ansible reads those keys of a result as the task's own state.
    for key, state in (
        ("received", "received"),
        ("held", "skipped"),
        ("failed_nodes", "failed"),
        ("would_receive", "would receive"),
    ):
        result[key] = [h for h, n in nodes.items() if n["status"] == state]
    result["seconds"] = round(time.monotonic() - started, 3)
    if result["failed_nodes"]:
        failed = "; ".join(f"{h} ({nodes[h].get('error')})" for h in result["failed_nodes"])
        result["msg"] = (
            f"broadcast of {result['broadcast_path']}: no verified copy on {failed}. Nodes that hold it "
            "are skipped on a re-run; fix these and run again."
        )
    else:
        would = f", {len(result['would_receive'])} would receive" if result["would_receive"] else ""
        result["msg"] = (
            f"{result['broadcast_path']}: {len(result['received'])} received, "
            f"{len(result['held'])} already held it{would}"
        )
    status.phase(
        "failed" if result["failed_nodes"] else "done",
        finished=True,
        msg=result["msg"],
        result=dict((k, result[k]) for k in ("received", "held", "failed_nodes", "would_receive", "seconds")),
    )
    return result
