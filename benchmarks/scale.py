"""Benchmark: what the controller does for N = 64 to 1,024 nodes, measured without nodes, and a model to 1,024.

    .venv/bin/python benchmarks/scale.py [--nodes 64 128 256 512 1024] [--site-json site.json] [--json F] [--plot F]

No test bed: nothing here opens a connection. Three measurements on this machine, each in a fresh process:
  1. the inventory: `ansible-inventory --list` of a GTSfM cluster.yaml with N workers (the cluster_yaml plugin),
     wall time and peak memory;
  2. the controller's per-host work: a play over those N hosts of controller-only tasks (`set_fact`, as the roles'
     planning tasks are), one that sets a per-host fact and one that reads every peer's fact the way the roles'
     cross-host expressions do (`groups[...] | map('extract', hostvars, ...)`, N per host, N^2 in all);
  3. with --site-json (what benchmarks/site.py --json wrote, N up to 32 on real nodes), the time of one remote
     call per node, fitted per fork batch.
Then a model for a no-op re-run of site.yml at N = 64 to 1,024 from those fits (forks from ansible.cfg), with the
broadcast chain's start-up and the Dask start beside it. Prints tables; never asserts on time.
"""

from __future__ import annotations

import argparse
import configparser
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bed import markdown_table  # the benchmarks' shared helpers (benchmarks/_bed.py)

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
# Measured elsewhere in benchmarks/ (docs/broadcast.md, docs/benchmarks.md): each hop of the broadcast chain takes
# about 0.12 s to start (an ssh login and a python3 start, one after the other); Dask's SSHCluster joined one more
# worker per 0.43 s (1.3 s at N=2, 3.9 s at N=8) on this 2-core machine.
HOP_START_S = 0.12
DASK_JOIN_S = 0.43


def forks() -> int:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "ansible.cfg")
    return cfg.getint("defaults", "forks", fallback=5)


def timed(argv: list[str], cwd: Path, env: dict) -> tuple[float, float, str]:
    """Wall seconds and peak memory (MiB) of one fresh process (its own child of a wrapper, so maxrss is its own)."""
    wrapper = (
        "import resource, subprocess, sys, time; t = time.monotonic(); "
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode); "
        "sys.stderr.write(p.stdout[-2000:] + p.stderr[-4000:])"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *argv], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    wall, kib, rc = out.stdout.split()
    if rc != "0":
        raise RuntimeError(f"{' '.join(argv)} failed ({rc}):\n{out.stderr}")
    return float(wall), int(kib) / 1024, out.stderr


def cluster_yaml(path: Path, nodes: int) -> None:
    """GTSfM's plain shape with N hosts on documentation address blocks (never contacted)."""
    hosts = [f"node{i}.lab.example.org" for i in range(1, nodes + 1)]
    path.write_text("workers:\n" + "".join(f"  - {h}\n" for h in hosts))


PLAY = """- name: Controller-only work per host, as the roles' planning tasks do
  hosts: gtsfm_cluster
  gather_facts: false
  tasks:
    - name: A per-host fact (as the stage publishes cluster_facts_node)
      ansible.builtin.set_fact:
        bench_node: {addresses: ["{{ inventory_hostname }}"], key: "ssh-ed25519 AAAA{{ inventory_hostname }}"}
    - name: Every peer's fact on every host (as a cross-host expression reads them)
      ansible.builtin.set_fact:
        bench_peers: "{{ groups['gtsfm_cluster'] | map('extract', hostvars, ['bench_node', 'key']) | list | length }}"
"""
# The same peers' list made once for the play (run_once: set_fact's result lands on every host), then read per host.
ONCE = """    - name: Every peer's fact, read once for the play
      ansible.builtin.set_fact:
        bench_all: "{{ groups['gtsfm_cluster'] | map('extract', hostvars, ['bench_node', 'key']) | list }}"
      run_once: true
    - name: Each host takes the shared list
      ansible.builtin.set_fact:
        bench_peers: "{{ bench_all | length }}"
"""


def measure_controller(nodes: int, work: Path) -> dict:
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    config = work / f"cluster-{nodes}.yaml"
    cluster_yaml(config, nodes)
    inv_wall, inv_mib, _out = timed(["ansible-inventory", "-i", str(config), "--list"], ROOT, env)
    play = work / "play.yml"
    play.write_text(PLAY)
    base = work / "base.yml"
    base.write_text(PLAY.split("    - name: Every peer", maxsplit=1)[0])
    base_wall, _base_mib, _out = timed(["ansible-playbook", "-i", str(config), str(base)], ROOT, env)
    play_wall, play_mib, _out = timed(["ansible-playbook", "-i", str(config), str(play)], ROOT, env)
    once = work / "once.yml"
    once.write_text(base.read_text() + ONCE)
    once_wall, _once_mib, _out = timed(["ansible-playbook", "-i", str(config), str(once)], ROOT, env)
    return {
        "nodes": nodes,
        "inventory_s": round(inv_wall, 2),
        "inventory_mib": round(inv_mib, 1),
        "one_task_s": round(base_wall, 2),
        "with_cross_host_s": round(play_wall, 2),
        "cross_host_task_s": round(play_wall - base_wall, 2),
        "play_peak_mib": round(play_mib, 1),
        # Two tasks instead of one: the shared list's cost beyond the base play, minus one plain task's share.
        "once_then_shared_s": round(once_wall - base_wall, 2),
    }


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares y = a + b x."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - b * mx, b


