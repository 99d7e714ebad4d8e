# -*- coding: utf-8 -*-
# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to gtsfm.cluster (no API promise): is the cluster env usable, on this node, as Dask will start it?

Two halves. The node half (the functions in NODE_FUNCTIONS) runs in the env's own python, sent as source text
(``python -B -c PROGRAM ARGS``, standard library only, Python 3.8 or later): it works out what to import (the list
given, else what the env declares in its record, else Dask's own two), imports each in turn and reports, as one
JSON line, what failed with the exception chain's messages, the torch builds, the node's /etc/os-release and
Graphviz ``dot``. The other half (run_local, run_remote, diagnose) runs in Ansible's python: it starts the node
half, here or over non-interactive SSH on many hosts at once, and turns each failure into one sentence naming
the host, the package, the missing library, the system package that provides it on that node's distribution and
the fix.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

# ansible-core 2.21's sanity asks for AnsibleModule.run_command; the check runs every node's session at once, with
# a deadline each, and its node half runs without an AnsibleModule, which run_command needs.
# pylint: disable=ansible-bad-function

RESULT = "GTSFM-ENV-CHECK "
STARTED = "GTSFM-ENV-CHECK-IMPORT "
# Dask's own needs: what an env without a record (not built by the conda_env role) is checked for.
DEFAULT_IMPORTS = ["dask", "distributed"]
# Top-level names some distributions install that are not theirs to import (tests, docs, private helpers).
SKIP_TOP = frozenset(["test", "tests", "testing", "doc", "docs", "example", "examples", "benchmarks", "scripts"])


# ---------------------------------------------------------------- node half: runs in the env's python


def normalize(name):
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec):
    """The distribution a requirement specifier (PEP 508, NAME @ URL, a wheel's path or URL) names, or None."""
    spec = spec.strip()
    if not spec or spec.startswith(("-", "#")):
        return None
    direct = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*@", spec)
    if direct:
        return normalize(direct.group(1))
    wheel = re.search(r"([A-Za-z0-9][A-Za-z0-9._]*)-[0-9][^/-]*-[^/]*\.whl$", spec)
    if wheel:
        return normalize(wheel.group(1))
    if "/" in spec or "://" in spec:
        return None
    named = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([<>=!~;(#]|$)", spec)
    return normalize(named.group(1)) if named else None


def pyproject_dependencies(text):
    """The distribution names of a pyproject.toml's [project] dependencies (tomllib where the python has it)."""
    try:
        import tomllib

        deps = tomllib.loads(text).get("project", {}).get("dependencies", [])
    except ImportError:
        # Python < 3.11: the array of strings after `dependencies =` inside [project] is all that is needed.
        table = re.search(r"(?ms)^\[project\]\s*$(.*?)(?=^\[|\Z)", text)
        array = re.search(r"(?ms)^dependencies\s*=\s*\[(.*?)\]", table.group(1)) if table else None
        deps = re.findall(r"\"([^\"]*)\"|'([^']*)'", array.group(1)) if array else []
        deps = [a or b for a, b in deps]
    except ValueError:
        return []
    return [name for name in (requirement_name(d) for d in deps) if name]


def env_file_dependencies(text):
    """(kind, name) for each entry of a conda environment file's dependencies: kind is conda, or pip under pip:."""
    out, inside, pip_indent = [], False, None
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            inside = line.startswith("dependencies:")
            continue
        item = re.match(r"^\s*-\s+(.*)$", line)
        if not inside or not item:
            continue
        value = item.group(1).strip().strip("\"'")
        if pip_indent is not None and indent <= pip_indent:
            pip_indent = None
        if re.match(r"^pip\s*:", value):
            pip_indent = indent
            continue
        if pip_indent is not None:
            name = requirement_name(value)
            if name:
                out.append(("pip", name))
            continue
        conda = re.match(r"^(?:[^:\s]+::)?([A-Za-z0-9_][A-Za-z0-9._-]*)", value)
        if conda:
            out.append(("conda", conda.group(1).lower()))
    return out


def declared(record):
    """(kind, name) for what the env's record says it was built from, or None when it says nothing of that."""
    inputs = ((record or {}).get("spec") or {}).get("inputs") or {}
    if inputs.get("requirements"):
        return [("pip", n) for n in (requirement_name(r) for r in inputs["requirements"]) if n]
    if inputs.get("pyproject.toml"):
        return [("pip", n) for n in pyproject_dependencies(inputs["pyproject.toml"])]
    if inputs.get("env_file"):
        return env_file_dependencies(inputs["env_file"])
    return None


def top_level(paths):
    """Import names of the top-level modules a list of installed paths (relative to site-packages) holds."""
    found, packages, namespaces = [], set(), {}
    for path in paths:
        parts = path.replace("\\", "/").split("/")
        head = parts[0]
        if head in ("..", "__pycache__") or head.endswith((".dist-info", ".egg-info", ".data", ".pth", ".libs")):
            continue
        if len(parts) == 1:
            name = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)(\.py|\..*\.so|\.so|\.pyd)$", head)
            if name and name.group(1) not in found:
                found.append(name.group(1))
        elif parts[1] == "__init__.py":
            packages.add(head)
            if head not in found:
                found.append(head)
        elif len(parts) > 2 and parts[2] == "__init__.py":
            namespaces.setdefault(head, []).append(head + "." + parts[1])
    for head, subs in namespaces.items():
        if head not in packages:
            found.extend(sorted(set(subs)))
    names = [n for n in found if n.split(".")[0] not in SKIP_TOP and re.match(r"^[A-Za-z_][A-Za-z0-9_.]*$", n)]
    public = [n for n in names if not n.startswith("_")]
    return public or names


def dist_imports(dist):
    """The import names of an installed distribution (importlib.metadata): top_level.txt, else its RECORD."""
    text = dist.read_text("top_level.txt")
    if text:
        names = [n.strip().replace("/", ".") for n in text.split() if n.strip()]
        names = [n for n in names if n.split(".")[0] not in SKIP_TOP]
        public = [n for n in names if not n.startswith("_")]
        return public or names
    return top_level([str(f) for f in (dist.files or [])])


def conda_imports(prefix):
    """{conda package name: its import names} from the env's conda-meta (packages with Python files only)."""
    out = {}
    folder = os.path.join(prefix, "conda-meta")
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return out
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(folder, name)) as handle:
                meta = json.load(handle)
        except (OSError, ValueError):
            continue
        files = [f.split("site-packages/", 1)[1] for f in meta.get("files", []) if "/site-packages/" in f]
        out[str(meta.get("name", "")).lower()] = top_level(files)
    return out


def imports_to_check(given, prefix):
    """(import names, where they came from, declared distributions not installed) for this env."""
    if given:
        return list(given), "given", []
    try:
        with open(os.path.join(prefix, ".gtsfm-env.json")) as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        record = None
    wanted = declared(record)
    if not wanted:
        return list(DEFAULT_IMPORTS), "default", []
    from importlib import metadata

    dists = {}
    for dist in metadata.distributions():
        dists.setdefault(normalize(dist.metadata["Name"] or ""), dist)
    conda = conda_imports(prefix) if any(kind == "conda" for kind, dummy in wanted) else {}
    names, missing = [], []
    for kind, name in wanted:
        if kind == "conda":
            found = conda.get(name)
            if found is None:
                found = None if normalize(name) not in dists else dist_imports(dists[normalize(name)])
        else:
            found = dist_imports(dists[name]) if name in dists else None
        if found is None:
            missing.append(name)
        for module in found or []:
            if module not in names:
                names.append(module)
    return names, "declared", missing


def exception_chain(exc):
    """'Type: message' of an exception and what caused it (no traceback), innermost last."""
    out, seen = [], set()
    while exc is not None and id(exc) not in seen and len(out) < 6:
        seen.add(id(exc))
        text = str(exc).strip().splitlines()
        out.append(f"{type(exc).__name__}: {' '.join(text)[:600] if text else ''}")
        exc = exc.__cause__ or exc.__context__
    return out


def os_release():
    """/etc/os-release as a dict (ID, ID_LIKE, VERSION_ID, PRETTY_NAME, ...); empty when absent."""
    out = {}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path) as handle:
                for line in handle:
                    key, sep, value = line.strip().partition("=")
                    if sep and key:
                        out[key] = value.strip().strip("\"'")
            return out
        except OSError:
            continue
    return out


