# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to gtsfm.cluster (no API promise): one Python environment at one path, built once, published atomically.

Layout on a node, for a prefix P:

    P                 a symlink to P.<fp12>: the only name users and Dask see
    P.<fp12>/         the environment, built (or copied) at exactly this path; finished once its record exists
    P.<fp12>/.gtsfm-env.json  its record: the fingerprint and what defines it; written last
    P.<fp12>.part/    a copy from a peer in progress (renamed to P.<fp12> once verified)

The fingerprint hashes what defines the environment (manager, requirements or env/lock file contents, python
version and path, platform), so a node can tell without asking any package source whether its environment is
the wanted one. An environment is built where it will be used (scripts and conda prefixes name that path); an
interrupted build leaves a directory without a record (or a ``.part`` copy) that no run takes for done; the link
is switched with rename(2), so it always names a finished environment.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import json
import os
import platform
import pwd
import re
import shutil
import stat
import tarfile
import zipfile

try:
    from html import unescape as html_unescape
    from urllib.parse import urljoin, urlparse
except ImportError:  # pragma: no cover - Python 2 has no uv either
    html_unescape = urljoin = urlparse = None

from ansible_collections.gtsfm.cluster.plugins.module_utils import _env_check
from ansible_collections.gtsfm.cluster.plugins.module_utils._broadcast_hop import hash_file

RECORD = ".gtsfm-env.json"
PROJECT_FILES = ("pyproject.toml", "uv.lock")

# The options a probe reads with (the others matter only to a build, copy or publish): python_env's own, and the
# ones the stage's read (cluster_node_info's python_env) takes, so both read a node the same way.
PROBE_SPEC = dict(
    prefix=dict(type="path", required=True),
    manager=dict(type="str", choices=["uv", "conda", "archive"], default="uv"),
    python=dict(type="path", default="/usr/bin/python3"),
    requirements=dict(type="list", elements="str", default=[]),
    project_dir=dict(type="path"),
    env_file=dict(type="path"),
    archive=dict(type="path"),
    archive_sha256=dict(type="str"),
    import_check=dict(type="bool", default=False),
    imports=dict(type="list", elements="str", default=[]),
)
# Well inside the probe's own time limit (cluster_facts_timeout, 120 s by default).
IMPORT_TIMEOUT = 90


class EnvError(Exception):
    """Something the user must fix; the message says what and how."""


