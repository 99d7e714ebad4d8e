"""Benchmark: from bare accounts to a finished job, the collection against GTSfM's manual procedure, side by side.

    flock /tmp/gtsfm-bed.lock .venv/bin/python benchmarks/end_to_end.py [--nodes 2 4 8] [--link-rate 100mbit]
        [--source-rate 100mbit] [--env heavy|small] [--json FILE] [--plot docs/bench-e2e.png]

For each N, on fresh test beds of N real SSH hosts whose links are shaped to --link-rate (scripts/testbed):
  ours (bed 'e2e-ours'): site.yml on bare accounts (the mesh, host keys, the env built once on the scheduler from
    the package source and broadcast, the weights fetched once from their origin and broadcast), then
    playbooks/gtsfm_run.yml running the demo's pycolmap SfM job (demo/gtsfm_demo) on every node;
  manual (bed 'e2e-manual'): GTSfM's docs scripted as a user would run them: the N x N ssh-copy-id of
    benchmarks/ssh_mesh.py; on every node at once, uv and the same requirements installed from the same package
    source and the checkout copied; on every node at once, each weight file downloaded from the same origin; then the
    command gtsfm_run runs, started on the scheduler over ssh, and its results copied back.
The package source (scripts/wheelhouse_server.py, find-links with PEP 658 metadata) and the weights' origin are HTTP
servers on the controller, on the bed network, each capped to --source-rate in all (one uplink). Prints a table of
wall times per step and the ratio manual/ours; never asserts on time.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import hashlib
import ipaddress
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ssh_mesh import gtsfm_mesh, gtsfm_prepare, ssh  # GTSfM's N² ssh-copy-id, scripted once (ssh_mesh.py)

from _bed import BenchError, fresh_bed, log, run_play, tail, testbed  # the benchmarks' shared helpers (_bed.py)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from testbed import parse_rate  # noqa: E402  (scripts/ is not a package)
from wheelhouse_server import serve  # noqa: E402

VENV_BIN = ROOT / ".venv" / "bin"
BED_OURS, BED_MANUAL = "e2e-ours", "e2e-manual"
TARGET_N, TARGET_RATIO = 8, 5.0
CACHE = Path(os.environ.get("GTSFM_TESTBED_CACHE", Path.home() / ".cache" / "gtsfm-testbed"))
# The heavy wheelhouse of tests/heavy (torch CPU, lightgbm, scipy, dask, ...) and the demo's (pycolmap, bokeh).
HEAVY_WHEELS = sorted(CACHE.glob("heavy-wheelhouse-*"))
DEMO_WHEELS = ROOT / ".cache" / "demo-wheelhouse"
# Left out of the heavy set: on these bare Debian nodes opencv-python stops at libxcb.so.1 and PyPI's torchvision is
# built for CUDA torch, and the env check (rightly) refuses both, which would end site.yml before the job.
LEFT_OUT = ("torchvision-", "opencv_python-")
ENVS = {
    "heavy": [
        "dask",
        "distributed",
        "asyncssh",
        "pyyaml",
        "torch==2.13.0",
        "lightgbm==4.7.0",
        "scipy",
        "pycolmap==4.2.1",
        "bokeh",
    ],
    "small": ["dask", "distributed", "asyncssh", "pyyaml", "pycolmap==4.2.1"],
}
# Stand-ins for GTSfM's superglue, patchmatchnet and d2net sets (their paths in the checkout, about their sizes in
# MB): random bytes, so nothing compresses.
WEIGHTS = {
    "thirdparty/SuperGluePretrainedNetwork/models/weights/superpoint_v1.pth": 5,
    "thirdparty/SuperGluePretrainedNetwork/models/weights/superglue_indoor.pth": 46,
    "thirdparty/SuperGluePretrainedNetwork/models/weights/superglue_outdoor.pth": 46,
    "thirdparty/patchmatchnet/checkpoints/model_000007.ckpt": 1,
    "thirdparty/d2net/weights/d2_tf.pth": 30,
}
CHECKOUT = ROOT / "demo" / "gtsfm_demo"
DATASET = ROOT / ".cache" / "demo-dataset"
# What gtsfm_run runs for the demo (scripts/demo), given to both procedures.
JOB = {"num_workers": 1, "threads_per_worker": 1, "worker_memory_limit": "2GB", "dashboard_port": 8787}
PREFIX, HOME_CHECKOUT = "~/gtsfm-env", "~/gtsfm"


# --- inputs: the wheelhouse, the weights, the dataset ------------------------------------------------------------


def wheelhouse(env: str, work: Path) -> Path:
    """The package source's directory: hard links to the cached wheels the env needs (uv's wheel included)."""
    if not HEAVY_WHEELS or not DEMO_WHEELS.is_dir():
        raise BenchError(
            f"wheels missing: need {CACHE}/heavy-wheelhouse-* (make test-heavy builds it) and {DEMO_WHEELS} "
            "(make demo builds it)"
        )
    out = work / "wheelhouse"
    out.mkdir()
    for source in (HEAVY_WHEELS[-1], DEMO_WHEELS):
        for wheel in sorted(source.glob("*.whl")):
            if env == "heavy" and wheel.name.startswith(LEFT_OUT):
                continue
            if env == "small" and wheel.name.startswith(("torch", "opencv", "lightgbm", "scipy", "sympy")):
                continue
            if not (out / wheel.name).exists():
                os.link(wheel, out / wheel.name)
    return out


def installed_mb(wheels: Path, requirements: list[str], work: Path) -> float:
    """The env's installed size: the same requirements installed from the same wheels into a scratch venv here."""
    uv = work / "uv"
    wheel = next(wheels.glob("uv-*.whl"))
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); "
            "n = next(n for n in z.namelist() if n.endswith('/scripts/uv')); open(sys.argv[2], 'wb').write(z.read(n))",
            str(wheel),
            str(uv),
        ],
        check=True,
    )
    uv.chmod(0o755)
    venv = work / "size-venv"
    env = dict(os.environ, VIRTUAL_ENV=str(venv), UV_CACHE_DIR=str(work / "uv-cache"), UV_LINK_MODE="copy")
    subprocess.run([str(uv), "venv", "-q", "-p", "python3.11", str(venv)], check=True, env=env)
    subprocess.run(
        [str(uv), "pip", "install", "-q", "--no-index", "--find-links", str(wheels), *requirements], check=True, env=env
    )
    size = int(subprocess.run(["du", "-sb", str(venv)], capture_output=True, text=True, check=True).stdout.split()[0])
    subprocess.run(["rm", "-rf", str(venv), str(work / "uv-cache")], check=True)
    return size / 1e6


