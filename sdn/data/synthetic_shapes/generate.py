"""Write a synthetic mini-ShapeNet in the Occupancy Networks layout (DESIGN.md §3.1).

``ROOT/<synset>/<model_id>/`` holds, per object:

- ``img_choy2016/000.png … NNN.png`` and ``img_choy2016/cameras.npz`` (see
  :mod:`.render` for the camera conventions);
- ``points.npz``: ``points`` (100000, 3) float16 uniform in [-0.55, 0.55]^3,
  ``occupancies`` = ``np.packbits`` of the inside flags from the analytic SDF sign,
  ``loc`` (3,) and ``scale`` ();
- ``pointcloud.npz``: ``points`` and ``normals`` (100000, 3) float16, area-weighted
  samples of the marching-cubes mesh, with ``loc`` and ``scale``;
- ``model.ply``: the ground-truth mesh (binary PLY, normalised frame, watertight);
- ``params.json``: the object's family parameters and palette (not in real ShapeNet).

``ROOT/<synset>/{train,val,test}.lst`` and ``ROOT/metadata.yaml`` complete the layout;
``ROOT/generation.json`` records the configuration and every run (versions, timings).

Each object is a pure function of (seed, synset, index): the same seed and
arguments give byte-identical object files whatever the number of workers. An
object is written to a temporary folder and renamed, so an interrupted run leaves
only whole objects, and a rerun skips them. ``splits`` limits a run to the objects of
some splits (the .lst files and metadata.yaml are always complete); like ``workers`` it
is not part of the recorded configuration, so a later run with more splits adds the
missing objects.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import json
import multiprocessing
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import trimesh
import yaml
from PIL import Image
from tqdm import tqdm

from ...config import require_positive
from ...io import atomic_write_json, atomic_write_text, save_npz
from ..generation import check_splits, generation_record
from ..shapenet import SPLITS
from .categories import BY_SYNSET, CATEGORIES, Category, resolve_categories
from .geometry import normalise, surface_points, uniform_points
from .render import render, sample_cameras

GENERATOR_VERSION = 1
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)  # train, val, test


@dataclass
class ShapesConfig:
    """What defines the dataset's content (``workers`` only changes the speed)."""

    categories: list[str] = field(default_factory=lambda: [c.synset for c in CATEGORIES])
    objects_per_category: int = 50
    views: int = 24
    resolution: int = 64
    seed: int = 0
    n_points: int = 100_000
    n_surface: int = 100_000
    mesh_cells: int = 128
    supersample: int = 3

    def validate(self) -> None:
        self.categories = [c.synset for c in resolve_categories(self.categories)]
        require_positive(
            self, ("objects_per_category", "views", "resolution", "n_points", "n_surface", "supersample")
        )
        if self.resolution < 8:
            raise ValueError(f"resolution must be >= 8 pixels, got {self.resolution}")
        if self.mesh_cells < 16:
            raise ValueError(f"mesh_cells must be >= 16, got {self.mesh_cells}")
        if self.views > 1000:
            raise ValueError(f"views must be <= 1000 (file names are 3 digits), got {self.views}")


def object_id(seed: int, synset: str, index: int) -> str:
    """A ShapeNet-like 32-hex-digit model id, a pure function of (seed, synset, index)."""
    return hashlib.sha1(f"sdn-bench-shapes/{seed}/{synset}/{index}".encode()).hexdigest()[:32]


def _streams(seed: int, synset: str, index: int) -> list[np.random.Generator]:
    """Independent generators for shape, palette, cameras, points and surface samples."""
    ss = np.random.SeedSequence([seed, int(synset), index])
    return [np.random.default_rng(s) for s in ss.spawn(5)]