def site_fit(path: Path, nfork: int) -> dict | None:
    """From benchmarks/site.py's JSON: no-op wall = a + b * (remote calls on the busiest node x fork batches)."""
    if not path:
        return None
    rows = json.loads(path.read_text())
    xs = [r["rerun"]["remote_max"] * math.ceil(r["nodes"] / nfork) for r in rows]
    ys = [r["rerun"]["wall_s"] for r in rows]
    a, b = fit_line(xs, ys)
    busiest = max(rows, key=lambda r: r["nodes"])["rerun"]["remote_max"]
    return {
        "fixed_s": round(a, 2),
        "per_call_batch_s": round(b, 3),
        "busiest_calls": busiest,
        "measured": {r["nodes"]: r["rerun"]["wall_s"] for r in rows},
    }


def model(rows: list[dict], site: dict | None, nfork: int, targets: list[int]) -> list[dict]:
    """Predicted seconds at each N: controller tasks (fitted on rows), remote calls (fitted on site), chain, Dask."""
    ns = [r["nodes"] for r in rows]
    per_host = fit_line(ns, [r["one_task_s"] for r in rows])
    # The cross-host task's cost over N^2 (peer reads): its slope per pair.
    pair = fit_line([n * n for n in ns], [r["cross_host_task_s"] for r in rows])
    inv = fit_line(ns, [r["inventory_s"] for r in rows])
    out = []
    for n in targets:
        remote = None
        if site:
            # The busiest node's calls at the largest N measured: they do not grow with N.
            remote = site["fixed_s"] + site["per_call_batch_s"] * site["busiest_calls"] * math.ceil(n / nfork)
        out.append(
            {
                "nodes": n,
                "inventory_s": inv[0] + inv[1] * n,
                "controller_task_s": per_host[0] + per_host[1] * n,
                "cross_host_task_s": max(pair[0] + pair[1] * n * n, 0.0),
                "noop_site_s": remote,
                "chain_start_s": HOP_START_S * (n - 1),
                "dask_join_s": DASK_JOIN_S * n,
            }
        )
    return out


def table(rows: list[dict]) -> str:
    return markdown_table(
        "| N | inventory parse (s) | inventory peak (MiB) | play of one per-host task (s) | "
        "cross-host task, N² reads (s) | play peak (MiB) |",
        "|---:|---:|---:|---:|---:|---:|",
        (
            f"| {r['nodes']} | {r['inventory_s']:.2f} | {r['inventory_mib']:.0f} | {r['one_task_s']:.2f} | "
            f"{r['cross_host_task_s']:.2f} | {r['play_peak_mib']:.0f} |"
            for r in rows
        ),
    )


def model_table(rows: list[dict]) -> str:
    def line(r: dict) -> str:
        noop = f"{r['noop_site_s']:.0f}" if r["noop_site_s"] is not None else "(needs --site-json)"
        return (
            f"| {r['nodes']} | {r['inventory_s']:.1f} | {r['controller_task_s']:.1f} | "
            f"{r['cross_host_task_s']:.1f} | {noop} | {r['chain_start_s']:.0f} | {r['dask_join_s']:.0f} |"
        )

    return markdown_table(
        "| N | inventory (s) | one controller task (s) | one cross-host task (s) | no-op site.yml (s) | "
        "broadcast chain start (s) | Dask workers joined (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        (line(r) for r in rows),
    )


def plot(rows: list[dict], predicted: list[dict], path: Path) -> None:
    import matplotlib  # noqa: PLC0415  (only when a plot is asked for)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import NullFormatter  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ns = [r["nodes"] for r in rows]
    ax.plot(ns, [r["inventory_s"] for r in rows], "o-", label="inventory parse (measured)")
    ax.plot(ns, [r["one_task_s"] for r in rows], "s-", label="play of one per-host task (measured)")
    ax.plot(ns, [r["cross_host_task_s"] for r in rows], "^-", label="one cross-host task, N² reads (measured)")
    pn = [p["nodes"] for p in predicted]
    ax.plot(pn, [p["chain_start_s"] for p in predicted], "--", label="broadcast chain start-up (model)")
    ax.plot(pn, [p["dask_join_s"] for p in predicted], ":", label="Dask workers joined (model)")
    if predicted and predicted[0]["noop_site_s"] is not None:
        ax.plot(pn, [p["noop_site_s"] for p in predicted], "-.", label="no-op site.yml (model)")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="nodes N",
        ylabel="seconds",
        title="The controller at 64 to 1,024 nodes (this 2-core machine)",
    )
    ticks = sorted(set(ns) | set(pn))
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    parser.add_argument("--site-json", type=Path, help="benchmarks/site.py --json output, for the remote-call fit")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    nfork = forks()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as work:
        for n in args.nodes:
            started = time.monotonic()
            rows.append(measure_controller(n, Path(work)))
            print(f"N={n}: measured in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    site = site_fit(args.site_json, nfork) if args.site_json else None
    predicted = model(rows, site, nfork, [64, 128, 256, 512, 1024])
    print(f"Measured on this machine (forks = {nfork}, from ansible.cfg):\n")
    print(table(rows))
    if site:
        print(
            f"\nNo-op site.yml on real nodes (N = {', '.join(map(str, site['measured']))}): wall = "
            f"{site['fixed_s']} s + {site['per_call_batch_s']} s x (calls on the busiest node x ceil(N / {nfork}))."
        )
    print("\nModel:\n")
    print(model_table(predicted))
    if args.json:
        args.json.write_text(
            json.dumps({"measured": rows, "site_fit": site, "model": predicted, "forks": nfork}, indent=1)
        )
    if args.plot:
        plot(rows, predicted, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