def weights_dir(work: Path) -> tuple[Path, dict[str, str]]:
    """The weights' origin directory (flat) and each file's sha256."""
    out = work / "weights"
    out.mkdir()
    sums = {}
    for dest, mb in WEIGHTS.items():
        data = os.urandom(mb * 1_000_000)
        (out / Path(dest).name).write_bytes(data)
        sums[dest] = hashlib.sha256(data).hexdigest()
    return out, sums


def dataset() -> Path:
    if not (DATASET / "images").is_dir():
        subprocess.run([sys.executable, str(ROOT / "demo" / "make_dataset.py"), str(DATASET)], check=True)
    return DATASET


def gateway(bed: Path) -> str:
    subnet = json.loads((bed / "state.json").read_text())["subnet"]
    return str(ipaddress.ip_network(subnet).network_address + 1)


def check_result(results: Path, nodes: int) -> dict:
    """The demo's own check of a fetched result (every image registered, cameras right, hosts used)."""
    res = subprocess.run(
        [sys.executable, str(ROOT / "demo" / "check_results.py"), str(results), "--hosts", str(nodes)],
        capture_output=True,
        text=True,
        check=False,
    )
    summary = json.loads((results / "summary.json").read_text())
    return {
        "pass": res.returncode == 0,
        "images_registered": summary["images_registered"],
        "images": summary["images"],
        "hosts_extracting": len(set(summary["extracted_by"].values())),
        "job_s": summary.get("seconds"),
        "check": tail(res.stdout + res.stderr, 12),
    }


