"""Prove every ansible-core line the collection claims: `make test-cores`.

    scripts/core_matrix [--lines 2.16,2.21] [--no-sanity] [--no-smoke] [--bed NAME]

For each line in tests/cores.txt (line, controller Python, pin): a venv under .cache/cores/<line> holding that
ansible-core and the unit suite's pytest (tests/requirements.txt's pin), then
  unit        pytest tests/unit on that core;
  sanity      scripts/sanity (ansible-test sanity) on that core, on the venv's Python;
  smoke       site.yml on a fresh 3-node test bed, which must succeed with changes on every node;
  idempotent  site.yml again on the same bed, which must report changed=0 on every node.
One bed serves every line: it is brought down and up again before each line's smoke run (about 4 s), so each
first run meets new accounts. Logs: .cache/cores/<line>/*.log. Prints a table at the end; exits 1 if any check
failed, 2 if a needed Python is missing (before anything runs).
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORES_FILE = ROOT / "tests" / "cores.txt"
REQUIREMENTS = ROOT / "tests" / "requirements.txt"
CACHE = ROOT / ".cache" / "cores"
BED_LOCK = "/tmp/gtsfm-bed.lock"
RECAP = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


@dataclass
class Line:
    """One ansible-core line of tests/cores.txt and what the matrix found for it."""

    line: str
    python: str
    pin: str
    interpreter: str = ""
    python_version: str = ""
    core_version: str = ""
    results: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def venv(self) -> Path:
        return CACHE / self.line


def log(msg: str) -> None:
    print(f"core_matrix: {msg}", file=sys.stderr, flush=True)


def read_lines(path: Path = CORES_FILE) -> list[Line]:
    """The lines of tests/cores.txt: '<line> <python> ansible-core==<version>', '#' comments."""
    lines = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        if (
            len(parts) != 3
            or not re.fullmatch(r"ansible-core==(\d+\.\d+)\.\d+", parts[2])
            or not parts[2].startswith(f"ansible-core=={parts[0]}.")
        ):
            raise SystemExit(
                f"core_matrix: {path}:{number}: expected '<line> <python> ansible-core==<line>.<patch>', "
                f"e.g. '2.16 3.11 ansible-core==2.16.19', got {raw!r}"
            )
        lines.append(Line(*parts))
    return lines


def pytest_pin(path: Path = REQUIREMENTS) -> str:
    """The pytest pin of the default tool chain, so every core runs the unit suite under the same pytest."""
    for raw in path.read_text().splitlines():
        if re.match(r"pytest==", raw.strip()):
            return raw.strip()
    raise SystemExit(f"core_matrix: {path} pins no pytest (a line 'pytest==<version>')")


def _version_of(candidate: str) -> tuple[str, str] | None:
    """(full version, real executable) of a Python, or None if it does not run (a pyenv shim for another version)."""
    try:
        # The base interpreter, not a venv's (make puts .venv/bin first on PATH).
        code = (
            "import sys, platform; print(platform.python_version(), getattr(sys, '_base_executable', sys.executable))"
        )
        out = subprocess.run([candidate, "-c", code], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    version, executable = out.stdout.split(maxsplit=1)
    return version, executable.strip()


def find_python(minor: str) -> tuple[str, str] | None:
    """A Python <minor> on this machine: python<minor> on PATH, then pyenv's versions (newest patch), then /usr."""
    candidates = []
    on_path = shutil.which(f"python{minor}")
    if on_path:
        candidates.append(on_path)
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    pyenv = sorted(
        glob.glob(os.path.join(pyenv_root, "versions", f"{minor}.*", "bin", f"python{minor}")),
        key=lambda p: [int(x) for x in re.findall(r"\d+", Path(p).parents[1].name)],
        reverse=True,
    )
    candidates += pyenv + [f"/usr/local/bin/python{minor}", f"/usr/bin/python{minor}"]
    for candidate in candidates:
        found = _version_of(candidate)
        if found and found[0].startswith(f"{minor}."):
            return found
    return None


def missing_python(entry: Line) -> str:
    """What to say when no Python for entry's line is on this machine: what was looked for, and how to get it."""
    minor = entry.python
    return (
        f"ansible-core {entry.line} needs a controller Python {minor}, and this machine has none (looked for "
        f"python{minor} on PATH, in $PYENV_ROOT/versions/{minor}.* and in /usr/local/bin and /usr/bin). Get one "
        f"with 'pyenv install {minor}' or your distribution's python{minor} package, or leave the line out: "
        f"make test-cores CORES=<lines> (the lines are in tests/cores.txt)."
    )


