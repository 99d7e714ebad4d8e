"""conda_env: build_once vs every_node on N = 1, 2, 4, 8 nodes at a shaped link rate.

    flock /tmp/gtsfm-bed.lock .venv/bin/python benchmarks/conda_env.py [--nodes 1 2 4 8] [--link-rate 100mbit]

The uv manager builds the test environment (dask, distributed, asyncssh and what they need) from the controller's
wheelhouse, served on the bed network by scripts/wheelhouse_server.py (PEP 658 metadata, as PyPI serves), which
counts the bytes it sends. Each measurement starts from nodes without the environment, uv or caches, and times
`site.yml --tags conda_env` (the mesh is built beforehand, untimed). Prints one table: wall time and bytes fetched
from the package source per strategy, side by side, and their ratios.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from wheelhouse_server import serve  # noqa: E402  (scripts/ is not a package)

BED = "envroles-bench"
ENV = dict(
    os.environ,
    ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
    PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
)
RESET = "rm -rf ~/gtsfm-env ~/gtsfm-env.* ~/.cache/uv ~/.cache/gtsfm ~/.local/share/gtsfm ~/gtsfm"


def testbed_rate(text: str) -> int:
    sys.path.insert(0, str(ROOT / "scripts"))
    from testbed import parse_rate  # noqa: PLC0415  (scripts/ is not a package)

    return parse_rate(text)


def testbed(*args: str) -> str:
    out = subprocess.run([str(ROOT / "scripts" / "testbed"), *args], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def playbook(bed: Path, extravars: dict, tags: str) -> float:
    started = time.monotonic()
    res = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            str(bed / "inventory.yml"),
            str(ROOT / "site.yml"),
            "--tags",
            tags,
            "-e",
            json.dumps(extravars),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        check=False,
    )
    seconds = time.monotonic() - started
    if res.returncode != 0:
        raise SystemExit(f"benchmark: site.yml --tags {tags} failed:\n{res.stdout[-4000:]}\n{res.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--link-rate", default="100mbit")
    parser.add_argument(
        "--source-rate",
        default="none",
        help="cap on everything the package source sends, all nodes together (e.g. 100mbit): "
        "a mirror or the internet behind one shared uplink; none = only the nodes' links",
    )
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--keep", action="store_true", help="leave the bed up")
    args = parser.parse_args()
    rows = []
    try:
        for n in args.nodes:
            bed = Path(testbed("up", "--nodes", str(n), "--name", BED, "--link-rate", args.link_rate))
            state = json.loads((bed / "state.json").read_text())
            gateway = str(ipaddress.ip_network(state["subnet"]).network_address + 1)
            bed_vars = yaml.safe_load((bed / "vars.yml").read_text())
            wheelhouse = Path(bed_vars["conda_env_wheelhouse_src"])
            playbook(bed, {}, "ssh_mesh,known_hosts")
            row = {"nodes": n}
            for strategy in ("every_node", "build_once"):
                for i in range(1, n + 1):
                    subprocess.run(["ssh", "-F", str(bed / "ssh_config"), f"node{i}", RESET], check=True)
                rate = None if args.source_rate == "none" else testbed_rate(args.source_rate)
                with serve(wheelhouse, gateway, rate=rate) as (url, counts):
                    extravars = {
                        "conda_env_manager": "uv",
                        "conda_env_strategy": strategy,
                        "conda_env_requirements": ["dask", "distributed", "asyncssh"],
                        "conda_env_find_links": [url],
                        "conda_env_no_index": True,
                        "conda_env_checkout_src": bed_vars["conda_env_checkout_src"],
                        "conda_env_min_free_mb": 512,
                        "conda_env_graphviz": "ignore",
                    }
                    seconds = playbook(bed, extravars, "conda_env")
                    row[strategy] = {
                        "seconds": round(seconds, 1),
                        "bytes": counts.total_bytes(),
                        "wheels": sum(counts.wheels().values()),
                    }
                print(f"N={n} {strategy}: {row[strategy]}", file=sys.stderr, flush=True)
            rows.append(row)
    finally:
        if not args.keep:
            testbed("down", "--name", BED)
    print(
        f"\nconda_env, uv manager, link rate {args.link_rate} per node, package source uplink {args.source_rate}; "
        "bytes = fetched from the package source\n"
    )
    print("| N | every_node s | build_once s | time ratio | every_node MB | build_once MB | bytes ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        e, b = r["every_node"], r["build_once"]
        print(
            f"| {r['nodes']} | {e['seconds']} | {b['seconds']} | {e['seconds'] / b['seconds']:.2f}x "
            f"| {e['bytes'] / 1e6:.1f} | {b['bytes'] / 1e6:.1f} | {e['bytes'] / max(b['bytes'], 1):.1f}x |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
