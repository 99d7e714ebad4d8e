# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a synthetic SfM dataset with known cameras: DIR/images/*.png and DIR/truth (a COLMAP model).

    python demo/make_dataset.py DIR [--images 12] [--points 200] [--seed 1]

Re-running with the same options writes the same files (fixed seed), so staging it again changes nothing.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import pycolmap


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--images", type=int, default=12)
    p.add_argument("--points", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    pycolmap.set_random_seed(args.seed)
    options = pycolmap.SyntheticDatasetOptions()
    options.num_rigs = 1
    options.num_cameras_per_rig = 1
    options.num_frames_per_rig = args.images
    options.num_points3D = args.points
    options.camera_width, options.camera_height = 640, 480
    options.camera_params = [800.0, 320.0, 240.0, 0.0]
    truth = pycolmap.synthesize_dataset(options)
    # Build next to the target and swap in, so a half-written dataset is never taken for done.
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".dataset-", dir=args.out.parent))
    (tmp / "images").mkdir()
    (tmp / "truth").mkdir()
    pycolmap.synthesize_images(pycolmap.SyntheticImageOptions(), truth, str(tmp / "images"))
    truth.write(str(tmp / "truth"))
    if args.out.exists():
        shutil.rmtree(args.out)
    tmp.rename(args.out)
    print(f"{args.out}: {truth.num_images()} images, {truth.num_points3D()} points")


if __name__ == "__main__":
    main()
