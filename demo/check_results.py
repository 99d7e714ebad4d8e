# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check and summarize a fetched demo result: every image registered, rotation error < 1 degree, all hosts used.

python demo/check_results.py RESULTS_DIR [--hosts 3] [--seconds N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("results", type=Path)
    p.add_argument("--hosts", type=int, default=3)
    p.add_argument("--seconds", type=int, default=None)
    args = p.parse_args()
    s = json.loads((args.results / "summary.json").read_text())
    per_host: dict[str, int] = {}
    for host in s["extracted_by"].values():
        per_host[host] = per_host.get(host, 0) + 1
    rot = s.get("rotation_error_deg", {}).get("max")
    print(f"images registered: {s['images_registered']} of {s['images']}; 3D points: {s['points3D']}")
    print(
        f"rotation error: max {rot:.3f} deg, mean {s['rotation_error_deg']['mean']:.3f} deg; "
        f"position error: max {s['position_error']['max']:.4f} (scene units)"
        if rot is not None
        else "alignment with the known cameras failed"
    )
    print("features extracted per host: " + ", ".join(f"{h} {n}" for h, n in sorted(per_host.items())))
    print("Dask workers per host: " + ", ".join(f"{h} x{n}" for h, n in sorted(s["workers"].items())))
    print(f"job seconds: {s['seconds']}" + (f"; playbook wall time {args.seconds} s" if args.seconds else ""))
    print(f"scene: {args.results / 'scene.json'}; model: {args.results / 'model'}")
    problems = []
    if s["images_registered"] != s["images"]:
        problems.append(f"only {s['images_registered']} of {s['images']} images registered")
    if rot is None or rot >= 1.0:
        problems.append(f"rotation error {rot} degrees is not under 1")
    if len(per_host) < args.hosts:
        problems.append(f"features extracted on {len(per_host)} hosts, not {args.hosts}")
    if not (args.results / "scene.json").is_file():
        problems.append("no scene.json (the aligned scene the picture is drawn from)")
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    print("demo: PASS" if not problems else "demo: FAIL")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
