"""Benchmark: the whole site.yml, first run and no-op re-run, role by role, at growing N, on real test beds.

    flock /tmp/gtsfm-bed.lock .venv/bin/python benchmarks/site.py [--nodes 1 2 4 8 16 32] [--json F] [--plot F]

For each N, on a fresh test bed of N real SSH hosts (scripts/testbed, bed name 'bench-site'), with the bed's
vars.yml (the uv manager from the controller's wheelhouse, no weights): `site.yml` once from bare accounts, then
again (it must report changed=0). Prints, per role, the remote calls per node (module runs on the node, counted from
ansible-runner's events by tests/play_record.py, the rule the multihost tests assert on), the scheduler apart from
the other nodes, and the wall time of each run; with --plot, a PNG of calls per node and wall time against N.
Every node shares this machine's 2 cores, so wall time grows with N for any design: the per-node calls are the
figure that must not grow. Never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _bed import BenchError, fresh_bed, log, run_play, testbed  # the benchmarks' shared helpers (benchmarks/_bed.py)

BED = "bench-site"
ROLES = ("cluster_facts", "ssh_mesh", "known_hosts", "managed_blocks", "conda_env", "bashrc_init", "model_weights")


def by_role(run: dict, scheduler: str) -> dict[str, dict[str, int]]:
    """Per role: calls on the scheduler and the most on any other node."""
    out = {}
    for role, hosts in run["remote_per_role"].items():
        short = role.rsplit(".", 1)[-1] or "(play)"
        others = [n for h, n in hosts.items() if h != scheduler]
        out[short] = {"scheduler": hosts.get(scheduler, 0), "others": max(others) if others else 0}
    return out


def measure(nodes: int) -> dict:
    bed, names = fresh_bed(BED, nodes)
    try:
        first = run_play(bed, names, tags=None)
        log(f"N={nodes}: first run {first['wall_s']:.1f} s, calls per node {first['remote_min']}-{first['remote_max']}")
        rerun = run_play(bed, names, tags=None)
        log(
            f"N={nodes}: re-run {rerun['wall_s']:.1f} s, calls per node {rerun['remote_min']}-{rerun['remote_max']}, "
            f"changed={rerun['changed']}"
        )
    finally:
        testbed("down", "--name", BED)
    for run in (first, rerun):
        others = [n for h, n in run["remote_per_host"].items() if h != names[0]]
        run["scheduler_calls"], run["others_max_calls"] = run["remote_per_host"][names[0]], max(others, default=None)
    return {
        "nodes": nodes,
        "first": first,
        "rerun": rerun,
        "first_roles": by_role(first, names[0]),
        "rerun_roles": by_role(rerun, names[0]),
    }


def cell(counts: dict | None) -> str:
    if not counts:
        return "0 / 0"
    return f"{counts['scheduler']} / {counts['others']}"


def table(rows: list[dict]) -> str:
    head = ["N", "phase", "wall (s)", "changed", "controller peak (MiB)", "calls per node (min-max)"] + list(ROLES)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---:"] * 5 + ["---"] * (len(head) - 5)) + "|"]
    for r in rows:
        for phase in ("first", "rerun"):
            run, roles = r[phase], r[f"{phase}_roles"]
            cells = [
                str(r["nodes"]),
                "first run" if phase == "first" else "no-op re-run",
                f"{run['wall_s']:.1f}",
                str(run["changed"]),
                f"{run['controller_peak_mib']:.0f}",
                f"{run['remote_min']}-{run['remote_max']}",
            ]
            cells += [cell(roles.get(role)) for role in ROLES]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib  # noqa: PLC0415  (only when a plot is asked for)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import NullFormatter  # noqa: PLC0415

    ns = [r["nodes"] for r in rows]
    fig, (calls, wall) = plt.subplots(1, 2, figsize=(11, 4.2))
    for phase, label, marker in (("first", "first run", "o"), ("rerun", "no-op re-run", "s")):
        calls.plot(ns, [r[phase]["scheduler_calls"] for r in rows], marker + ":", label=f"{label}, the scheduler")
        others = [(r["nodes"], r[phase]["others_max_calls"]) for r in rows if r[phase]["others_max_calls"] is not None]
        calls.plot([n for n, _c in others], [c for _n, c in others], marker + "-", label=f"{label}, every other node")
        wall.plot(ns, [r[phase]["wall_s"] for r in rows], marker + "-", label=label)
    calls.set(
        xscale="log",
        xlabel="nodes N",
        ylabel="remote calls per node",
        title="site.yml: remote calls per node (flat = no growth with N)",
    )
    calls.set_ylim(bottom=0)
    wall.set(
        xscale="log",
        xlabel="nodes N",
        ylabel="wall time (s)",
        title="site.yml: wall time (2 cores shared by every node)",
    )
    for ax in (calls, wall):
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--plot", type=Path, help="write a PNG plot here (matplotlib)")
    args = parser.parse_args()
    rows = []
    try:
        for nodes in args.nodes:
            rows.append(measure(nodes))
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        testbed("down", "--name", BED)
        return 130
    print("Per role: scheduler / most on any other node.\n")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    if args.plot:
        plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
