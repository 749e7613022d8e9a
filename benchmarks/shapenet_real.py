"""The real-set side of the ShapeNet benchmark and its on-disk cache (DESIGN.md §5).

Everything about a test object that does not depend on the set model is computed here once:

- M, the OccNet mesh from the object's ``real_views`` real views (codes pooled), with its
  samples (:class:`evaluation.geometry.MeshSamples`: 2048 and ``dense_points`` surface
  points, 2048 volume points drawn in M's extraction-grid cells);
- the ground truth's samples: of ``model.ply`` when present, else of ``pointcloud.npz``;
- the Table 2 rows: OccNet's IoU of the network's occupancies at the 100k points of
  ``points.npz`` (probabilities thresholded, codes pooled over the first v real views), as
  OccNet's own evaluation defines it: no mesh and no ray casting;
- the ``gt_real`` row: M against the ground truth.

:class:`RealSideCache` stores them per object under a key (:func:`cache_key`) built from
everything they depend on: the OccNet checkpoint's sha256, the object's id and content (the
pixels of the chosen views, which fix the view choice, and its point files and mesh), the
seed, the extraction settings (threshold, resolution0, upsampling_steps), the metric
settings (real_views, table2_views, dense_points, N_POINTS), the torch version and a digest
of the source files that compute them. A changed key is another folder, so a stale entry is
never read. Entries are written atomically; a second model scored on the same data pays only
for its own meshes. Folder: ``<cache_dir>/shapenet-real`` (default
``~/.cache/sdn-bench/shapenet-real``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import trimesh

import evaluation.geometry as geometry
import occnet_multiview.extract as extract
import occnet_multiview.model as occnet_model
from evaluation.geometry import (
    N_POINTS,
    ExtractionGrid,
    MeshSamples,
    SurfaceSample,
    VolumeSamplingError,
    is_empty,
    mesh_occupancy,
    occupancy_iou,
    pair_metrics,
    point_file_metrics,
    point_file_samples,
    sample_mesh,
)
from occnet_multiview.extract import encode_sets, extract_meshes, network_occupancies
from sdn.data import occnet_files
from sdn.data.image_cache import DEFAULT_CACHE_DIR
from sdn.io import atomic_write_bytes, atomic_write_json, npz_bytes
from sdn.seeding import set_seed

CACHE_FORMAT = 1
STREAM_GEOMETRY = 100  # the mesh samples' stream (sdn.seeding's STREAM_* are the generated sets')
GT_MESH, GT_POINT_FILES = "mesh", "point files"
# The modules whose code computes a real side: a change to any of them changes the cache key.
_CODE = (geometry, extract, occnet_model, occnet_files)


@dataclass(frozen=True)
class RealSettings:
    """What the real side depends on besides the object and the OccNet weights."""

    seed: int
    threshold: float
    resolution0: int
    upsampling_steps: int
    real_views: int
    table2_views: tuple
    dense_points: int
    precision: str = "fp32"  # the OccNet's (occnet_multiview.extract.network_occupancies)


@dataclass
class RealSide:
    """One object's real side: M's samples (``real``), the ground truth's (``truth``, its
    source ``gt_source``) and the rows that need no set model (Table 2 and ``gt_real``; the
    object's base columns are added by the harness)."""

    real: MeshSamples
    truth: MeshSamples
    gt_source: str
    rows: list[dict]


def mesh_rng(seed: int, key: str, mesh: str) -> np.random.Generator:
    """The samples of one mesh of object ``key`` (``synset/object_id``): ``mesh`` is ``real``
    (M), ``truth``, ``recon|k`` (the first k of the 16 views reconstructed from all real
    views) or ``input|k`` (16 views reconstructed from the first k real views)."""
    return np.random.default_rng(set_seed(seed, STREAM_GEOMETRY, f"{key}|{mesh}"))


def watertight(*meshes: trimesh.Trimesh | None) -> bool:
    """True when every non-empty mesh is watertight (an empty one, or point files, has no
    containment test)."""
    return all(m is None or is_empty(m) or m.is_watertight for m in meshes)


def score_pair(pred: MeshSamples, ref: MeshSamples) -> dict:
    """One row's metrics and status for a predicted mesh against a reference mesh, from their
    samples (:func:`evaluation.geometry.pair_metrics`; ``cd`` reported x10^3).
    ``mesh_status``: ``empty`` when either mesh has no faces (worst or best values, as
    documented in :mod:`evaluation.geometry`), ``failed`` when a volume could not be sampled
    (``iou`` NaN), else ``ok``; ``watertight``: both meshes are."""
    status = "empty" if pred.empty or ref.empty else "ok"
    try:
        metrics = pair_metrics(pred, ref)
    except VolumeSamplingError:
        metrics = {**geometry.surface_pair_metrics(pred, ref), "iou": float("nan")}
        status = "failed"
    metrics["cd"] *= 1e3  # reported x10^3, as in the paper
    return {**metrics, "mesh_status": status, "watertight": watertight(pred.mesh, ref.mesh)}


def score_truth(pred: MeshSamples, truth: MeshSamples, points: occnet_files.Points, gt_source: str) -> dict:
    """One ground-truth row: a predicted mesh's samples against the ground truth, with
    ``occnet_iou`` (OccNet's IoU of the mesh's occupancy at ``points.npz``). Against a mesh:
    :func:`score_pair`; against point files: :func:`evaluation.geometry.point_file_metrics`
    (``mesh_status`` ``empty`` when the mesh has no faces, else ``ok``)."""
    if gt_source == GT_MESH:
        scores = score_pair(pred, truth)
        occ = mesh_occupancy(pred.mesh, points.points)
        scores["occnet_iou"] = occupancy_iou(occ, points.occupancies)
    else:
        scores = point_file_metrics(pred, truth, points.points, points.occupancies)
        scores["cd"] *= 1e3
        scores.update(mesh_status="empty" if pred.empty else "ok", watertight=watertight(pred.mesh))
    return {**scores, "gt_source": gt_source}


def table2_rows(occ, real: torch.Tensor, points: occnet_files.Points, cfg: RealSettings) -> list[dict]:
    """Table 2 as OccNet defines it: for each v in ``table2_views``, the OccNet's probabilities
    at the N points of ``points.npz`` (codes pooled over the first v of ``real`` (V, 3, H, W)),
    thresholded at ``cfg.threshold`` (p >= threshold is inside, as in mesh extraction), and
    OccNet's IoU against the ground-truth occupancies. No mesh: ``mesh_status`` is ``ok`` and
    ``watertight`` is empty."""
    codes = encode_sets(occ, [real[:v] for v in cfg.table2_views], cfg.precision)
    with extract.eval_mode(occ):
        probs = network_occupancies(occ, codes, precision=cfg.precision)([points.points] * len(codes))
    return [
        {"table": "table2", "k": v, "occnet_iou": occupancy_iou(p >= cfg.threshold, points.occupancies),
         "mesh_status": "ok", "watertight": None}
        for v, p in zip(cfg.table2_views, probs, strict=True)
    ]  # fmt: skip


def compute_real_side(
    occ,
    real: torch.Tensor,
    points: occnet_files.Points,
    truth_mesh: trimesh.Trimesh | None,
    cloud: occnet_files.PointCloud | None,
    key: str,
    cfg: RealSettings,
) -> RealSide:
    """An object's :class:`RealSide` from its real views (V, 3, H, W) in [0, 1], its
    ``points.npz``, and its ground truth (``truth_mesh`` from ``model.ply``, else ``cloud``
    from ``pointcloud.npz``; ValueError naming the object when it has neither)."""
    ((m_mesh, m_grid),) = extract_meshes(
        occ, [real], cfg.threshold, cfg.resolution0, cfg.upsampling_steps, precision=cfg.precision
    )
    m = sample_mesh(
        m_mesh,
        mesh_rng(cfg.seed, key, "real"),
        N_POINTS,
        cfg.dense_points,
        ExtractionGrid(m_grid, cfg.threshold),
    )
    rng = mesh_rng(cfg.seed, key, "truth")
    if truth_mesh is not None:
        truth, source = sample_mesh(truth_mesh, rng, N_POINTS, cfg.dense_points), GT_MESH
    elif cloud is not None:
        surface = SurfaceSample(cloud.points, cloud.normals)
        truth, source = point_file_samples(surface, rng, N_POINTS, cfg.dense_points), GT_POINT_FILES
    else:
        raise ValueError(f"object {key} has neither model.ply nor pointcloud.npz: no ground truth to score")
    gt_row = {"table": "gt_real", "k": cfg.real_views, **score_truth(m, truth, points, source)}
    return RealSide(m, truth, source, [*table2_rows(occ, real, points, cfg), gt_row])


# ----------------------------------------------------------------------------------
# The cache
# ----------------------------------------------------------------------------------


def code_digest() -> str:
    """sha256 (16 hex) of the source files of the modules that compute a real side
    (including this one)."""
    h = hashlib.sha256()
    for path in sorted({Path(m.__file__) for m in _CODE} | {Path(__file__)}):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def cache_key(occnet_sha256: str, cfg: RealSettings) -> dict:
    """The run-wide part of the key (the object's part is in :meth:`RealSideCache.path`)."""
    return {
        "format": CACHE_FORMAT,
        "code": code_digest(),
        "torch": torch.__version__,
        "occnet_sha256": occnet_sha256,
        "n_points": N_POINTS,
        "seed": cfg.seed,
        "threshold": float(cfg.threshold),
        "resolution0": cfg.resolution0,
        "upsampling_steps": cfg.upsampling_steps,
        "real_views": cfg.real_views,
        "table2_views": [int(v) for v in cfg.table2_views],
        "dense_points": cfg.dense_points,
        "precision": cfg.precision,
    }


def object_digest(real: torch.Tensor, files: list[Path]) -> str:
    """sha256 (16 hex) of an object's content as the real side reads it: the pixels of its
    chosen real views (V, 3, H, W), then each file's bytes (``points.npz``,
    ``pointcloud.npz``, ``model.ply``; a missing one counts as missing)."""
    h = hashlib.sha256(real.numpy().tobytes())
    for path in files:
        h.update(path.name.encode() + (path.read_bytes() if path.is_file() else b"\0missing"))
    return h.hexdigest()[:16]


def _pack(prefix: str, s: MeshSamples) -> dict[str, np.ndarray]:
    arrays = {}
    if s.mesh is not None:
        arrays[f"{prefix}_vertices"] = np.asarray(s.mesh.vertices)
        arrays[f"{prefix}_faces"] = np.asarray(s.mesh.faces)
    for name in ("surface", "dense"):
        sample = getattr(s, name)
        if sample is not None:
            arrays[f"{prefix}_{name}_points"], arrays[f"{prefix}_{name}_normals"] = (
                sample.points,
                sample.normals,
            )
    if s.volume is not None:
        arrays[f"{prefix}_volume"] = s.volume
    return arrays


def _unpack(prefix: str, z, volume_error: str | None) -> MeshSamples:
    mesh = None
    if f"{prefix}_vertices" in z:
        mesh = trimesh.Trimesh(z[f"{prefix}_vertices"], z[f"{prefix}_faces"], process=False)
    samples = [
        SurfaceSample(z[f"{prefix}_{n}_points"], z[f"{prefix}_{n}_normals"])
        if f"{prefix}_{n}_points" in z
        else None
        for n in ("surface", "dense")
    ]
    volume = z[f"{prefix}_volume"] if f"{prefix}_volume" in z else None
    return MeshSamples(mesh, *samples, volume, volume_error)


class RealSideCache:
    """Per-object real sides on disk under ``root/<run key digest>/<synset>/<object_id>-<object
    digest>.npz``; the folder's ``key.json`` holds the run key it was built under."""

    def __init__(self, root: str | Path | None, key: dict):
        self.key = key
        self.digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        base = Path(root) if root is not None else DEFAULT_CACHE_DIR.parent
        self.folder = base / "shapenet-real" / self.digest

    def path(self, key: str, digest: str) -> Path:
        synset, object_id = key.split("/", 1)
        return self.folder / synset / f"{object_id}-{digest}.npz"

    def load(self, key: str, digest: str) -> RealSide | None:
        """The cached real side of object ``key`` with content ``digest``, or None."""
        path = self.path(key, digest)
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in z.files}
        real = _unpack("real", arrays, meta["real_volume_error"])
        truth = _unpack("truth", arrays, meta["truth_volume_error"])
        return RealSide(real, truth, meta["gt_source"], meta["rows"])

    def save(self, key: str, digest: str, side: RealSide) -> None:
        """Write one object's entry atomically (and the folder's key.json once)."""
        if not (self.folder / "key.json").is_file():
            atomic_write_json(self.folder / "key.json", self.key)
        meta = {
            "rows": side.rows,
            "gt_source": side.gt_source,
            "real_volume_error": side.real.volume_error,
            "truth_volume_error": side.truth.volume_error,
        }
        arrays = {
            **_pack("real", side.real),
            **_pack("truth", side.truth),
            "meta": np.array(json.dumps(meta)),
        }
        atomic_write_bytes(self.path(key, digest), npz_bytes(arrays, compress=False))
