"""Benchmark: the collection's SSH mesh against GTSfM's N x N ssh-copy-id procedure, on real test beds.

    .venv/bin/python benchmarks/ssh_mesh.py [--nodes 2 4 8 16] [--json FILE]

For each N, on a test bed of N real SSH hosts (scripts/testbed, bed name 'bench'):
  1. ours, first run: site.yml --tags ssh_mesh,known_hosts on a fresh bed, through ansible-runner;
  2. ours, no-op re-run: the same play again on the same bed;
  3. GTSfM's approach on another fresh bed: from every node a, for every node b in turn,
     `sshpass -f ~/.pw ssh-copy-id -i ~/.ssh/id_ed25519.pub b` then `ssh -o BatchMode=yes b true`,
     as gtsfm/utils/ssh_passwordless_setup.py does (its key generation and host key trust are set up untimed).
Prints wall times, remote task invocations per host and the speed-up, side by side. Never asserts on time.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from _bed import BenchError, fresh_bed, log, run_play, tail, testbed  # the benchmarks' shared helpers (_bed.py)

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
BED = "bench"
TARGET_N = 16
TARGET_RATIO = 15.0


# --- test bed -------------------------------------------------------------------------------------------------


def bed_down() -> None:
    testbed("down", "--name", BED)


def ssh(bed: Path, node: str, command: str, timeout: float, stdin: str | None = None) -> subprocess.CompletedProcess:
    """One controller ssh to a node, with the bed's ssh_config (strict host key checking, key login)."""
    try:
        return subprocess.run(
            ["ssh", "-F", str(bed / "ssh_config"), node, command],
            text=True,
            capture_output=True,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        raise BenchError(f"ssh {node} timed out after {timeout:.0f} s: {command}\n{tail(err)}") from exc


# --- ours: site.yml through ansible-runner --------------------------------------------------------------------

# --- GTSfM's approach ------------------------------------------------------------------------------------------


def gtsfm_prepare(bed: Path, names: list[str]) -> None:
    """Untimed: the state GTSfM's helper assumes. Key pairs, host keys trusted (by our known_hosts play), ~/.pw."""
    password = (bed / "password").read_text()
    for node in names:
        res = ssh(
            bed,
            node,
            "mkdir -p -m 700 ~/.ssh && ssh-keygen -q -t ed25519 -N '' -f ~/.ssh/id_ed25519"
            " && (umask 077 && cat > ~/.pw) && chmod 600 ~/.pw",
            timeout=60,
            stdin=password,
        )
        if res.returncode != 0:
            raise BenchError(f"preparing {node} for GTSfM's procedure failed ({res.returncode}):\n{tail(res.stderr)}")
    run_play(bed, names, "known_hosts")


def gtsfm_mesh(bed: Path, names: list[str]) -> dict:
    """Timed: N sequential controller ssh's, each running N sequential ssh-copy-id + BatchMode login steps."""
    targets = " ".join(shlex.quote(n) for n in names)
    loop = (
        f"for b in {targets}; do "
        'sshpass -f ~/.pw ssh-copy-id -i ~/.ssh/id_ed25519.pub "$b" 1>&2; c=$?; '
        'ssh -o BatchMode=yes "$b" true </dev/null 1>&2; l=$?; '
        'echo "pair $b $c $l"; done'
    )
    failures: list[str] = []
    ok = 0
    started = time.time()
    for source in names:
        res = ssh(bed, source, loop, timeout=60 + 10 * len(names))
        seen = set()
        for line in res.stdout.splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] == "pair":
                seen.add(parts[1])
                if parts[2] == "0" and parts[3] == "0":
                    ok += 1
                else:
                    failures.append(f"{source} -> {parts[1]}: ssh-copy-id rc {parts[2]}, BatchMode login rc {parts[3]}")
        failures += [f"{source} -> {t}: no result" for t in names if t not in seen]
        if res.returncode != 0 and len(seen) < len(names):
            failures.append(f"{source}: controller ssh ended {res.returncode}:\n{tail(res.stderr, 15)}")
    wall = time.time() - started
    if failures:
        raise BenchError("GTSfM's procedure did not give a working mesh:\n" + "\n".join(failures[:20]))
    return {"wall_s": round(wall, 3), "pairs": len(names) ** 2, "logins_ok": ok}


# --- report ----------------------------------------------------------------------------------------------------


def span(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}-{high}"