# --- ours ----------------------------------------------------------------------------------------------------------


def ours(nodes: int, args, wheels: Path, requirements: list[str], weights: Path, work: Path) -> dict:
    bed, names = fresh_bed(BED_OURS, nodes, args.link_rate)
    rate = parse_rate(args.source_rate) if args.source_rate != "none" else None
    address = gateway(bed)
    with serve(wheels, address, rate=rate) as (index, wheel_counts), serve(weights, address, rate=rate) as (origin, w):
        site_vars = {
            "conda_env_requirements": requirements,
            "conda_env_find_links": [index],
            "conda_env_no_index": True,
            # From the package source, as the manual procedure gets it: no wheelhouse or uv shipped from here.
            "conda_env_wheelhouse_src": "",
            "conda_env_uv_src": "",
            "conda_env_checkout_src": str(CHECKOUT),
            "conda_env_min_free_mb": 4096,
            "conda_env_graphviz": "ignore",
            "model_weights_files": [{"url": origin + Path(d).name, "dest": d} for d in WEIGHTS],
            "model_weights_lock_file": str(work / f"ours-{nodes}-model_weights.lock.json"),
            "model_weights_poll_delay": 1,
        }
        log(f"N={nodes} ours: site.yml from bare accounts")
        site = run_play(bed, names, None, site_vars)
        log(f"N={nodes} ours: site.yml {site['wall_s']:.1f} s")
        fetched = {"wheels_mb": wheel_counts.total_bytes() / 1e6, "weights_mb": w.total_bytes() / 1e6}
    dest = work / f"ours-{nodes}-results"
    job_vars = {
        "gtsfm_run_dataset_src": str(dataset()),
        "gtsfm_run_name": "e2e",
        "gtsfm_run_num_workers": JOB["num_workers"],
        "gtsfm_run_threads_per_worker": JOB["threads_per_worker"],
        "gtsfm_run_worker_memory_limit": JOB["worker_memory_limit"],
        "gtsfm_run_dashboard_port": JOB["dashboard_port"],
        "gtsfm_run_poll_interval": 1,
        "gtsfm_run_fetch_dest": str(dest),
    }
    log(f"N={nodes} ours: gtsfm_run")
    job = run_play(bed, names, None, job_vars, ROOT / "playbooks" / "gtsfm_run.yml")
    log(f"N={nodes} ours: gtsfm_run {job['wall_s']:.1f} s")
    runs = sorted(p for p in dest.iterdir() if p.is_dir())
    if not runs:
        raise BenchError(f"ours at N={nodes}: gtsfm_run fetched no results into {dest}")
    return {
        "site_s": site["wall_s"],
        "job_s": job["wall_s"],
        "total_s": round(site["wall_s"] + job["wall_s"], 3),
        "source_mb": {k: round(v, 1) for k, v in fetched.items()},
        "remote_per_role": site["remote_per_role"],
        # Where site.yml's time went: start-up before the first play, then each role's tasks (their wall times).
        "site_startup_s": site["startup_s"],
        "site_by_role_s": by_role(site["tasks"]),
        "site_slowest_tasks": sorted(site["tasks"], key=lambda t: -t["wall_s"])[:12],
        "result": check_result(runs[-1], nodes),
    }