def _palette(rng: np.random.Generator) -> np.ndarray:
    """Albedos (4, 3) for materials main, secondary, accent, dark."""
    h = rng.random()
    main = colorsys.hsv_to_rgb(h, rng.uniform(0.25, 0.85), rng.uniform(0.45, 0.95))
    if rng.random() < 0.5:  # secondary: same hue, other value, or a neutral
        second = colorsys.hsv_to_rgb(h, rng.uniform(0.1, 0.6), rng.uniform(0.3, 0.7))
    else:
        g = rng.uniform(0.25, 0.85)
        second = (g, g, g * rng.uniform(0.9, 1.05))
    accent = colorsys.hsv_to_rgb(
        (h + rng.uniform(0.25, 0.75)) % 1.0, rng.uniform(0.3, 0.9), rng.uniform(0.5, 0.95)
    )
    dark = (rng.uniform(0.08, 0.2),) * 3
    return np.clip(np.array([main, second, accent, dark]), 0.0, 1.0)


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image, mode="RGB").save(buf, format="PNG")
    return buf.getvalue()


def build_object(cfg: ShapesConfig, category: Category, index: int):
    """The object's solid, normalised geometry, parameters and palette (no I/O)."""
    rng_shape, rng_palette, _, _, _ = _streams(cfg.seed, category.synset, index)
    solid, params = category.build(rng_shape)
    ns = normalise(solid, cells=cfg.mesh_cells)
    return ns, params, _palette(rng_palette)


def planned_params(cfg: ShapesConfig, synset: str) -> dict[str, dict]:
    """model id -> family parameters (as ``params.json`` records them) of every object that
    ``cfg`` makes in ``synset``, whether written or not: drawn without building the geometry."""
    if synset not in BY_SYNSET:
        raise ValueError(f"unknown synset {synset!r}; the generator knows {', '.join(BY_SYNSET)}")
    out = {}
    for index in range(cfg.objects_per_category):
        _, params = BY_SYNSET[synset].build(_streams(cfg.seed, synset, index)[0])
        out[object_id(cfg.seed, synset, index)] = json.loads(json.dumps(params))
    return out


