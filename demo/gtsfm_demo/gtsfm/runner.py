# Copyright: gtsfm.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A runner-compatible structure-from-motion job: GTSfM's flags, cluster config and SSHCluster, pycolmap's SfM.

It stands in for GTSfM's gtsfm/runner.py where GTSfM cannot be installed (the demo and the tests):
- the flags that matter to a launcher are GTSfM's (--loader --dataset_dir --config_name --output_root
  --cluster_config --num_workers --threads_per_worker --worker_memory_limit --dashboard_port
  --num_retry_cluster_connection --dask_tmpdir -l);
- --cluster_config is read as GTSfM reads it (gtsfm/configs/NAME relative to the working directory, an absolute
  path as is; only `workers`; scheduler = workers[0]) and the SSHCluster is built the same way
  ([scheduler] + workers, dashboard_address in scheduler_options, n_workers/nthreads/memory_limit in worker_options,
  no connect_options, no remote_python);
- images are read on the scheduler only (the loader), SIFT runs on the workers of every host, matching and
  incremental mapping on the scheduler; results land under {output_root}/results.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

logger = logging.getLogger("gtsfm")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="GTSfM-compatible demo runner (pycolmap SfM on a Dask cluster)")
    p.add_argument("--loader", default="colmap", choices=["colmap", "olsson"])
    p.add_argument("--dataset_dir", required=True, help="holds images/ and (for scoring) truth/, a COLMAP model")
    p.add_argument("--config_name", default="sift_front_end.yaml")
    p.add_argument("--output_root", default=os.getcwd())
    p.add_argument("--cluster_config", default=None)
    p.add_argument("--num_workers", type=int, default=1)
    p.add_argument("--threads_per_worker", type=int, default=1)
    p.add_argument("--worker_memory_limit", default="32GB")
    p.add_argument("--dashboard_port", default=":8787")
    p.add_argument("--num_retry_cluster_connection", type=int, default=3)
    p.add_argument("--dask_tmpdir", default=None)
    p.add_argument("-l", "--log_level", default="INFO")
    return p.parse_args(argv)


def read_cluster_config(name: str) -> list:
    """The `workers` list, read the way GTSfM's runner reads it."""
    import yaml  # GTSfM uses OmegaConf; for `workers` the result is the same

    path = name if os.path.isabs(name) else os.path.join("gtsfm", "configs", name)
    with open(path, encoding="utf-8") as f:
        workers = (yaml.safe_load(f) or {}).get("workers")
    if not workers:
        raise SystemExit(f"{path}: no 'workers' list")
    return list(workers)


def make_cluster(args: argparse.Namespace):
    """The SSHCluster (or LocalCluster without --cluster_config), built as GTSfM's runner builds it."""
    from dask.distributed import LocalCluster, SSHCluster

    if not args.cluster_config:
        return LocalCluster(
            n_workers=args.num_workers,
            threads_per_worker=args.threads_per_worker,
            dashboard_address=args.dashboard_port,
            memory_limit=args.worker_memory_limit,
        )
    workers = read_cluster_config(args.cluster_config)
    scheduler = workers[0]
    last = None
    for attempt in range(1, args.num_retry_cluster_connection + 1):
        try:
            return SSHCluster(
                [scheduler] + workers,
                scheduler_options={"dashboard_address": args.dashboard_port},
                worker_options={
                    "n_workers": args.num_workers,
                    "nthreads": args.threads_per_worker,
                    "memory_limit": args.worker_memory_limit,
                },
            )
        except Exception as exc:  # GTSfM retries on any error too
            last = exc
            logger.warning("cluster start attempt %d failed: %s", attempt, exc)
    raise SystemExit(f"could not start the cluster: {last}")


def extract(name: str, image, max_num_features: int) -> dict:
    """SIFT on one grey image (runs on a worker): keypoints, uint8 descriptors and who did it."""
    import numpy as np
    import pycolmap

    options = pycolmap.FeatureExtractionOptions()
    options.sift.max_num_features = max_num_features
    options.num_threads = 1
    extractor = pycolmap.FeatureExtractor.create(options, device=pycolmap.Device.cpu)
    t = time.time()
    keypoints, descriptors = extractor.extract_from_uint8_array(np.ascontiguousarray(image))
    return {
        "name": name,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "seconds": round(time.time() - t, 3),
        # COLMAP's affine keypoint shape: x, y, a11, a12, a21, a22.
        "keypoints": np.array([(k.x, k.y, k.a11, k.a12, k.a21, k.a22) for k in keypoints], dtype=np.float32),
        "descriptors": np.array(descriptors.data, dtype=np.uint8),
    }


def write_scene(path: Path, points, centers, truth_centers) -> None:
    """The aligned scene as plain numbers (points, estimated and true camera centres), for the controller to draw:
    the nodes need no plotting library."""
    path.write_text(
        json.dumps(
            {
                "points": [[round(float(v), 4) for v in p] for p in points],
                "centers": [[round(float(v), 4) for v in c] for c in centers],
                "truth_centers": [[round(float(v), 4) for v in c] for c in truth_centers],
            }
        )
        + "\n"
    )


