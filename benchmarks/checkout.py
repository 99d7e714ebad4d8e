"""conda_env's checkout from the controller: a real-size tree, as a directory and as an archive, to every node.

    flock /tmp/gtsfm-bed.lock .venv/bin/python benchmarks/checkout.py [--nodes 3] [--sizes 100:800 1000:100]

Makes each tree on the controller (SIZE MB in FILES files: small text files as a source tree has, and a few large
binary ones), then on a fresh bed (the mesh and the environment prepared beforehand, untimed) times
`site.yml --tags conda_env` three ways from ansible-runner's events: the first copy of the directory, a no-op
re-run, and the first copy of the same tree given as a .tar.gz (after removing the checkout from every node).
Prints the wall time of the checkout's own tasks (pack, copy, unpack, the chain to the other nodes) and how many
tasks a no-op re-run reported changed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import ansible_runner
import yaml

ROOT = Path(__file__).resolve().parents[1]
BED = "checkout-bench"
ENV = {
    "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
    "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
}
CHECKOUT_TASK_WORDS = ("checkout", "Pack the controller")


def testbed(*args: str) -> str:
    out = subprocess.run([str(ROOT / "scripts" / "testbed"), *args], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def make_tree(root: Path, megabytes: int, files: int, seed: int = 7) -> None:
    """A tree like a source checkout: mostly small text files in folders, and a few large binaries."""
    rng = random.Random(seed)
    big = max(1, files // 100)
    small = files - big
    text_bytes = min(megabytes * 10**6 // 10, small * 8000)
    for i in range(small):
        folder = root / f"pkg{i % 23}" / f"sub{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod{i}.py").write_text((f"# line {i}\n") * max(1, text_bytes // small // 10))
    for i in range(big):
        blob = root / "data" / f"blob{i}.bin"
        blob.parent.mkdir(exist_ok=True)
        with open(blob, "wb") as handle:
            left = (megabytes * 10**6 - text_bytes) // big
            while left > 0:
                chunk = min(left, 1 << 20)
                handle.write(rng.randbytes(chunk))
                left -= chunk


def run_site(bed: Path, extravars: dict, private: Path) -> dict:
    events: list[dict] = []
    private.mkdir(parents=True, exist_ok=True)
    res = ansible_runner.run(
        private_data_dir=str(private),
        playbook=str(ROOT / "site.yml"),
        inventory=str(bed / "inventory.yml"),
        tags="conda_env",
        extravars=extravars,
        envvars=ENV,
        quiet=True,
        event_handler=lambda e: events.append(e) or True,
    )
    if res.status != "successful":
        failed = [
            (e["event_data"].get("task"), (e["event_data"].get("res") or {}).get("msg"))
            for e in events
            if e.get("event") == "runner_on_failed"
        ]
        raise SystemExit(f"benchmark: site.yml --tags conda_env failed: {failed}")
    checkout_s = 0.0
    for e in events:
        data = e.get("event_data") or {}
        if e.get("event") == "runner_on_ok" and any(w in (data.get("task") or "") for w in CHECKOUT_TASK_WORDS):
            checkout_s += float(data.get("duration") or 0.0)
    changed = sum(
        1 for e in events if e.get("event") == "runner_on_ok" and (e["event_data"].get("res") or {}).get("changed")
    )
    return {"checkout_s": round(checkout_s, 1), "changed": changed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--sizes", nargs="+", default=["100:800", "1000:100"], help="MB:FILES per tree")
    parser.add_argument("--link-rate", default="none")
    args = parser.parse_args()
    rows = []
    work = Path(tempfile.mkdtemp(prefix="checkout-bench-"))
    try:
        up = ["up", "--nodes", str(args.nodes), "--name", BED]
        if args.link_rate != "none":
            up += ["--link-rate", args.link_rate]
        bed = Path(testbed(*up))
        bed_vars = yaml.safe_load((bed / "vars.yml").read_text())
        base = dict(
            bed_vars,
            conda_env_manager="uv",
            conda_env_requirements=["dask", "distributed", "asyncssh"],
            conda_env_min_free_mb=512,
            conda_env_graphviz="ignore",
        )
        subprocess.run(
            [
                "ansible-playbook",
                "-i",
                str(bed / "inventory.yml"),
                str(ROOT / "site.yml"),
                "--tags",
                "ssh_mesh,known_hosts",
                "-e",
                json.dumps(base),
            ],
            env=dict(os.environ, **ENV),
            check=True,
            capture_output=True,
        )
        run_site(bed, base, work / "prepare")  # the environment, once: its build is not what is measured
        for spec in args.sizes:
            megabytes, files = (int(x) for x in spec.split(":"))
            tree = work / f"tree-{megabytes}"
            make_tree(tree, megabytes, files)
            archive = work / f"tree-{megabytes}.tar.gz"
            with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
                tar.add(tree, arcname=".")
            row = {"tree": f"{megabytes} MB / {files} files"}
            for form, src in (("directory", tree), ("archive", archive)):
                for i in range(1, args.nodes + 1):
                    subprocess.run(
                        [
                            "ssh",
                            "-F",
                            str(bed / "ssh_config"),
                            f"node{i}",
                            "rm -rf ~/gtsfm ~/.gtsfm.gtsfm-broadcast.json ~/.cache/gtsfm/conda_env/checkout-*",
                        ],
                        check=True,
                    )
                extravars = dict(base, conda_env_checkout_src=str(src))
                row[form] = run_site(bed, extravars, work / f"{form}-{megabytes}-1")
                row[form + "_noop"] = run_site(bed, extravars, work / f"{form}-{megabytes}-2")
                print(f"{row['tree']} {form}: {row[form]} then {row[form + '_noop']}", file=sys.stderr, flush=True)
            rows.append(row)
    finally:
        testbed("down", "--name", BED)
        subprocess.run(["rm", "-rf", str(work)], check=False)
    print(
        f"\nconda_env checkout from the controller to {args.nodes} nodes (link rate {args.link_rate}); seconds "
        "summed over the checkout's tasks (pack, archive copy, unpack, the chain to the other nodes)\n"
    )
    print("| tree | directory, first s | no-op s | archive, first s | no-op s | no-op changed |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['tree']} | {r['directory']['checkout_s']} | {r['directory_noop']['checkout_s']} "
            f"| {r['archive']['checkout_s']} | {r['archive_noop']['checkout_s']} "
            f"| {r['directory_noop']['changed']} / {r['archive_noop']['changed']} |"
        )


if __name__ == "__main__":
    main()