def table(rows: list[dict]) -> str:
    head = [
        "N",
        "ours first (s)",
        "ours re-run (s)",
        "remote tasks/host first (min-max)",
        "re-run",
        "changed on re-run",
        "GTSfM N² (s)",
        "GTSfM/ours first (×)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---:"] * len(head)) + "|"]
    for r in rows:
        first, rerun, gtsfm = r["ours_first"], r["ours_rerun"], r["gtsfm"]
        cells = [
            str(r["nodes"]),
            f"{first['wall_s']:.1f}",
            f"{rerun['wall_s']:.1f}",
            span(first["remote_min"], first["remote_max"]),
            span(rerun["remote_min"], rerun["remote_max"]),
            str(rerun["changed"]),
            f"{gtsfm['wall_s']:.1f}",
            f"{r['ratio_first']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def task_table(title: str, tasks: list[dict]) -> str:
    lines = [
        title,
        "| task | action | on node | hosts ran | wall (s) | slowest host (s) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for t in tasks:
        where = {True: "yes", False: "controller"}.get(t["remote"], "skipped")
        lines.append(
            f"| {t['task']} | {t['action']} | {where} | {t['ran_on']} | {t['wall_s']:.2f} | {t['max_host_s']:.2f} |"
        )
    return "\n".join(lines)


def summary(rows: list[dict]) -> list[str]:
    out = []
    for phase, label in (("ours_first", "first run"), ("ours_rerun", "re-run")):
        spans = {span(r[phase]["remote_min"], r[phase]["remote_max"]) for r in rows}
        same = "the same at every N" if len(spans) == 1 else "NOT the same at every N"
        out.append(f"Remote task invocations per host, {label}: {', '.join(sorted(spans))}: {same}.")
    ratios = [r["ratio_first"] for r in rows]
    widens = all(b > a for a, b in zip(ratios, ratios[1:]))
    out.append(
        "GTSfM/ours first by N: "
        + ", ".join(f"N={r['nodes']}: {r['ratio_first']:.1f}×" for r in rows)
        + (f" (widens with N: {'yes' if widens else 'no'})" if len(rows) > 1 else "")
    )
    last = rows[-1]
    if last["nodes"] >= TARGET_N:
        verdict = "met" if last["ratio_first"] >= TARGET_RATIO else "NOT met"
        out.append(
            f"At N={last['nodes']}: ours first run is {last['ratio_first']:.1f}× faster than GTSfM's approach "
            f"(target at N={TARGET_N}: ≥ {TARGET_RATIO:.0f}×): {verdict}."
        )
    else:
        out.append(
            f"At the largest N measured ({last['nodes']}): {last['ratio_first']:.1f}×; the target "
            f"(≥ {TARGET_RATIO:.0f}× at N={TARGET_N}) needs --nodes ... {TARGET_N}."
        )
    return out


def machine() -> dict:
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "ansible_core": importlib.metadata.version("ansible-core"),
        "ansible_runner": importlib.metadata.version("ansible-runner"),
        "python": sys.version.split()[0],
    }


def bench_one(nodes: int) -> dict:
    log(f"N={nodes}: ours")
    bed, names = fresh_bed(BED, nodes)
    first = run_play(bed, names, "ssh_mesh,known_hosts")
    log(f"N={nodes}: ours first run {first['wall_s']:.1f} s")
    rerun = run_play(bed, names, "ssh_mesh,known_hosts")
    log(f"N={nodes}: ours re-run {rerun['wall_s']:.1f} s, {rerun['changed']} changed")
    log(f"N={nodes}: GTSfM's approach")
    bed, names = fresh_bed(BED, nodes)
    gtsfm_prepare(bed, names)
    gtsfm = gtsfm_mesh(bed, names)
    log(f"N={nodes}: GTSfM's approach {gtsfm['wall_s']:.1f} s for {gtsfm['pairs']} pairs")
    return {
        "nodes": nodes,
        "ours_first": first,
        "ours_rerun": rerun,
        "gtsfm": gtsfm,
        "ratio_first": round(gtsfm["wall_s"] / first["wall_s"], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[2, 4, 8, 16], help="cluster sizes (default 2 4 8 16)")
    parser.add_argument("--json", type=Path, help="also write the results, per-task timings included, to this file")
    args = parser.parse_args()
    if any(not 1 <= n <= 64 for n in args.nodes):
        parser.error("--nodes takes sizes from 1 to 64")
    if VENV_BIN.is_dir():
        os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"

    info = machine()
    rows: list[dict] = []
    try:
        for nodes in sorted(set(args.nodes)):
            rows.append(bench_one(nodes))
    except BenchError as exc:
        print(f"ssh_mesh benchmark: {exc}", file=sys.stderr)
        return 1
    finally:
        try:
            bed_down()
        except BenchError as exc:
            print(f"ssh_mesh benchmark: could not bring bed '{BED}' down: {exc}", file=sys.stderr)

    print(f"SSH mesh: gtsfm.cluster (site.yml --tags ssh_mesh,known_hosts) vs GTSfM's N² ssh-copy-id, {info['date']}")
    print(
        f"Machine: {info['cores']} cores ({info['usable_cores']} usable); every node, its sshd and the controller "
        f"share these cores. ansible-core {info['ansible_core']}, ansible-runner {info['ansible_runner']}."
    )
    print()
    print(table(rows))
    print()
    for line in summary(rows):
        print(line)
    last = rows[-1]
    print()
    for phase, label in (("ours_first", "first run"), ("ours_rerun", "re-run")):
        run = last[phase]
        in_tasks = sum(t["wall_s"] for t in run["tasks"])
        print(
            task_table(
                f"Per task at N={last['nodes']}, {label}: {run['wall_s']:.1f} s in all, {in_tasks:.1f} s in "
                f"tasks, first play starting {run['startup_s']:.1f} s after launch:",
                run["tasks"],
            )
        )
        print()
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": rows}, indent=2) + "\n")
        print(f"Results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
