"""Benchmark: gtsfm.cluster.broadcast against one copy and a star of scp copies, on real test beds.

    .venv/bin/python benchmarks/broadcast.py [--nodes 2 4 8] [--mb 200] [--link-rate 100mbit] [--no-star] [--json F]

For each N, on a fresh test bed of N real SSH hosts whose links are shaped to --link-rate (scripts/testbed, bed name
'broadcast-bench'), after site.yml --tags ssh_mesh,known_hosts built the mesh, with --mb MB of random bytes on node1:
  1. one copy: node1 `scp` to node2 alone (the limit any broadcast is measured against);
  2. a star: node1 `scp` to every other node, all at once (parallel) and one after the other (sequential);
  3. ours: the module gtsfm.cluster.broadcast (verification and atomic placement on), through ansible-runner; its
     own time on the source node, and the whole ansible-playbook wall time; then a re-run, which must send nothing.
Every copy uses the same cipher (aes128-gcm@openssh.com) and BatchMode with strict host key checking.
Prints a table and ratios. Never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ansible_runner

from _bed import BenchError, log, markdown_table, tail, testbed  # the benchmarks' shared helpers (benchmarks/_bed.py)

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
BED = "broadcast-bench"
DATA = "/tmp/gtsfm-bench/data"
CIPHER = "aes128-gcm@openssh.com"
SSH_OPTS = f"-o BatchMode=yes -o StrictHostKeyChecking=yes -c {CIPHER}"
# Issue 26: 1 GB to 16 nodes over 100 Mbit links within 1.10x of one copy to one node.
TARGET_RATIO = 1.10


def ssh(bed: Path, node: str, command: str, timeout: float = 900) -> str:
    """Run command on node through the bed's ssh_config; its stdout, or BenchError with its stderr."""
    res = subprocess.run(
        ["ssh", "-F", str(bed / "ssh_config"), node, command],
        text=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    if res.returncode != 0:
        raise BenchError(f"ssh {node} {command!r} failed ({res.returncode}):\n{tail(res.stderr)}")
    return res.stdout


def timed_on(bed: Path, node: str, script: str) -> float:
    """Seconds `script` (bash, set -e -o pipefail) takes on node, measured on the node itself."""
    wrapped = (
        "set -e -o pipefail; s=$(date +%s.%N); " + script + "; e=$(date +%s.%N); "
        'python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" $s $e'
    )
    return float(ssh(bed, node, "bash -c " + shlex.quote(wrapped)).strip().splitlines()[-1])


def playbook(bed: Path, playbook_path: Path, extravars: dict, tags: str | None = None) -> tuple[float, list[dict]]:
    """Run a playbook on the bed through ansible-runner: (wall seconds, result events). BenchError unless it passed."""
    events: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as pdd:
        started = time.time()
        result = ansible_runner.run(
            private_data_dir=pdd,
            playbook=str(playbook_path),
            inventory=str(bed / "inventory.yml"),
            tags=tags,
            extravars=extravars,
            envvars={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
            cmdline=f"-e @{shlex.quote(str(bed / 'vars.yml'))}",
            quiet=True,
            event_handler=lambda e: events.append(e) or True,
        )
        wall = time.time() - started
        if result.status != "successful" or result.rc != 0:
            raise BenchError(
                f"{playbook_path.name} ended {result.status} (rc {result.rc}):\n{tail(result.stdout.read(), 60)}"
            )
    return wall, events


def broadcast_result(events: list[dict]) -> dict:
    for event in events:
        data = event.get("event_data") or {}
        if event.get("event") == "runner_on_ok" and (data.get("task_action") or "").endswith("broadcast"):
            return data["res"]
    raise BenchError("no result of the broadcast task in the event stream")


def measure(nodes: int, mb: int, link_rate: str, star: bool = True) -> dict:
    testbed("down", "--name", BED)
    started = time.monotonic()
    bed = Path(testbed("up", "--nodes", str(nodes), "--name", BED, "--link-rate", link_rate).strip().splitlines()[-1])
    names = [n["name"] for n in json.loads((bed / "state.json").read_text())["nodes"]]
    log(f"N={nodes}: bed up in {time.monotonic() - started:.0f} s; building the mesh")
    playbook(bed, ROOT / "site.yml", {}, tags="ssh_mesh,known_hosts")
    source, targets = names[0], names[1:]
    for name in names:
        ssh(bed, name, f"mkdir -p {os.path.dirname(DATA)}")
    ssh(bed, source, f"head -c {mb}M /dev/urandom > {DATA}")
    row: dict = {"N": nodes, "mb": mb, "link_rate": link_rate}

    log(f"N={nodes}: one copy {source} -> {targets[0]}")
    row["one_s"] = timed_on(bed, source, f"scp -q {SSH_OPTS} {DATA} {targets[0]}:{DATA}.one")
    ssh(bed, targets[0], f"rm -f {DATA}.one")

    row.update(star_parallel_s=None, star_sequential_s=None, star_s=None)
    if star:
        _star(bed, source, targets, row, nodes)
    return _ours(bed, source, targets, names, row)


def _star(bed: Path, source: str, targets: list[str], row: dict, nodes: int) -> None:
    log(f"N={nodes}: star, parallel")
    par = " ".join(f"scp -q {SSH_OPTS} {DATA} {t}:{DATA}.star & pids+=($!);" for t in targets)
    row["star_parallel_s"] = timed_on(bed, source, f'pids=(); {par} for p in "${{pids[@]}}"; do wait $p; done')
    for t in targets:
        ssh(bed, t, f"rm -f {DATA}.star")
    log(f"N={nodes}: star, sequential")
    seq = "; ".join(f"scp -q {SSH_OPTS} {DATA} {t}:{DATA}.star" for t in targets)
    row["star_sequential_s"] = timed_on(bed, source, seq)
    for t in targets:
        ssh(bed, t, f"rm -f {DATA}.star")
    row["star_s"] = min(row["star_parallel_s"], row["star_sequential_s"])


def _ours(bed: Path, source: str, targets: list[str], names: list[str], row: dict) -> dict:
    log(f"N={row['N']}: ours")
    play = ROOT / "benchmarks" / "broadcast_play.yml"
    extravars = {"broadcast_source": source, "broadcast_targets": targets, "broadcast_path": DATA}
    wall, events = playbook(bed, play, extravars)
    res = broadcast_result(events)
    if sorted(res["received"]) != sorted(targets):
        raise BenchError(f"ours: received {res['received']}, expected {targets}: {res.get('msg')}")
    row["ours_s"] = res["seconds"]
    row["ours_last_node_s"] = max(n["seconds"] for n in res["nodes"].values())
    row["ours_wall_s"] = round(wall, 2)
    row["ours_nodes"] = res["nodes"]
    sums = {ssh(bed, n, f"sha256sum {DATA}").split()[0] for n in names}
    row["identical"] = len(sums) == 1
    wall, events = playbook(bed, play, extravars)
    again = broadcast_result(events)
    row["rerun_s"] = again["seconds"]
    row["rerun_wall_s"] = round(wall, 2)
    row["rerun_changed"] = bool(again["changed"])
    row["rerun_sent"] = sum(n.get("wire_bytes", 0) for n in again["nodes"].values())
    for key in ("star", "ours"):
        row[f"{key}_ratio"] = round(row[f"{key}_s"] / row["one_s"], 2) if row[f"{key}_s"] is not None else None
    return row


def table(rows: list[dict]) -> str:
    def line(r: dict) -> str:
        star = (
            "(not run) | (not run) | (not run)"
            if r["star_s"] is None
            else f"{r['star_parallel_s']:.1f} | {r['star_sequential_s']:.1f} | {r['star_ratio']:.2f}"
        )
        return (
            f"| {r['N']} | {r['one_s']:.1f} | {star} | {r['ours_s']:.1f} | {r['ours_ratio']:.2f} | "
            f"{r['ours_wall_s']:.1f} | {r['rerun_s']:.1f} | {str(r['rerun_changed']).lower()}, {r['rerun_sent']} | "
            f"{'yes' if r['identical'] else 'NO'} |"
        )

    return markdown_table(
        "| N | one copy (s) | star parallel (s) | star sequential (s) | star best / one (×) | ours (s) "
        "| ours / one (×) | ours, whole play (s) | re-run (s) | re-run changed, bytes sent | identical |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
        (line(r) for r in rows),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--mb", type=int, default=200, help="MB of random bytes to send (default 200)")
    parser.add_argument("--link-rate", default="100mbit")
    parser.add_argument("--json", type=Path, help="also save every figure here")
    parser.add_argument(
        "--no-star",
        action="store_true",
        help="skip the star of scp copies (N-1 full copies through one link: long at 1 GB and N=16)",
    )
    args = parser.parse_args()
    os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"
    rows = []
    try:
        for n in args.nodes:
            if n < 2:
                raise BenchError("--nodes: each N must be 2 or more (a source and a target)")
            rows.append(measure(n, args.mb, args.link_rate, star=not args.no_star))
            log(
                f"N={n}: one {rows[-1]['one_s']:.1f} s, star {rows[-1]['star_s'] or 0:.1f} s, "
                f"ours {rows[-1]['ours_s']:.1f} s"
            )
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        testbed("down", "--name", BED)
    print(
        f"{args.mb} MB of random bytes from node1 to N-1 nodes, links shaped to {args.link_rate} both ways; "
        f"cipher {CIPHER}\n"
    )
    print(table(rows))
    last = rows[-1]
    verdict = "met" if last["ours_ratio"] <= TARGET_RATIO else "NOT met"
    print(f"\nAt N={last['N']}: ours {last['ours_ratio']:.2f}× one copy (target ≤ {TARGET_RATIO}×: {verdict}).")
    if last["star_s"] is not None:
        print(
            f"The star {last['star_ratio']:.2f}×, so ours is {last['star_s'] / last['ours_s']:.1f}× faster than the "
            "star."
        )
        print("Star / one by N: " + ", ".join(f"N={r['N']}: {r['star_ratio']:.2f}×" for r in rows if r["star_s"]))
    print("Ours / one by N: " + ", ".join(f"N={r['N']}: {r['ours_ratio']:.2f}×" for r in rows) + ".")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