def node_report(args):
    """Import each module the env must have, in order, in this process; everything diagnose needs, as a dict."""
    prefix = os.path.realpath(sys.prefix)
    names, source, missing = imports_to_check(args.get("imports"), prefix)
    out = {
        "python": sys.executable,
        "python_version": ".".join(str(n) for n in sys.version_info[:3]),
        "prefix": prefix,
        "os": os_release(),
        "source": source,
        "not_installed": missing,
        "imports": [],
        "dists": {},
    }
    for name in names:
        # What was being imported when the process died outright (a crash in a library), for the caller.
        sys.stderr.write(STARTED + name + "\n")
        sys.stderr.flush()
        started = time.time()
        entry = {"name": name}
        try:
            importlib.import_module(name)
            entry["ok"] = True
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # an import may raise anything, SystemExit included
            entry["ok"] = False
            entry["errors"] = exception_chain(exc)
        entry["seconds"] = round(time.time() - started, 3)
        out["imports"].append(entry)
    from importlib import metadata

    for dist in ("torch", "torchvision", "torchaudio"):
        try:
            meta = metadata.distribution(dist)
        except metadata.PackageNotFoundError:
            continue
        pins = [r.split(";")[0].strip() for r in (meta.requires or []) if re.match(r"^torch\b[^a-z_-]", r)]
        out["dists"][dist] = {"version": meta.version, "torch_pin": re.sub(r"[\s()]", "", pins[0]) if pins else None}
    torch = sys.modules.get("torch")
    if torch is not None and "torch" in out["dists"]:
        out["dists"]["torch"]["cuda"] = getattr(getattr(torch, "version", None), "cuda", None)
    if args.get("dot"):
        path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "/usr/bin:/bin")])
        dot = shutil.which("dot", path=path)
        out["dot"] = {"path": dot}
        if dot:
            try:
                ran = subprocess.run(
                    [dot, "-V"], stdin=subprocess.DEVNULL, capture_output=True, timeout=20, check=False
                )
                out["dot"].update(
                    rc=ran.returncode, said=(ran.stderr or ran.stdout).decode("utf-8", "replace").strip()[-300:]
                )
            except (OSError, subprocess.SubprocessError) as exc:
                out["dot"].update(rc=None, said=str(exc))
    return out


