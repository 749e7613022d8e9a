"""Benchmark: how real do the synthetic faces look to a face detector?

    python -m benchmarks.perf.face_realism --out reports/face_realism.json  # generates 100 x 6 faces
    python -m benchmarks.perf.face_realism --data data/faces-default --split test --out realism.md

Runs facenet-pytorch's MTCNN (weights from its wheel; nothing is downloaded) on
synthetic VGGFace2 images upsampled to ``--size`` pixels and reports:

- the detection rate, overall and by |yaw| bin (0-15, 15-30, 30-45 degrees, from
  ``synthetic_meta_{split}.csv``). An image counts as detected when MTCNN returns a
  face whose box centre lies in the image's loose box (``bb_landmark``);
- for detected images, the distance between MTCNN's five landmarks and the
  generator's (``loose_landmark``), each divided by the generator's inter-ocular
  distance (projected, in the image): the median over images of the mean over the
  five points, and the median per landmark.

Targets: detection >= 97% at |yaw| <= 30, >= 90% overall, median
landmark error <= 0.12 inter-ocular distances. Without ``--data`` a dataset is
generated into a temporary folder first (``--identities`` x ``--images-per-identity``).
Writes JSON, or Markdown when ``--out`` ends in ``.md``; prints the Markdown table.
"""

from __future__ import annotations

import csv
import json
import platform
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import click
import numpy as np
from PIL import Image

from sdn.data.synthetic_faces.generate import FacesConfig, generate_faces
from sdn.io import atomic_write_json, atomic_write_text

YAW_BINS = ((0.0, 15.0), (15.0, 30.0), (30.0, 45.0))
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
TARGETS = {"detection_yaw_le_30": 0.97, "detection_overall": 0.90, "median_landmark_error_iod": 0.12}


def _read_csv(path: Path) -> dict[str, list[str]]:
    if not path.is_file():
        raise ValueError(f"missing {path} (is this a synthetic VGGFace2 root made by sdn-bench data faces?)")
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    return {r[0]: r[1:] for r in rows[1:]}


def load_split(root: Path, split: str) -> list[dict]:
    """Every image of ``split``: path, yaw, loose box (4,) and landmarks (5, 2) in its pixels."""
    bb = _read_csv(root / "bb_landmark" / f"loose_bb_{split}.csv")
    lm = _read_csv(root / "bb_landmark" / f"loose_landmark_{split}.csv")
    meta_path = root / f"synthetic_meta_{split}.csv"
    if not meta_path.is_file():
        raise ValueError(f"missing {meta_path}: face_realism needs the generator's per-image pose")
    with meta_path.open(newline="") as f:
        yaw = {r["NAME_ID"]: float(r["yaw"]) for r in csv.DictReader(f)}
    items = []
    for line in (root / f"{split}_list.txt").read_text().splitlines():
        name_id = line.removesuffix(".jpg")
        items.append(
            {
                "name_id": name_id,
                "path": root / split / line,
                "yaw": yaw[name_id],
                "box": np.array(bb[name_id], float),
                "landmarks": np.array(lm[name_id], float).reshape(5, 2),
            }
        )
    return items


def detect(items: list[dict], size: int, batch: int = 32) -> list[dict]:
    """Run MTCNN on each image upsampled to ``size`` px; adds ``detected`` and ``error`` (5,)
    (landmark distances / inter-ocular distance, NaN when not detected) to each item."""
    import torch
    from facenet_pytorch import MTCNN

    mtcnn = MTCNN(keep_all=True, device=torch.device("cpu"))
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        images, scales = [], []
        for it in chunk:
            im = Image.open(it["path"]).convert("RGB")
            scales.append(size / im.width)
            images.append(im.resize((size, size), Image.BICUBIC))
        boxes, probs, points = mtcnn.detect(images, landmarks=True)
        for it, s, b, p in zip(chunk, scales, boxes, points, strict=True):
            x, y, w, h = it["box"] * s
            gt = it["landmarks"] * s
            it["detected"], it["error"] = False, np.full(5, np.nan)
            if b is None:
                continue
            b, p = np.asarray(b, float).reshape(-1, 4), np.asarray(p, float).reshape(-1, 5, 2)
            centre = (b[:, :2] + b[:, 2:]) / 2
            inside = (
                (centre[:, 0] >= x) & (centre[:, 0] <= x + w) & (centre[:, 1] >= y) & (centre[:, 1] <= y + h)
            )
            if not inside.any():
                continue
            k = int(np.flatnonzero(inside)[0])  # detections are sorted by box size (largest first)
            iod = np.linalg.norm(gt[0] - gt[1])
            it["detected"] = True
            it["error"] = np.linalg.norm(p[k] - gt, axis=1) / iod
    return items