def check_pythons(lines: list[Line]) -> None:
    """Find each line's controller Python, or stop before anything runs, naming every missing one."""
    missing = []
    for entry in lines:
        found = find_python(entry.python)
        if found is None:
            missing.append(entry)
            continue
        entry.python_version, entry.interpreter = found
    if missing:
        for entry in missing:
            log(missing_python(entry))
        raise SystemExit(2)


def run_logged(cmd: list[str], logfile: Path, env: dict[str, str] | None = None, cwd: Path = ROOT) -> int:
    """Run cmd with its output in logfile; return its exit status."""
    with logfile.open("w") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        return subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, check=False).returncode


def tail(logfile: Path, count: int = 25) -> str:
    return "\n".join(logfile.read_text(errors="replace").splitlines()[-count:])


def ensure_venv(entry: Line, pytest: str) -> bool:
    """The line's venv with its pin and pytest; rebuilt when the interpreter or a pin changes."""
    stamp = entry.venv / ".stamp"
    want = f"{entry.interpreter}\n{entry.pin}\n{pytest}\n"
    if stamp.exists() and stamp.read_text() == want:
        return True
    shutil.rmtree(entry.venv, ignore_errors=True)
    entry.venv.parent.mkdir(parents=True, exist_ok=True)
    log(f"{entry.line}: creating {entry.venv} ({entry.pin}, {pytest}, Python {entry.python_version})")
    subprocess.run([entry.interpreter, "-m", "venv", str(entry.venv)], check=True)
    logfile = entry.venv / "pip.log"
    if run_logged([str(entry.venv / "bin" / "pip"), "install", "-q", entry.pin, pytest], logfile) != 0:
        log(f"{entry.line}: pip install failed; {logfile}:\n{tail(logfile)}")
        return False
    stamp.write_text(want)
    return True


def core_env(entry: Line) -> dict[str, str]:
    env = dict(
        os.environ,
        PATH=f"{entry.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
    )
    env.pop("VIRTUAL_ENV", None)
    return env


def step(entry: Line, name: str, cmd: list[str], env: dict[str, str]) -> bool:
    logfile = entry.venv / f"{name}.log"
    start = time.monotonic()
    ok = run_logged(cmd, logfile, env=env) == 0
    entry.results[name] = "pass" if ok else "FAIL"
    log(f"{entry.line}: {name} {'passed' if ok else 'FAILED'} in {time.monotonic() - start:.0f} s ({logfile})")
    if not ok:
        print(tail(logfile), file=sys.stderr)
    return ok


def recap(logfile: Path) -> dict[str, dict[str, int]]:
    """PLAY RECAP counts per host of an ansible-playbook log (the last recap wins)."""
    return {
        m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
        for m in RECAP.finditer(logfile.read_text(errors="replace"))
    }


def judge(run: str, rc: int, counts: dict[str, dict[str, int]], hosts: list[str]) -> list[str]:
    """What is wrong with a site.yml run: 'smoke' (the first, on a fresh bed) or 'idempotent' (the second)."""
    problems = [f"exit status {rc}"] if rc != 0 else []
    problems += [f"{h}: no recap" for h in hosts if h not in counts]
    problems += [f"{h}: {k}={c[k]}" for h, c in counts.items() for k in ("failed", "unreachable") if c[k]]
    if run == "smoke":
        # A node the first run did not change was not fresh: the run proved nothing about first contact.
        problems += [f"{h}: changed=0 on a fresh bed" for h in hosts if counts.get(h, {}).get("changed") == 0]
    else:
        problems += [f"{h}: changed={c['changed']}" for h, c in counts.items() if c["changed"]]
    return problems