def node_main():
    """The node half's entry: the report for the JSON arguments in argv[1], after RESULT on a line of its own."""
    report = node_report(json.loads(sys.argv[1]))
    sys.stdout.write("\n" + RESULT + json.dumps(report) + "\n")
    sys.stdout.flush()


NODE_FUNCTIONS = (
    normalize,
    requirement_name,
    pyproject_dependencies,
    env_file_dependencies,
    declared,
    top_level,
    dist_imports,
    conda_imports,
    imports_to_check,
    exception_chain,
    os_release,
    node_report,
    node_main,
)


def node_program():
    """The node half's text: stdlib imports, its constants and functions, then the call."""
    head = (
        "import importlib, json, os, re, shutil, subprocess, sys, time\n"
        f"RESULT = {RESULT!r}\nSTARTED = {STARTED!r}\nDEFAULT_IMPORTS = {DEFAULT_IMPORTS!r}\nSKIP_TOP = "
        f"frozenset({sorted(SKIP_TOP)!r})\n\n"
    )
    return head + "\n\n".join(inspect.getsource(f) for f in NODE_FUNCTIONS) + "\n\nnode_main()\n"


# ---------------------------------------------------------------- running the node half


def node_argv(python, imports, dot):
    """The argument list that runs the node half with python (-B: the check writes no bytecode into the env)."""
    return [python, "-B", "-c", node_program(), json.dumps({"imports": list(imports or []), "dot": bool(dot)})]