def by_role(tasks: list[dict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for t in tasks:
        role = (t["role"] or "(play)").rsplit(".", 1)[-1]
        out[role] = round(out.get(role, 0.0) + t["wall_s"], 1)
    return out


# --- the manual procedure ------------------------------------------------------------------------------------------

FETCH = (
    # What a user's wget does, with the nodes' python3 (the bare Debian nodes have no curl or wget).
    "import sys, urllib.request, shutil, os; os.makedirs(os.path.dirname(sys.argv[2]) or '.', exist_ok=True); "
    "r = urllib.request.urlopen(sys.argv[1], timeout=60); shutil.copyfileobj(r, open(sys.argv[2], 'wb'), 1 << 20)"
)


def on_every_node(bed: Path, names: list[str], command: str, what: str, timeout: float) -> None:
    """The same command on every node at once (a user with a terminal per node); BenchError naming the failures."""
    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        results = dict(zip(names, pool.map(lambda n: ssh(bed, n, command, timeout), names)))
    bad = {n: r for n, r in results.items() if r.returncode != 0}
    if bad:
        raise BenchError(
            f"manual {what} failed on {', '.join(bad)}:\n"
            + "\n".join(f"{n} ({r.returncode}): {tail(r.stdout + r.stderr, 15)}" for n, r in bad.items())
        )


def scp(bed: Path, *args: str) -> None:
    res = subprocess.run(
        ["scp", "-q", "-r", "-F", str(bed / "ssh_config"), *args], capture_output=True, text=True, check=False
    )
    if res.returncode != 0:
        raise BenchError(f"scp {' '.join(args)} failed ({res.returncode}): {tail(res.stderr)}")


def manual(nodes: int, args, wheels: Path, requirements: list[str], weights: Path, work: Path) -> dict:
    bed, names = fresh_bed(BED_MANUAL, nodes, args.link_rate)
    log(f"N={nodes} manual: untimed set-up (key pairs, host keys, the password file)")
    gtsfm_prepare(bed, names)
    steps = {}
    log(f"N={nodes} manual: the N² ssh-copy-id")
    steps["mesh_s"] = gtsfm_mesh(bed, names)["wall_s"]
    rate = parse_rate(args.source_rate) if args.source_rate != "none" else None
    address = gateway(bed)
    uv_wheel = next(wheels.glob("uv-*.whl")).name
    with serve(wheels, address, rate=rate) as (index, wheel_counts), serve(weights, address, rate=rate) as (origin, w):
        install = " && ".join(
            [
                "set -e",
                f"python3 -c {shlex.quote(FETCH)} {shlex.quote(index + uv_wheel)} /tmp/uv.whl",
                "mkdir -p ~/.local/bin",
                "python3 -c \"import zipfile; z = zipfile.ZipFile('/tmp/uv.whl'); "
                "n = next(n for n in z.namelist() if n.endswith('/scripts/uv')); "
                "open('/tmp/uv', 'wb').write(z.read(n))\"",
                "install -m 755 /tmp/uv ~/.local/bin/uv",
                f"~/.local/bin/uv venv -q -p /usr/bin/python3 {PREFIX}",
                f"VIRTUAL_ENV={PREFIX} ~/.local/bin/uv pip install -q --no-index --find-links {shlex.quote(index)} "
                + " ".join(shlex.quote(r) for r in requirements),
            ]
        )
        started = time.time()
        log(f"N={nodes} manual: the env on every node, and the checkout")
        with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
            list(pool.map(lambda n: scp(bed, str(CHECKOUT), f"{n}:gtsfm"), names))
        on_every_node(bed, names, install, "env install", timeout=3600)
        steps["env_s"] = round(time.time() - started, 3)
        log(f"N={nodes} manual: env {steps['env_s']:.1f} s")
        downloads = " && ".join(
            f"python3 -c {shlex.quote(FETCH)} {shlex.quote(origin + Path(d).name)} {HOME_CHECKOUT}/{d}" for d in WEIGHTS
        )
        started = time.time()
        on_every_node(bed, names, downloads, "weights download", timeout=3600)
        steps["weights_s"] = round(time.time() - started, 3)
        log(f"N={nodes} manual: weights {steps['weights_s']:.1f} s")
        fetched = {"wheels_mb": wheel_counts.total_bytes() / 1e6, "weights_mb": w.total_bytes() / 1e6}
    # The same job gtsfm_run starts, by hand: dataset and cluster config to the scheduler, the runner over ssh in
    # the env, the results copied back.
    scheduler = names[0]
    flags = {
        "--loader": "colmap",
        "--dataset_dir": "$HOME/gtsfm-data/demo-dataset",
        "--config_name": "sift_front_end.yaml",
        # GTSfM's runner reads a relative name under gtsfm/configs/, where the user put it.
        "--cluster_config": "bench_cluster.yaml",
        "--num_workers": JOB["num_workers"],
        "--threads_per_worker": JOB["threads_per_worker"],
        "--worker_memory_limit": JOB["worker_memory_limit"],
        "--dashboard_port": f":{JOB['dashboard_port']}",
        "--output_root": "$HOME/gtsfm-runs/e2e",
    }
    run = f"cd {HOME_CHECKOUT} && PATH={PREFIX}/bin:$PATH ./run " + " ".join(f"{k} {v}" for k, v in flags.items())
    dest = work / f"manual-{nodes}-results"
    started = time.time()
    log(f"N={nodes} manual: the job from the scheduler")
    ssh(bed, scheduler, "mkdir -p ~/gtsfm-data", timeout=60)
    scp(bed, str(dataset()), f"{scheduler}:gtsfm-data/demo-dataset")
    scp(bed, str(bed / "cluster.yaml"), f"{scheduler}:gtsfm/gtsfm/configs/bench_cluster.yaml")
    res = ssh(bed, scheduler, run, timeout=1800)
    if res.returncode != 0:
        raise BenchError(f"manual job at N={nodes} ended {res.returncode}:\n{tail(res.stdout + res.stderr, 40)}")
    scp(bed, f"{scheduler}:gtsfm-runs/e2e/results", str(dest))
    steps["job_s"] = round(time.time() - started, 3)
    log(f"N={nodes} manual: job {steps['job_s']:.1f} s")
    return {
        **steps,
        "total_s": round(sum(steps.values()), 3),
        "source_mb": {k: round(v, 1) for k, v in fetched.items()},
        "result": check_result(dest, nodes),
    }


# --- report --------------------------------------------------------------------------------------------------------


def source_mb(side: dict) -> float:
    return side["source_mb"]["wheels_mb"] + side["source_mb"]["weights_mb"]


def table(rows: list[dict]) -> str:
    head = [
        "N",
        "ours: site.yml (s)",
        "ours: job (s)",
        "ours (s)",
        "manual: mesh (s)",
        "manual: env (s)",
        "manual: weights (s)",
        "manual: job (s)",
        "manual (s)",
        "manual/ours (×)",
        "MB from the sources, ours / manual",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---:"] * len(head)) + "|"]
    for r in rows:
        o, m = r["ours"], r["manual"]
        cells = [r["nodes"], o["site_s"], o["job_s"], o["total_s"], m["mesh_s"], m["env_s"], m["weights_s"]]
        cells += [m["job_s"], m["total_s"]]
        text = [str(cells[0])] + [f"{c:.1f}" for c in cells[1:]]
        text += [f"{r['ratio']:.2f}", f"{source_mb(o):.0f} / {source_mb(m):.0f}"]
        lines.append("| " + " | ".join(text) + " |")
    return "\n".join(lines)


def verdict(rows: list[dict]) -> list[str]:
    ratios = [r["ratio"] for r in rows]
    out = ["manual/ours by N: " + ", ".join(f"N={r['nodes']}: {r['ratio']:.2f}×" for r in rows)]
    if len(rows) > 1:
        out[0] += f" (grows with N: {'yes' if all(b > a for a, b in zip(ratios, ratios[1:])) else 'no'})"
    at = {r["nodes"]: r["ratio"] for r in rows}
    if TARGET_N in at:
        met = at[TARGET_N] >= TARGET_RATIO and (len(rows) == 1 or all(b > a for a, b in zip(ratios, ratios[1:])))
        out.append(
            f"Target (ours ≥ {TARGET_RATIO:.0f}× faster at N={TARGET_N}, the gap growing with N): "
            + ("met." if met else f"NOT met: {at[TARGET_N]:.2f}× at N={TARGET_N}.")
        )
    else:
        out.append(f"Target (≥ {TARGET_RATIO:.0f}× at N={TARGET_N}) not measured: N={TARGET_N} is not in this run.")
    for r in rows:
        roles = ", ".join(f"{k} {v:.1f}" for k, v in r["ours"]["site_by_role_s"].items() if v >= 0.5)
        out.append(f"N={r['nodes']} ours, site.yml by role (s): start-up {r['ours']['site_startup_s']:.1f}, {roles}.")
        for side in ("ours", "manual"):
            res = r[side]["result"]
            out.append(
                f"N={r['nodes']} {side}: {res['images_registered']} of {res['images']} images registered, features "
                f"on {res['hosts_extracting']} host(s), demo check {'PASS' if res['pass'] else 'FAIL'}."
            )
    return out


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib  # noqa: PLC0415  (only for --plot)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(9, 5))
    width = 0.38
    xs = range(len(rows))
    parts = [
        ("ours", "site_s", "ours: site.yml", "#2b6cb0"),
        ("ours", "job_s", "ours: job", "#90cdf4"),
        ("manual", "mesh_s", "manual: N² ssh-copy-id", "#9b2c2c"),
        ("manual", "env_s", "manual: env on every node", "#e53e3e"),
        ("manual", "weights_s", "manual: weights on every node", "#ed8936"),
        ("manual", "job_s", "manual: job", "#fbd38d"),
    ]
    bottoms = {"ours": [0.0] * len(rows), "manual": [0.0] * len(rows)}
    for side, key, label, colour in parts:
        offset = -width / 2 if side == "ours" else width / 2
        values = [r[side][key] for r in rows]
        ax.bar([x + offset for x in xs], values, width, bottom=bottoms[side], label=label, color=colour)
        bottoms[side] = [b + v for b, v in zip(bottoms[side], values)]
    for x, r in zip(xs, rows):
        ax.text(x + width / 2, r["manual"]["total_s"], f"{r['ratio']:.2f}×", ha="center", va="bottom")
    ax.set_xticks(list(xs), [f"N={r['nodes']}" for r in rows])
    ax.set_ylabel("wall time (s)")
    ax.set_ylim(0, max(max(r["ours"]["total_s"], r["manual"]["total_s"]) for r in rows) * 1.4)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", ncol=3)
    fig.text(
        0.01,
        0.01,
        "All nodes share the controller's 2 cores: N parallel installs contend for CPU as well as for the source.",
        fontsize=7,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)


def measure(args) -> tuple[dict, list[dict]]:
    """Both procedures at every N, one after the other; the run's settings and a row per N that finished."""
    requirements = ENVS[args.env]
    rows: list[dict] = []
    info = {"env": requirements, "link_rate": args.link_rate, "source_rate": args.source_rate}
    info |= {"weights_mb": sum(WEIGHTS.values()), "weights_files": len(WEIGHTS), "cores": os.cpu_count()}
    info["date"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        work = Path(tmp)
        try:
            wheels = wheelhouse(args.env, work)
            info["env_installed_mb"] = round(installed_mb(wheels, requirements, work), 1)
            info["wheels_mb"] = round(sum(p.stat().st_size for p in wheels.glob("*.whl")) / 1e6, 1)
            log(
                f"env: {len(requirements)} requirements, {info['env_installed_mb']:.0f} MB installed, wheels "
                f"{info['wheels_mb']:.0f} MB"
            )
            weights, _sums = weights_dir(work)
            for nodes in sorted(set(args.nodes)):
                row = {"nodes": nodes, "ours": ours(nodes, args, wheels, requirements, weights, work)}
                testbed("down", "--name", BED_OURS)
                row["manual"] = manual(nodes, args, wheels, requirements, weights, work)
                testbed("down", "--name", BED_MANUAL)
                row["ratio"] = round(row["manual"]["total_s"] / row["ours"]["total_s"], 3)
                log(f"N={nodes}: ours {row['ours']['total_s']:.1f} s, manual {row['manual']['total_s']:.1f} s")
                rows.append(row)
                if args.json:  # after every N, so a run cut short still leaves what it measured
                    args.json.write_text(json.dumps({"run": info | {"partial": True}, "results": rows}, indent=2))
        except BenchError as exc:
            print(f"end_to_end benchmark: {exc}", file=sys.stderr)
        finally:
            for name in (BED_OURS, BED_MANUAL):
                try:
                    testbed("down", "--name", name)
                except BenchError as exc:
                    print(f"end_to_end benchmark: could not bring bed '{name}' down: {exc}", file=sys.stderr)
    info["date"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return info, rows


def report(info: dict, rows: list[dict], plot_path: Path | None) -> None:
    print(
        f"From bare accounts to a finished job: ours (site.yml + gtsfm_run) vs GTSfM's manual procedure, {info['date']}"
    )
    print(
        f"Env: {', '.join(info['env'])}: {info['env_installed_mb']:.0f} MB installed, from {info['wheels_mb']:.0f} MB "
        f"of wheels. Weights: {info['weights_files']} files, {info['weights_mb']} MB. Links: every node "
        f"{info['link_rate']} both ways (tc tbf); the package source and the weights' origin on the controller, each "
        f"capped to {info['source_rate']} in all. Machine: {info['cores']} cores shared by the controller and every "
        "node."
    )
    print()
    print(table(rows))
    print()
    for line in verdict(rows):
        print(line)
    if plot_path:
        title = (
            f"Bare accounts to a finished job: env {info['env_installed_mb'] / 1000:.2f} GB installed, weights "
            f"{info['weights_mb']} MB, links {info['link_rate']}, source {info['source_rate']}"
        )
        plot(rows, plot_path, title)
        print(f"Plot written to {plot_path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[2, 4, 8], help="cluster sizes (default 2 4 8)")
    parser.add_argument("--link-rate", default="100mbit", help="each node's link, both ways (default 100mbit)")
    parser.add_argument(
        "--source-rate",
        default="100mbit",
        help="cap on all the package source (and, separately, the weights' origin) sends: one uplink (default "
        "100mbit; none = only the nodes' own links)",
    )
    parser.add_argument("--env", choices=sorted(ENVS), default="heavy", help="heavy (default, > 1 GB) or small")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--plot", type=Path, help="write a PNG bar chart here (e.g. docs/bench-e2e.png)")
    parser.add_argument("--from-json", type=Path, help="measure nothing: report (and plot) a run saved with --json")
    args = parser.parse_args()
    if any(not 1 <= n <= 32 for n in args.nodes):
        parser.error("--nodes takes sizes from 1 to 32")
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        report(saved["run"], saved["results"], args.plot)
        return 0
    if VENV_BIN.is_dir():
        os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    info, rows = measure(args)
    if args.json:
        args.json.write_text(json.dumps({"run": info, "results": rows}, indent=2) + "\n")
    if not rows:
        return 1
    report(info, rows, args.plot)
    if args.json:
        print(f"Results written to {args.json}")
    return 0 if len(rows) == len(set(args.nodes)) else 1


if __name__ == "__main__":
    sys.exit(main())