def summarise(items: list[dict]) -> dict:
    """Detection rates (overall, |yaw| <= 30, per bin) and landmark errors in inter-ocular units."""
    yaw = np.abs([it["yaw"] for it in items])
    det = np.array([it["detected"] for it in items])
    err = np.stack([it["error"] for it in items])  # (N, 5)

    def block(mask) -> dict:
        e = err[mask & det]
        return {
            "n": int(mask.sum()),
            "detected": int((mask & det).sum()),
            "detection_rate": round(float(det[mask].mean()), 4) if mask.any() else None,
            "median_landmark_error_iod": round(float(np.median(e.mean(axis=1))), 4) if len(e) else None,
        }

    out = {"overall": block(np.ones(len(items), bool)), "yaw_le_30": block(yaw <= 30)}
    out["by_yaw"] = {
        f"{lo:g}-{hi:g}": block((yaw >= lo) & (yaw < hi if hi < 45 else yaw <= hi)) for lo, hi in YAW_BINS
    }
    detected = err[det]
    out["median_error_by_landmark_iod"] = {
        n: round(float(np.median(detected[:, i])), 4) if len(detected) else None
        for i, n in enumerate(LANDMARK_NAMES)
    }
    values = {
        "detection_yaw_le_30": out["yaw_le_30"]["detection_rate"],
        "detection_overall": out["overall"]["detection_rate"],
        "median_landmark_error_iod": out["overall"]["median_landmark_error_iod"],
    }
    out["targets"] = {
        k: {
            "target": t,
            "value": values[k],
            "met": values[k] is not None and (values[k] <= t if "error" in k else values[k] >= t),
        }
        for k, t in TARGETS.items()
    }
    return out


def markdown(result: dict) -> str:
    s = result["summary"]
    lines = [
        f"# Face realism: MTCNN on synthetic faces ({result['n_images']} images, {result['size']} px)",
        "",
        "| subset | images | detected | detection rate | median landmark error (IOD) |",
        "|---|---:|---:|---:|---:|",
    ]
    rows = [("all", s["overall"]), ("abs(yaw) <= 30", s["yaw_le_30"])]
    rows += [(f"abs(yaw) {k}", v) for k, v in s["by_yaw"].items()]
    for name, b in rows:
        rate = f"{b['detection_rate']:.1%}" if b["detection_rate"] is not None else "-"
        err = f"{b['median_landmark_error_iod']:.3f}" if b["median_landmark_error_iod"] is not None else "-"
        lines.append(f"| {name} | {b['n']} | {b['detected']} | {rate} | {err} |")
    lines += ["", "| landmark | median error (IOD) |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in s["median_error_by_landmark_iod"].items()]
    lines += ["", "| target | value | goal | met |", "|---|---:|---:|---|"]
    for k, t in s["targets"].items():
        lines.append(f"| {k} | {t['value']} | {'<=' if 'error' in k else '>='} {t['target']} | {t['met']} |")
    return "\n".join(lines) + "\n"


def run(data: Path, split: str, max_images: int, size: int, seed: int) -> dict:
    splits = ("train", "test") if split == "both" else (split,)
    items = [it for s in splits for it in load_split(data, s)]
    if not items:
        raise ValueError(f"no images in {data} ({split})")
    if len(items) > max_images:
        keep = np.sort(np.random.default_rng(seed).choice(len(items), max_images, replace=False))
        items = [items[i] for i in keep]
    start = time.time()
    detect(items, size)
    return {
        "data": str(data),
        "split": split,
        "n_images": len(items),
        "size": size,
        "detector": "facenet-pytorch MTCNN (default thresholds 0.6, 0.7, 0.7; min face 20 px)",
        "wall_s": round(time.time() - start, 1),
        "python": platform.python_version(),
        "summary": summarise(items),
    }


@click.command()
@click.option("--data", type=click.Path(file_okay=False, exists=True), default=None, help="Existing root.")
@click.option("--split", type=click.Choice(["train", "test", "both"]), default="both", show_default=True)
@click.option("--max-images", default=600, show_default=True, type=int, help="Seeded subset size.")
@click.option("--size", default=160, show_default=True, type=int, help="Side the images are upsampled to.")
@click.option("--identities", default=100, show_default=True, type=int, help="When generating.")
@click.option("--images-per-identity", default=6, show_default=True, type=int, help="When generating.")
@click.option("--resolution", default=64, show_default=True, type=int, help="When generating.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Generation processes.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Result file (.json or .md).")
def main(data, split, max_images, size, identities, images_per_identity, resolution, seed, workers, out):
    tmp = None
    try:
        if data is None:
            tmp = Path(tempfile.mkdtemp(prefix="sdn-face-realism-"))
            cfg = FacesConfig(
                identities=identities,
                images_per_identity=images_per_identity,
                resolution=resolution,
                seed=seed,
            )
            generate_faces(tmp, cfg, workers=workers, progress=False)
            data = tmp
        result = run(Path(data), split, max_images, size, seed)
        if tmp is not None:
            result["data"] = f"generated: {json.dumps(asdict(cfg), sort_keys=True)}"
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    md = markdown(result)
    if str(out).endswith(".md"):
        atomic_write_text(out, md)
    else:
        atomic_write_json(out, result)
    click.echo(md)


if __name__ == "__main__":
    main()