def testbed(*args: str) -> str:
    out = subprocess.run([str(ROOT / "scripts" / "testbed"), *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"scripts/testbed {' '.join(args)} failed: {out.stderr.strip()[-2000:]}")
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def smoke(entry: Line, bed_name: str, nodes: int) -> None:
    """site.yml twice on a fresh bed: the first run succeeds and changes every node, the second changes nothing."""
    env = core_env(entry)
    with open(BED_LOCK, "a") as lock:
        start = time.monotonic()
        fcntl.flock(lock, fcntl.LOCK_EX)
        if time.monotonic() - start > 1:
            log(f"{entry.line}: waited {time.monotonic() - start:.0f} s for {BED_LOCK} (another bed run held it)")
        start = time.monotonic()
        try:
            testbed("down", "--name", bed_name)
            bed = Path(testbed("up", "--nodes", str(nodes), "--name", bed_name))
        except RuntimeError as exc:
            log(f"{entry.line}: {exc}")
            entry.results.update(smoke="FAIL", idempotent="-")
            return
        log(f"{entry.line}: fresh bed '{bed_name}' up in {time.monotonic() - start:.0f} s")
        play = [
            str(entry.venv / "bin" / "ansible-playbook"),
            "-i",
            str(bed / "inventory.yml"),
            "-e",
            f"@{bed / 'vars.yml'}",
            "site.yml",
        ]
        hosts = [f"node{i}" for i in range(1, nodes + 1)]
        for name, want in (("smoke", "changes on every node"), ("idempotent", "changed=0")):
            logfile = entry.venv / f"{name}.log"
            run_start = time.monotonic()
            rc = run_logged(play, logfile, env=env)
            problems = judge(name, rc, recap(logfile), hosts)
            entry.results[name] = "FAIL" if problems else "pass"
            log(
                f"{entry.line}: {name} run {'passed' if not problems else 'FAILED (' + '; '.join(problems) + ')'} "
                f"in {time.monotonic() - run_start:.0f} s, want {want} ({logfile})"
            )
            if problems:
                print(tail(logfile, 40), file=sys.stderr)
                if name == "smoke":
                    entry.results["idempotent"] = "-"
                    return


def deprecations(entry: Line) -> int:
    """How many deprecation warnings this core printed over the unit, smoke and idempotent logs."""
    total = 0
    for name in ("unit", "smoke", "idempotent"):
        logfile = entry.venv / f"{name}.log"
        if logfile.exists():
            total += logfile.read_text(errors="replace").count("DEPRECATION WARNING")
    return total


def table(lines: list[Line], checks: list[str]) -> str:
    head = ["core", "python"] + checks + ["deprecations", "minutes"]
    rows = [
        [e.core_version or e.pin.split("==")[1], e.python_version]
        + [e.results.get(c, "-") for c in checks]
        + [str(deprecations(e)), f"{e.seconds / 60:.1f}"]
        for e in lines
    ]
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [head, ["-" * w for w in widths]] + rows)


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="core_matrix", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", help="comma-separated lines of tests/cores.txt to run (default: all)")
    parser.add_argument("--no-sanity", action="store_true", help="skip ansible-test sanity")
    parser.add_argument("--no-smoke", action="store_true", help="skip the site.yml runs on the test bed")
    parser.add_argument("--bed", default=os.environ.get("GTSFM_CORES_BED", "cores"), help="test bed name (cores)")
    parser.add_argument("--nodes", type=int, default=3, help="nodes of the test bed (3)")
    args = parser.parse_args()

    lines = read_lines()
    if args.lines:
        wanted = [w.strip() for w in args.lines.split(",") if w.strip()]
        unknown = sorted(set(wanted) - {e.line for e in lines})
        if unknown:
            raise SystemExit(
                f"core_matrix: --lines names {', '.join(unknown)}, not in {CORES_FILE} "
                f"(it has {', '.join(e.line for e in lines)})"
            )
        lines = [e for e in lines if e.line in wanted]
    check_pythons(lines)
    pytest = pytest_pin()
    checks = ["unit"] + ([] if args.no_sanity else ["sanity"]) + ([] if args.no_smoke else ["smoke", "idempotent"])

    total = time.monotonic()
    try:
        for entry in lines:
            start = time.monotonic()
            log(f"== ansible-core {entry.line} on Python {entry.python_version} ({entry.interpreter})")
            if not ensure_venv(entry, pytest):
                entry.results = {c: "FAIL" for c in checks}
                entry.seconds = time.monotonic() - start
                continue
            entry.core_version = subprocess.run(
                [str(entry.venv / "bin" / "python"), "-c", "import ansible.release as r; print(r.__version__)"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            env = core_env(entry)
            step(
                entry,
                "unit",
                [str(entry.venv / "bin" / "python"), "-m", "pytest", "tests/unit", "-q", "-p", "no:cacheprovider"],
                env,
            )
            if not args.no_sanity:
                sanity_env = dict(
                    env,
                    VENV=str(entry.venv),
                    SANITY_DIR=str(Path.home() / ".cache" / "gtsfm-cluster-sanity-cores" / entry.line),
                )
                step(entry, "sanity", [str(ROOT / "scripts" / "sanity")], sanity_env)
            if not args.no_smoke:
                smoke(entry, args.bed, args.nodes)
            entry.seconds = time.monotonic() - start
    finally:
        if not args.no_smoke:
            with open(BED_LOCK, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                subprocess.run(
                    [str(ROOT / "scripts" / "testbed"), "down", "--name", args.bed], capture_output=True, check=False
                )

    print()
    print(table(lines, checks))
    print(f"\n{len(lines)} ansible-core line(s) in {(time.monotonic() - total) / 60:.1f} min; logs in {CACHE}/<line>/")
    failed = [e.line for e in lines if any(r == "FAIL" for r in e.results.values())]
    if failed:
        print(f"FAILED: ansible-core {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