def fingerprint(spec):
    """sha256 over the canonical JSON of spec (a dict of plain data)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def read_inputs(manager, requirements, project_dir, env_file, archive, archive_sha256=None):
    """What defines the environment besides the interpreter: {name: text or digest}; files read on this node."""
    inputs = {"manager": manager}
    if manager == "archive":
        inputs["archive_sha256"] = archive_sha256 or file_sha256(archive)
        return inputs
    if manager == "conda":
        inputs["env_file"] = read_file(env_file, "env_file")
        return inputs
    if requirements:
        inputs["requirements"] = list(requirements)
    else:
        for name in PROJECT_FILES:
            inputs[name] = read_file(os.path.join(project_dir, name), "project_dir")
    return inputs


def read_file(path, field):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except OSError as exc:
        raise EnvError(f"cannot read {path} ({exc.strerror}); it defines the environment. Fix: check option {field}")


def env_spec(params, run_command):
    """(spec, missing): what the fingerprint hashes, read on this node. A probe before the inputs exist (the checkout
    not there yet) gets (None, why) instead of an error; EnvError for anything else the user must fix."""
    p = params
    try:
        inputs = read_inputs(
            p["manager"], p["requirements"], p["project_dir"], p["env_file"], p["archive"], p["archive_sha256"]
        )
    except EnvError as exc:
        if p.get("action", "probe") == "probe":
            return None, str(exc)
        raise
    spec = {"inputs": inputs, "platform": platform_tag(), "prefix": os.path.abspath(p["prefix"])}
    if p["manager"] == "uv":
        python = p["python"]
        if not os.access(python, os.X_OK):
            raise EnvError(
                f"the interpreter {python} is missing on this node. Fix: install it at the same path on every "
                "node, or set option python"
            )
        argv = [python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"]
        rc, out, err = run_command(argv)
        if rc != 0:
            raise EnvError(
                f"asking {python} its version failed (rc={rc}): {' '.join(argv)}\n{out[-3000:]}\n{err[-3000:]}"
            )
        spec["python"] = {"path": python, "version": out.strip()}
    return spec, None


def read_env(params, run_command):
    """What a probe reports (python_env's RETURN); reads only. EnvError names what the user must fix.

    read_with holds the probe's options as given, so that a task asked to probe with the same options can take this
    read as its answer (the python_env action plugin, given the stage's read as observed).
    """
    prefix = os.path.abspath(params["prefix"])
    spec, missing = env_spec(params, run_command)
    fp = fingerprint(spec) if spec else None
    found = probe(prefix, fp or "0" * 64)
    dot_path = os.pathsep.join([os.path.join(prefix, "bin"), os.environ.get("PATH", "/usr/bin:/bin")])
    result = dict(
        prefix=prefix,
        fingerprint=fp,
        spec=spec,
        inputs_error=missing,
        home=os.environ.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir,
        home_id=home_id(),
        dot=shutil.which("dot", path=dot_path),
        read_with=dict((name, params.get(name)) for name in PROBE_SPEC),
        **found,
    )
    if params.get("action", "probe") == "probe" and params.get("import_check") and found["state"] == "current":
        python = os.path.join(prefix, "bin", "python")
        outcome = _env_check.run_local(python, params.get("imports") or [], timeout=IMPORT_TIMEOUT)
        result["import_problems"] = _env_check.diagnose(outcome, python)
        result["imported"] = [
            {"name": e["name"], "seconds": e["seconds"]}
            for e in (outcome.get("report") or {}).get("imports", [])
            if e.get("ok")
        ]
    return result


def file_sha256(path):
    try:
        return hash_file(path)
    except OSError as exc:
        raise EnvError(f"cannot read the environment archive {path} ({exc.strerror})")


def home_id():
    """The id ssh_mesh publishes in ~/.ssh/gtsfm_cluster_home_id (the same on every node sharing this home), or None."""
    try:
        with open(os.path.join(os.path.expanduser("~"), ".ssh", "gtsfm_cluster_home_id")) as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def platform_tag():
    libc = "-".join(platform.libc_ver()) or "unknown-libc"
    return f"{platform.system().lower()}-{platform.machine()}-{libc}"


def paths(prefix, fp):
    real = f"{prefix}.{fp[:12]}"
    return {"prefix": prefix, "real": real, "part": real + ".part", "record": os.path.join(real, RECORD)}


def lock_path(prefix):
    """The lock a build, copy or publish of prefix holds while it runs (hidden, beside prefix)."""
    parent, base = os.path.split(prefix)
    return os.path.join(parent, "." + base + ".gtsfm-build.lock")


def read_record(directory):
    try:
        with open(os.path.join(directory, RECORD)) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def probe(prefix, fp):
    """Where this node stands: {'done', 'current', 'found_fingerprint', 'free', 'state'}; reads only."""
    p = paths(prefix, fp)
    found = None
    state = "missing"
    if os.path.islink(prefix):
        target = os.path.join(os.path.dirname(prefix), os.readlink(prefix))
        record = read_record(target)
        found = record.get("fingerprint") if record else None
        state = "current" if found == fp else ("other" if found else "broken")
    elif os.path.lexists(prefix):
        state = "foreign"
    staged = read_record(p["real"])
    return {
        "state": state,
        "found_fingerprint": found,
        "done": state == "current",
        # A finished copy of the wanted env sits at its real path, not yet published (e.g. on a shared home).
        "staged": bool(staged and staged.get("fingerprint") == fp),
        "real": p["real"],
        "free": free_bytes(os.path.dirname(prefix)),
    }


def tree_bytes(root):
    """Bytes the regular files under root hold (links not followed; entries that vanish meanwhile skipped)."""
    total = 0
    stack = [root]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total


def free_bytes(path):
    """Free bytes for the user on the file system that holds path (its first existing ancestor)."""
    while path and not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    st = os.statvfs(path or "/")
    return st.f_bavail * st.f_frsize


def check_prefix(prefix):
    """Refuse a prefix that is a real directory or file we did not make: it is never deleted."""
    if os.path.lexists(prefix) and not os.path.islink(prefix):
        raise EnvError(
            f"{prefix} exists and is not the link this module manages (a directory or file of your own). "
            "It is left alone. Fix: move it away, or set option prefix to another path"
        )


def clear(path):
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def write_record(directory, fp, spec):
    tmp = os.path.join(directory, RECORD + ".tmp")
    with open(tmp, "w") as handle:
        json.dump({"fingerprint": fp, "spec": spec}, handle, sort_keys=True, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(tmp, os.path.join(directory, RECORD))


def publish(prefix, fp):
    """Point prefix at prefix.<fp12> with one rename(2), then remove the environments it replaced.

    Returns the list of removed directories.
    """
    p = paths(prefix, fp)
    record = read_record(p["real"])
    if not record or record.get("fingerprint") != fp:
        raise EnvError(f"{p['real']} holds no finished environment with fingerprint {fp[:12]}")
    check_prefix(prefix)
    link = os.path.basename(p["real"])
    if not (os.path.islink(prefix) and os.readlink(prefix) == link):
        tmp = f"{prefix}.link-{os.getpid()}"
        clear(tmp)
        os.symlink(link, tmp)
        os.rename(tmp, prefix)
    return prune(prefix, keep=p["real"])


_ENV_DIR = re.compile(r"^\.[0-9a-f]{12}(\.part)?$")


def prune(prefix, keep):
    """Remove prefix.<other fp12>[.part] directories: older environments and abandoned builds."""
    parent, base = os.path.split(prefix)
    removed = []
    for name in sorted(os.listdir(parent or ".")):
        if not name.startswith(base) or not _ENV_DIR.match(name[len(base) :]):
            continue
        path = os.path.join(parent, name)
        if path != keep and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            # The broadcast module's record and lock beside a tree it delivered go with the tree.
            for extra in (".gtsfm-broadcast.json", ".gtsfm-broadcast.lock"):
                record = os.path.join(parent, "." + name + extra)
                if os.path.isfile(record):
                    os.unlink(record)
    return removed


def uv_commands(uv, python, part, requirements, project_dir, index_url, extra_index_urls, find_links, offline_links):
    """The uv command lines that build the environment in part (run in order)."""
    source = []
    if index_url:
        source += ["--index-url", index_url]
    for url in extra_index_urls or []:
        source += ["--extra-index-url", url]
    for url in find_links or []:
        source += ["--find-links", url]
    if offline_links:
        source += ["--no-index"]
    if requirements:
        return [
            [uv, "venv", "--quiet", "--python", python, part],
            [uv, "pip", "install", "--quiet", "--python", os.path.join(part, "bin", "python")]
            + source
            + list(requirements),
        ]
    # A project: its uv.lock, exactly (--frozen), without installing the project itself (PYTHONPATH has it).
    return [
        [uv, "sync", "--quiet", "--frozen", "--no-install-project", "--python", python, "--directory", project_dir]
        + source
    ]


def conda_commands(conda, part, env_file, channels, offline):
    """The command line that builds a conda environment in part from env_file (conda, mamba or micromamba)."""
    name = os.path.basename(conda)
    extra = []
    for channel in channels or []:
        extra += ["-c", channel]
    if channels:
        extra += ["--override-channels"]
    if offline:
        extra += ["--offline"]
    if name.startswith("micromamba"):
        return [[conda, "create", "--yes", "--prefix", part, "--file", env_file] + extra]
    return [[conda, "env", "create", "--yes", "--prefix", part, "--file", env_file] + extra]


_ARCHIVE_FIX = (
    "Fix: pack the environment directory alone (conda-pack, or tar run inside it), with links that are "
    "relative and stay inside it, and no device or FIFO files"
)


_FILTER_ERRORS = getattr(tarfile, "FilterError", ())


def _inside(path, root):
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _check_member(member, root):
    """Refuse a member that would create or change anything outside root (a real path), as it stands on disk now.

    Checked against the tree as extracted so far (realpath), so a link made by an earlier member is followed: this
    is what stops `lib -> /x` then `lib/y`.
    """
    name = member.name
    if os.path.isabs(name):
        # tar (and the data filter) would drop the slash and unpack it inside, in a layout nobody asked for.
        raise EnvError(f"member {name!r} has an absolute name: refused")
    where = os.path.realpath(os.path.join(root, name))
    if not _inside(where, root):
        raise EnvError(f"member {member.name!r} would be written to {where}, outside the environment: refused")
    if member.ischr() or member.isblk() or member.isfifo():
        kind = "character device" if member.ischr() else ("block device" if member.isblk() else "FIFO")
        raise EnvError(f"member {member.name!r} is a {kind}: refused")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise EnvError(f"member {member.name!r} is neither a file, a directory nor a link: refused")
    if member.issym() or member.islnk():
        if os.path.isabs(member.linkname):
            raise EnvError(f"member {member.name!r} is a link to the absolute path {member.linkname!r}: refused")
        # A symlink's target is relative to its own directory; a hard link's to the archive's top.
        base = os.path.join(root, os.path.dirname(name)) if member.issym() else root
        target = os.path.realpath(os.path.join(base, member.linkname))
        if not _inside(target, root):
            raise EnvError(
                f"member {member.name!r} links to {target} ({member.linkname!r}), outside the environment: refused"
            )


def _by_hand(member, root):
    """What tarfile's data filter does, for interpreters without it: the checks, then no setuid/setgid/sticky, no
    group or other write, the owner may read and write, and the files belong to whoever unpacks."""
    _check_member(member, root)
    member = copy.copy(member)
    mode = member.mode & 0o755
    if member.isfile() or member.islnk():
        if not mode & 0o100:
            mode &= ~0o111
        mode |= 0o600
    elif member.isdir():
        mode |= 0o700  # the next members must be writable into it
    member.mode = mode
    member.uid, member.gid, member.uname, member.gname = os.geteuid(), os.getegid(), "", ""
    return member


def _with_data_filter(member, root):
    _check_member(member, root)  # our messages first; the interpreter's own filter then does the rest
    return tarfile.data_filter(member, root)


def extract_archive(archive, dest):
    """Unpack the tar archive into the directory dest; nothing outside dest is created or changed.

    Refused, by member name: an absolute name, a name or a link (symbolic or hard) that resolves outside dest, a
    link to an absolute path, devices, FIFOs. Set-uid/set-gid bits are dropped. On a refusal dest is removed (rmtree
    does not follow links) and EnvError raised. Uses tarfile's data filter where the interpreter has it (3.12+,
    3.11.4+, 3.10.12+, 3.9.17+, 3.8.17+), the same rules by hand where it does not (older nodes).
    """
    root = os.path.realpath(dest)
    try:
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(root, filter=_with_data_filter)
            else:
                # extractall pulls members from the generator one at a time, so each is checked against what the
                # ones before it made.
                tar.extractall(root, members=(_by_hand(m, root) for m in tar.getmembers()))
        for top, dirs, files in os.walk(root):
            # A link can point outside once a later member (a link it goes through) exists: check the end result.
            for entry in dirs + files:
                path = os.path.join(top, entry)
                if os.path.islink(path) and not _inside(os.path.realpath(path), root):
                    raise EnvError(
                        f"member {os.path.relpath(path, root)!r} links to {os.path.realpath(path)}, outside "
                        "the environment (through another link): refused"
                    )
    except EnvError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise EnvError(f"{archive}: {exc}. Nothing of it is kept. {_ARCHIVE_FIX}")
    except _FILTER_ERRORS as exc:
        # The interpreter's data filter refusing something our own check let through.
        shutil.rmtree(root, ignore_errors=True)
        raise EnvError(f"{archive}: {exc}: refused. Nothing of it is kept. {_ARCHIVE_FIX}")


def extract_uv(wheel, dest):
    """Take the uv binary out of a uv wheel (uv-*.whl holds it as uv-X.data/scripts/uv) and install it at dest."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if re.match(r"^uv-[^/]+\.data/scripts/uv$", n)]
            if not names:
                raise EnvError(f"{wheel} is not a uv wheel (no uv-*.data/scripts/uv inside)")
            directory = os.path.dirname(dest)
            if not os.path.isdir(directory):
                os.makedirs(directory)
            tmp = dest + ".part"
            with archive.open(names[0]) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out)
    except zipfile.BadZipfile:
        raise EnvError(f"{wheel} is not a wheel (not a zip file)")
    os.chmod(tmp, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    os.rename(tmp, dest)


_HREF = re.compile(r"""href=["']([^"']+)["']""", re.IGNORECASE)


def pick_uv_wheel(page, base_url, version, machine):
    """The uv wheel for this machine in an index page (PEP 503 project page or a find-links listing).

    Returns (url, digest): the link resolved against base_url as a browser does (urljoin: ``../../packages/x`` and
    ``/x`` included; give the page's URL after redirects), and the (hash name, hex value) the link's
    ``#sha256=...`` fragment gives, or None when it gives none.
    """
    candidates = []
    for href in _HREF.findall(page):
        href = html_unescape(href)
        url, _sep, fragment = href.partition("#")
        name = urlparse(url).path.rsplit("/", 1)[-1]
        match = re.match(r"^uv-([0-9][^-]*)-py3-none-(.+)\.whl$", name)
        if not match or (version and match.group(1) != version):
            continue
        tags = match.group(2)
        if "manylinux" in tags and tags.endswith(machine):
            candidates.append((_version_key(match.group(1)), urljoin(base_url, url), _digest(fragment)))
    if not candidates:
        raise EnvError(
            f"no uv wheel{' ' + version if version else ''} for manylinux {machine} at {base_url}. Fix: add "
            "one (pip download uv --only-binary=:all: "
            f"--platform manylinux_2_17_{machine}) or set option uv_wheel to a uv wheel or binary"
        )
    _key, url, digest = max(candidates)
    return url, digest


def _digest(fragment):
    """(name, hex) from a PEP 503 fragment such as ``sha256=ab12...``, or None."""
    name, _sep, value = fragment.partition("=")
    name = name.strip().lower()
    if name in hashlib.algorithms_guaranteed and re.match(r"^[0-9a-fA-F]+$", value.strip()):
        return name, value.strip().lower()
    return None


def check_digest(path, url, digest):
    """Refuse the file at path (downloaded from url) unless it has the digest its index gave."""
    if digest is None:
        return
    name, want = digest
    got = hash_file(path, name)
    if got != want:
        raise EnvError(
            f"{name} mismatch for {url}: its index gives {want}, the download has {got}. Nothing was installed. Fix: "
            "check the index (option uv_index) or its mirror; do not use a uv binary that fails its sum"
        )


def _version_key(version):
    return [int(part) if part.isdigit() else 0 for part in re.split(r"[.+-]", version)]
