# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Draw a fetched demo result: a top view of the reconstruction aligned to the known cameras.

    python demo/plot_scene.py RESULTS_DIR [--out cameras.png]

Reads the job's summary.json and scene.json (written on the scheduler) and draws on the controller, so the nodes
need no plotting library: the 3D points, the true camera centres and the estimated ones, with axes in scene units,
a legend, and a title that says how many images were registered and the rotation error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def title(summary: dict) -> str:
    head = f"{summary['images_registered']} of {summary['images']} images registered, {summary['points3D']} 3D points"
    rot = summary.get("rotation_error_deg")
    if not rot:
        return head + "\n(alignment with the known cameras failed)"
    return head + (
        f"\nrotation error mean {rot['mean']:.3f}°, max {rot['max']:.3f}°; camera centre error max "
        f"{summary['position_error']['max']:.4f}"
    )


def draw(results: Path, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display on a controller over SSH
    import matplotlib.pyplot as plt

    summary = json.loads((results / "summary.json").read_text())
    scene = json.loads((results / "scene.json").read_text())
    fig, ax = plt.subplots(figsize=(6.4, 6.0), dpi=120)
    if scene["points"]:
        xs, _ys, zs = zip(*scene["points"])
        ax.scatter(xs, zs, s=2, c="0.6", label=f"3D points ({len(scene['points'])})")
    for key, style in (
        ("truth_centers", dict(s=90, facecolors="none", edgecolors="tab:green", linewidths=1.5)),
        ("centers", dict(s=22, c="tab:red", marker="x")),
    ):
        if scene[key]:
            xs, _ys, zs = zip(*scene[key])
            name = "true cameras" if key == "truth_centers" else "estimated cameras"
            ax.scatter(xs, zs, label=f"{name} ({len(scene[key])})", **style)
    ax.set_xlabel("x (scene units)")
    ax.set_ylabel("z (scene units)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(True, linewidth=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title("gtsfm.cluster demo, top view: " + title(summary), fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", type=Path)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    print(draw(args.results, args.out or args.results / "cameras.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