def write_object(cfg: ShapesConfig, category: Category, index: int, root: Path) -> bool:
    """Generate object ``index`` of ``category`` under ``root``; False if it already exists."""
    oid = object_id(cfg.seed, category.synset, index)
    final = root / category.synset / oid
    if final.is_dir():
        return False
    _, _, rng_cam, rng_pts, rng_surf = _streams(cfg.seed, category.synset, index)
    ns, params, palette = build_object(cfg, category, index)

    tmp = root / category.synset / f".tmp-{oid}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "img_choy2016").mkdir(parents=True)
    radius = float(np.linalg.norm(ns.mesh.vertices, axis=1).max())
    cams = sample_cameras(rng_cam, cfg.views, cfg.resolution, radius)
    images = render(ns, cams, palette, cfg.resolution, cfg.supersample)
    for i, img in enumerate(images):
        (tmp / "img_choy2016" / f"{i:03d}.png").write_bytes(_png(img))
    cam_arrays = {}
    for i, cam in enumerate(cams):
        cam_arrays[f"camera_mat_{i}"] = cam.K.astype(np.float32)
        cam_arrays[f"world_mat_{i}"] = cam.Rt.astype(np.float32)
    cam_arrays["azimuth_deg"] = np.array([c.azimuth_deg for c in cams], np.float32)
    cam_arrays["elevation_deg"] = np.array([c.elevation_deg for c in cams], np.float32)
    cam_arrays["distance"] = np.array([c.distance for c in cams], np.float32)
    save_npz(tmp / "img_choy2016" / "cameras.npz", cam_arrays)

    loc, scale = ns.loc.astype(np.float32), np.float32(ns.scale)
    pts, occ = uniform_points(ns, cfg.n_points, rng_pts)
    save_npz(
        tmp / "points.npz",
        {"points": pts, "occupancies": np.packbits(occ), "loc": loc, "scale": scale},
    )
    spts, normals = surface_points(ns, cfg.n_surface, rng_surf)
    save_npz(tmp / "pointcloud.npz", {"points": spts, "normals": normals, "loc": loc, "scale": scale})
    (tmp / "model.ply").write_bytes(trimesh.exchange.ply.export_ply(ns.mesh, encoding="binary"))
    record = {
        "category": category.name,
        "synset": category.synset,
        "index": index,
        "seed": cfg.seed,
        "params": params,
        "palette": np.round(palette, 4).tolist(),
        "watertight": bool(ns.mesh.is_watertight),
    }
    (tmp / "params.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.rename(tmp, final)
    return True


def split_ids(cfg: ShapesConfig, synset: str) -> dict[str, list[str]]:
    """Deterministic 70/10/20 split of a category's ids (val and test non-empty when N >= 3)."""
    n = cfg.objects_per_category
    ids = [object_id(cfg.seed, synset, i) for i in range(n)]
    order = np.random.default_rng(np.random.SeedSequence([cfg.seed, int(synset), 2**31])).permutation(n)
    n_test = max(1, round(SPLIT_FRACTIONS[2] * n)) if n >= 3 else 0
    n_val = max(1, round(SPLIT_FRACTIONS[1] * n)) if n >= 3 else 0
    n_train = n - n_test - n_val
    shuffled = [ids[i] for i in order]
    return {
        "train": sorted(shuffled[:n_train]),
        "val": sorted(shuffled[n_train : n_train + n_val]),
        "test": sorted(shuffled[n_train + n_val :]),
    }


def _versions() -> dict:
    import scipy
    import skimage

    return {
        "sdn_bench_shapes_generator": GENERATOR_VERSION,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "trimesh": trimesh.__version__,
        "scikit-image": skimage.__version__,
        "scipy": scipy.__version__,
    }


def _work(args) -> bool:
    cfg, synset, index, root = args
    return write_object(cfg, BY_SYNSET[synset], index, Path(root))


def generate_shapes(
    out: str | os.PathLike,
    cfg: ShapesConfig,
    workers: int = 1,
    progress: bool = True,
    splits: tuple[str, ...] = SPLITS,
) -> dict:
    """Generate (or resume) the objects of ``splits`` of the dataset under ``out`` (every
    split's .lst file is written whole); returns the run record."""
    cfg.validate()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    check_splits(splits, SPLITS)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    record = generation_record(root, asdict(cfg), GENERATOR_VERSION)
    atomic_write_json(root / "generation.json", record)
    for stale in root.glob("*/.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    split_lists = {synset: split_ids(cfg, synset) for synset in cfg.categories}
    tasks = []
    for synset, lists in split_lists.items():
        chosen = {oid for split in splits for oid in lists[split]}
        for i in range(cfg.objects_per_category):
            if object_id(cfg.seed, synset, i) in chosen:
                tasks.append((cfg, synset, i, str(root)))
    start = time.time()
    made = 0
    bar = tqdm(total=len(tasks), desc="objects", unit="obj", disable=not progress)
    if workers == 1:
        for t in tasks:
            made += _work(t)
            bar.update()
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for did in pool.imap_unordered(_work, tasks, chunksize=1):
                made += did
                bar.update()
    bar.close()
    meta = {}
    for synset, lists in split_lists.items():
        for split, ids in lists.items():
            atomic_write_text(root / synset / f"{split}.lst", "\n".join(ids) + ("\n" if ids else ""))
        meta[synset] = {
            "id": synset,
            "name": next(c.name for c in CATEGORIES if c.synset == synset),
            "synthetic": True,
            "generator": f"sdn-bench shapes v{GENERATOR_VERSION}",
        }
    atomic_write_text(root / "metadata.yaml", yaml.safe_dump(meta, sort_keys=True))
    wall = time.time() - start
    record["runs"].append(
        {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(start)),
            "wall_s": round(wall, 2),
            "objects_generated": made,
            "objects_skipped": len(tasks) - made,
            "objects_per_minute": round(made / wall * 60, 2) if made else None,
            "splits": [s for s in SPLITS if s in splits],
            "workers": workers,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "versions": _versions(),
        }
    )
    atomic_write_json(root / "generation.json", record)
    return record["runs"][-1]