def run(args: argparse.Namespace) -> dict:
    import numpy as np
    import pycolmap
    import yaml
    from dask.distributed import Client

    started = time.time()
    dataset = Path(args.dataset_dir)
    results = Path(args.output_root) / "results"
    results.mkdir(parents=True, exist_ok=True)
    config_path = Path("gtsfm", "configs", args.config_name)
    config = yaml.safe_load(config_path.read_text()) if config_path.is_file() else {}
    max_num_features = int(config.get("max_num_features", 4096))

    # The loader: images are read here, on the scheduler host, and shipped to the workers.
    names = sorted(n for n in os.listdir(dataset / "images") if n.lower().endswith((".png", ".jpg", ".jpeg")))
    if not names:
        raise SystemExit(f"{dataset / 'images'}: no images")
    images = {n: pycolmap.Bitmap.read(str(dataset / "images" / n), False).to_array() for n in names}
    logger.info("loaded %d images from %s on %s", len(names), dataset, socket.gethostname())

    cluster = make_cluster(args)
    client = Client(cluster)
    n_expected = args.num_workers * (len(read_cluster_config(args.cluster_config)) if args.cluster_config else 1)
    client.wait_for_workers(n_expected, timeout=120)
    workers = client.scheduler_info()["workers"]
    by_host: dict[str, list[str]] = {}
    for address, info in sorted(workers.items()):
        by_host.setdefault(info.get("host", address), []).append(address)
    logger.info("%d workers joined on %d hosts", len(workers), len(by_host))
    # Round robin over hosts, then over each host's workers: every host extracts features.
    slots = [w for group in zip(*list(by_host.values())) for w in group] or list(workers)
    slots += [w for v in by_host.values() for w in v if w not in slots]
    t = time.time()
    futures = [
        client.submit(
            extract,
            n,
            images[n],
            max_num_features,
            workers=[slots[i % len(slots)]],
            allow_other_workers=True,
            pure=False,
            key=f"sift-{i}",
        )
        for i, n in enumerate(names)
    ]
    features = {f["name"]: f for f in client.gather(futures)}
    extract_seconds = time.time() - t
    logger.info(
        "features extracted in %.1f s on hosts %s", extract_seconds, sorted({f["host"] for f in features.values()})
    )
    client.close()
    cluster.close()

    truth = pycolmap.Reconstruction(str(dataset / "truth")) if (dataset / "truth").is_dir() else None
    camera_params = ""
    if truth is not None:
        camera = next(iter(truth.cameras.values()))
        camera_params = ",".join(str(v) for v in camera.params)
    database = results / "database.db"
    database.unlink(missing_ok=True)
    pycolmap.Database.open(str(database)).close()
    pycolmap.import_images(
        str(database),
        str(dataset / "images"),
        camera_mode=pycolmap.CameraMode.SINGLE,
        image_names=names,
        options=pycolmap.ImageReaderOptions(camera_params=camera_params),
    )
    with pycolmap.Database.open(str(database)) as db:
        for image in db.read_all_images():
            f = features[image.name]
            db.write_keypoints(image.image_id, f["keypoints"])
            db.write_descriptors(
                image.image_id, pycolmap.FeatureDescriptors(pycolmap.FeatureExtractorType.SIFT, f["descriptors"])
            )
    t = time.time()
    pycolmap.match_exhaustive(str(database), device=pycolmap.Device.cpu)
    match_seconds = time.time() - t
    t = time.time()
    sparse = results / "sparse"
    sparse.mkdir(exist_ok=True)
    models = pycolmap.incremental_mapping(str(database), str(dataset / "images"), str(sparse))
    map_seconds = time.time() - t
    if not models:
        raise SystemExit("incremental mapping registered no model")
    best = max(models.values(), key=lambda r: r.num_reg_images())
    model_dir = results / "model"
    model_dir.mkdir(exist_ok=True)
    best.write(str(model_dir))

    summary: dict = {
        "images": len(names),
        "images_registered": best.num_reg_images(),
        "points3D": best.num_points3D(),
        "mean_reprojection_error_px": best.compute_mean_reprojection_error(),
        "extracted_by": {n: features[n]["host"] for n in names},
        "hosts": sorted({f["host"] for f in features.values()}),
        "workers": {host: len(addresses) for host, addresses in by_host.items()},
        "seconds": {
            "extract": round(extract_seconds, 2),
            "match": round(match_seconds, 2),
            "map": round(map_seconds, 2),
            "total": round(time.time() - started, 2),
        },
    }
    if truth is not None:
        comparison = pycolmap.compare_reconstructions(truth, best, alignment_error="proj_center")
        if comparison is None:
            summary["alignment"] = "failed"
        else:
            errors = comparison["errors"]
            rot = [e.rotation_error_deg for e in errors]
            pos = [e.proj_center_error for e in errors]
            summary.update(
                {
                    "rotation_error_deg": {"max": max(rot), "mean": float(np.mean(rot))},
                    "position_error": {"max": max(pos), "mean": float(np.mean(pos))},
                }
            )
            aligned = pycolmap.Reconstruction(best)
            aligned.transform(comparison["rec2_from_rec1"].inverse())
            write_scene(
                results / "scene.json",
                np.array([p.xyz for p in aligned.points3D.values()]),
                np.array([aligned.image(i).projection_center() for i in aligned.reg_image_ids()]),
                np.array([truth.image(i).projection_center() for i in truth.reg_image_ids()]),
            )
    (results / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    logger.info(
        "registered %d of %d images; summary in %s", summary["images_registered"], len(names), results / "summary.json"
    )
    return summary


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.dask_tmpdir:
        import dask

        dask.config.set({"temporary-directory": args.dask_tmpdir})
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