def remote_command(python, imports, dot):
    """The same, as the one command line a non-interactive SSH session runs (as Dask's start of the workers)."""
    return "exec " + " ".join(shlex.quote(a) for a in node_argv(python, imports, dot))


def read_output(rc, stdout, stderr):
    """{'report': dict} from a finished node half, or {'rc', 'died_in', 'said'} when it gave no report."""
    for line in reversed((stdout or "").splitlines()):
        if line.startswith(RESULT):
            try:
                return {"report": json.loads(line[len(RESULT) :])}
            except ValueError:
                break
    started = [line[len(STARTED) :] for line in (stderr or "").splitlines() if line.startswith(STARTED)]
    said = [line for line in (stderr or "").splitlines() if line.strip() and not line.startswith(STARTED)]
    return {"rc": rc, "died_in": started[-1] if started else None, "said": said[-3:]}


def run_local(python, imports, dot=False, timeout=300):
    """Run the node half here with python. read_output's answer (rc 'timeout' when it did not end in time)."""
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        return {"rc": 127, "died_in": None, "said": [f"{python}: not found"]}
    proc = subprocess.Popen(
        node_argv(python, imports, dot),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return dict(read_output(None, out, err), rc="timeout")
    return read_output(proc.returncode, out, err)


def run_remote(hosts, python, imports, dot_hosts=(), timeout=300, ssh="ssh"):
    """Run the node half on every host at once over SSH, as Dask reaches them: {host: read_output's answer}.

    One ``ssh -T`` per host (no terminal, no standard input, BatchMode: a missing key or unknown host key fails
    instead of asking), all started together and each given timeout seconds; the session is the non-interactive
    one Dask's asyncssh opens, so the remote shell reads the same start-up files.
    """
    procs = {}
    for host in hosts:
        argv = [
            ssh,
            "-T",
            "-n",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=20",
            "--",
            host,
            remote_command(python, imports, host in dot_hosts),
        ]
        try:
            procs[host] = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True
            )
        except OSError as exc:
            procs[host] = exc
    out = {}
    deadline = time.time() + timeout
    for host, proc in procs.items():
        if isinstance(proc, OSError):
            out[host] = {"rc": "ssh", "died_in": None, "said": [f"cannot run {ssh}: {proc}"]}
            continue
        try:
            stdout, stderr = proc.communicate(timeout=max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            out[host] = dict(read_output(None, stdout, stderr), rc="timeout")
            continue
        out[host] = read_output(proc.returncode, stdout, stderr)
    return out


# ---------------------------------------------------------------- diagnosis: one sentence per failure

# soname: (Debian/Ubuntu package, RHEL/Fedora package). Names as Debian 12 / Ubuntu 22.04 and RHEL 9 / Fedora ship
# them (Ubuntu 24.04 and Debian 13 renamed a few to ...t64; apt-get takes the old name there as well).
LIBRARIES = {
    "libgomp.so.1": ("libgomp1", "libgomp"),
    "libGL.so.1": ("libgl1", "mesa-libGL"),
    "libGLX.so.0": ("libglx0", "libglvnd-glx"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libEGL.so.1": ("libegl1", "mesa-libEGL"),
    "libGLU.so.1": ("libglu1-mesa", "mesa-libGLU"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgobject-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgio-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libSM.so.6": ("libsm6", "libSM"),
    "libICE.so.6": ("libice6", "libICE"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libXext.so.6": ("libxext6", "libXext"),
    "libXrender.so.1": ("libxrender1", "libXrender"),
    "libXi.so.6": ("libxi6", "libXi"),
    "libXrandr.so.2": ("libxrandr2", "libXrandr"),
    "libXfixes.so.3": ("libxfixes3", "libXfixes"),
    "libXcursor.so.1": ("libxcursor1", "libXcursor"),
    "libXinerama.so.1": ("libxinerama1", "libXinerama"),
    "libXxf86vm.so.1": ("libxxf86vm1", "libXxf86vm"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libgfortran.so.5": ("libgfortran5", "libgfortran"),
    "libgfortran.so.4": ("libgfortran4", "compat-libgfortran-48"),
    "libquadmath.so.0": ("libquadmath0", "libquadmath"),
    "libstdc++.so.6": ("libstdc++6", "libstdc++"),
    "libgcc_s.so.1": ("libgcc-s1", "libgcc"),
    "libusb-1.0.so.0": ("libusb-1.0-0", "libusbx"),
    "libtbb.so.12": ("libtbb12", "tbb"),
    "libtbb.so.2": ("libtbb2", "tbb"),
    "libopenblas.so.0": ("libopenblas0", "openblas"),
    "libnuma.so.1": ("libnuma1", "numactl-libs"),
    "libudev.so.1": ("libudev1", "systemd-libs"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libpng16.so.16": ("libpng16-16", "libpng"),
    "libjpeg.so.62": ("libjpeg62-turbo", "libjpeg-turbo"),
    "libz.so.1": ("zlib1g", "zlib"),
    "libexpat.so.1": ("libexpat1", "expat"),
}
CUDA_LIBRARY = re.compile(
    r"^lib(cuda|cudart|cublas|cublasLt|cudnn\w*|cufft|curand|cusolver|cusparse\w*|nccl|nvrtc|"
    r"nvToolsExt|nvJitLink|cupti|cufile|nvshmem\w*)\.so"
)
MISSING_LIBRARY = re.compile(r"(lib[A-Za-z0-9_+.-]*?\.so(?:\.[0-9]+)*): cannot open shared object file")
OLD_RUNTIME = re.compile(r"version [`']((GLIBCXX|CXXABI|GLIBC|GCC)_[0-9.]+)' not found")
TORCHVISION_OP = re.compile(r"operator torchvision::\w+ does not exist")
# (import name, missing soname): a fix that needs no root, where one is known.
ALTERNATIVES = {
    ("cv2", "libGL.so.1"): "or replace opencv-python with opencv-python-headless in the environment (it needs no "
    "libGL)",
}
# opencv-python's GUI half loads the X11 client libraries too (libxcb first, as 4.14 does on a bare node).
ALTERNATIVES.update(
    (
        ("cv2", soname),
        "or replace opencv-python with opencv-python-headless in the environment (it "
        "needs neither libGL nor the X11 libraries)",
    )
    for soname in ("libxcb.so.1", "libX11.so.6", "libXext.so.6", "libSM.so.6", "libICE.so.6")
)
DEBIAN = ("debian", "ubuntu", "linuxmint", "raspbian", "pop")
RHEL = ("rhel", "fedora", "centos", "rocky", "almalinux", "ol", "amzn")


def family(release):
    """'debian', 'rhel' or None for a node's /etc/os-release (its ID, then ID_LIKE)."""
    ids = [(release or {}).get("ID", "").lower()] + (release or {}).get("ID_LIKE", "").lower().split()
    for one in ids:
        if one in DEBIAN:
            return "debian"
        if one in RHEL:
            return "rhel"
    return None


def system_package(soname, release):
    """(package, install command) that brings soname on the node's distribution; (None, None) when unknown."""
    known = LIBRARIES.get(soname)
    kind = family(release)
    if not known or not kind:
        return None, None
    if kind == "debian":
        return known[0], "sudo apt-get install " + known[0]
    major = (
        re.match(r"^(\d+)", (release or {}).get("VERSION_ID", ""))
        if (release or {}).get("ID") in ("rhel", "centos", "ol")
        else None
    )
    old = bool(major) and int(major.group(1)) < 8
    return known[1], ("sudo yum install " if old else "sudo dnf install ") + known[1]


def distro_name(release):
    return (release or {}).get("PRETTY_NAME") or (release or {}).get("ID") or "this node's system (no /etc/os-release)"


def torch_build(info):
    """'CPU' or 'CUDA x.y' for torch's build, from its version's local tag or the cuda it imported with."""
    version = info.get("version") or ""
    if "+cpu" in version or ("cuda" in info and info["cuda"] is None and "+cu" not in version):
        return "CPU"
    match = re.search(r"\+cu(\d+)", version)
    if match:
        return f"CUDA {match.group(1)}"
    return f"CUDA {info['cuda']}" if info.get("cuda") else "CUDA (PyPI's default build)"


def torchvision_text(report, first):
    """The sentence for a torchvision that does not fit the torch beside it, or None when that is not the case."""
    dists = report.get("dists") or {}
    vision, torch = dists.get("torchvision"), dists.get("torch")
    if not vision or not torch:
        return None
    version = torch.get("version") or "?"
    build = torch_build(torch)
    base = version.split("+")[0]
    match = re.match(r"^2\.(\d+)", base)
    wanted = f"torchvision==0.{int(match.group(1)) + 15}.*" if match else "the torchvision release made for it"
    if build == "CPU":
        for_what = "CUDA" if "+cpu" not in (vision.get("version") or "") else "another torch"
        fix = (
            f"install the matching CPU build: pip install '{wanted}' --index-url https://download.pytorch.org/whl/cpu "
            "(or pin torchvision with that index in the env's requirements)"
        )
    else:
        for_what = "another torch"
        fix = (
            f"install the torchvision built for torch {version}: pip install '{wanted}' from the index torch came from"
        )
    pin = f" (it requires {vision['torch_pin']})" if vision.get("torch_pin") else ""
    return (
        f"torchvision {vision.get('version')} is built for {for_what}{pin}, not for torch {version} ({build}) "
        f"beside it ({first}). Fix: {fix}"
    )


def failure_text(entry, report):
    """One sentence (without the host) for a failed import: what is missing, what provides it, the fix."""
    name = entry["name"]
    errors = entry.get("errors") or ["unknown error"]
    joined = " | ".join(errors)
    first = errors[0]
    release = report.get("os") or {}
    mismatch = TORCHVISION_OP.search(joined)
    text = torchvision_text(report, mismatch.group(0)) if mismatch else None
    if text:
        return f"import {name} fails: {text}"
    lib = MISSING_LIBRARY.search(joined)
    if lib:
        soname = lib.group(1)
        shown = next((e for e in errors if soname in e), first)
        if CUDA_LIBRARY.match(soname):
            return (
                f"import {name} fails: {soname} is a CUDA library, so this is a CUDA build on a node without CUDA "
                f"({shown}). Fix: install the CPU build of the package that needs it (for torch: from "
                "https://download.pytorch.org/whl/cpu), or CUDA on the node"
            )
        package, command = system_package(soname, release)
        other = ALTERNATIVES.get((name.split(".")[0], soname))
        tail = "; " + other if other else ""
        if package:
            return (
                f"import {name} fails: {soname} is missing ({shown}). On {distro_name(release)} the package "
                f"{package} provides it. Fix: {command} (needs root: "
                f"ask an admin), or use an environment that brings the library itself{tail}"
            )
        if soname in LIBRARIES:
            debian, rhel = LIBRARIES[soname]
            hint = f"Debian/Ubuntu: {debian}, RHEL/Fedora: {rhel}"
        else:
            hint = f"apt-file search {soname} (Debian/Ubuntu) or dnf provides '*/{soname}' (RHEL/Fedora) names it"
        return (
            f"import {name} fails: {soname} is missing ({shown}) on {distro_name(release)}. Fix: install the system "
            f"package that provides it ({hint}; needs root), or use an environment that brings the library itself{tail}"
        )
    old = OLD_RUNTIME.search(joined)
    if old:
        runtime = (
            "libstdc++.so.6"
            if old.group(2) in ("GLIBCXX", "CXXABI")
            else ("libgcc_s.so.1" if old.group(2) == "GCC" else "glibc")
        )
        return (
            f"import {name} fails: the system's {runtime} is older than the package needs ({old.group(1)} not found: "
            f"{first}). Fix: an environment that brings a newer {runtime} (conda-forge's libstdcxx-ng in a conda env), "
            f"or a build of the package made for {distro_name(release)}"
        )
    absent = re.match(r"^ModuleNotFoundError: No module named '([^']+)'", first)
    if absent and absent.group(1).split(".")[0] == name.split(".")[0]:
        return (
            f"import {name} fails: it is not installed in the environment ({first}). Fix: add it to the environment "
            "(conda_env_requirements, the env file or pyproject.toml) and re-run site.yml --tags conda_env"
        )
    if absent:
        return (
            f"import {name} fails: {name} needs {absent.group(1).split('.')[0]}, which is not installed in the "
            f"environment ({first}). Fix: add {absent.group(1).split('.')[0]} to "
            f"the environment (an undeclared dependency of {name}) and re-run site.yml --tags conda_env"
        )
    return f"import {name} fails: {joined}. Fix: repair that package in the environment"


def dot_text(report, more=""):
    """The sentence (without the host) when Graphviz dot is missing or broken there, else None.

    more: the caller's own way out (a variable to set), appended to the fix.
    """
    dot = report.get("dot") or {}
    if dot.get("path") and dot.get("rc") == 0:
        return None
    release = report.get("os") or {}
    system = {"debian": "sudo apt-get install graphviz", "rhel": "sudo dnf install graphviz"}.get(
        family(release), "install the graphviz system package"
    )
    if dot.get("path"):
        what = f"Graphviz dot at {dot['path']} does not run (dot -V: rc {dot.get('rc')}, {dot.get('said')})"
    else:
        bindir = os.path.dirname(report.get("python") or "the env's bin")
        what = f"Graphviz dot is not on PATH ({bindir} first)"
    return (
        f"{what}; GTSfM's runner renders its process graph with it and stops without it. Fix: {system} "
        f"({distro_name(release)}; needs root: ask an admin){more}. A uv or pip environment cannot bring dot (no wheel "
        "ships the program); a conda environment can, without root: graphviz from conda-forge in its environment file "
        "puts dot in the env's bin"
    )


def diagnose(outcome, python):
    """Sentences (without the host) for what is wrong with the env on one node, from run_*'s answer."""
    report = outcome.get("report")
    if report is None:
        rc = outcome.get("rc")
        said = " / ".join(outcome.get("said") or []) or "nothing"
        if rc == "timeout":
            return [
                f"the import check with {python} did not end in time (still importing {outcome.get('died_in')}). Fix: "
                f"see why that import hangs there (python -c 'import {outcome.get('died_in')}')"
            ]
        if rc == 255 or rc == "ssh":
            return [
                f"unreachable over SSH for the check ({said}). Fix: run site.yml --tags ssh_mesh,known_hosts, and "
                "check the host is up"
            ]
        if rc == 127 or (outcome.get("died_in") is None and "not found" in said.lower()):
            return [
                f"{python} is not there ({said}). Fix: the cluster env at the same path on every node (site.yml --tags "
                "conda_env)"
            ]
        if outcome.get("died_in"):
            signal = ""
            if isinstance(rc, int) and (rc < 0 or rc > 128):
                signal = f" (signal {-rc if rc < 0 else rc - 128})"
            return [
                f"python died{signal} while importing {outcome['died_in']} (rc {rc}: {said}): a crash in that package, "
                "not an exception. Fix: reinstall it, or a build of it made for this node's CPU and system"
            ]
        return [
            f"the import check with {python} printed no report (rc {rc}: {said}). Fix: check that {python} runs there"
        ]
    texts = [
        f"{name} is declared by the environment but not installed in it. Fix: rebuild the environment (site.yml "
        "--tags conda_env)"
        for name in report.get("not_installed") or []
    ]
    return texts + [failure_text(entry, report) for entry in report.get("imports", []) if not entry.get("ok")]


def group(per_host):
    """'host1, host2: sentence' lines for {host: [sentences]}, one line per distinct sentence, first seen first."""
    order, hosts = [], {}
    for host, texts in per_host.items():
        for text in texts:
            if text not in hosts:
                order.append(text)
                hosts[text] = []
            if host not in hosts[text]:
                hosts[text].append(host)
    return [f"{', '.join(hosts[text])}: {text}" for text in order]
