"""Mesh geometry metrics of the ShapeNet benchmark (DESIGN.md §5).

Meshes are ``trimesh.Trimesh`` objects in the OccNet-normalised frame (bounding box
centred, longest edge 1; the evaluation volume is the cube [-0.55, 0.55]^3). Every
random sample is drawn from a ``numpy.random.Generator`` that the caller seeds.

Nearest neighbours (:func:`nearest_neighbours`) use a KD-tree (scipy's cKDTree) queried by
``torch.get_num_threads()`` threads unless told otherwise: the benchmark sets torch's threads
to cores / worker processes, so one worker uses every core and several do not oversubscribe
them. The answer does not depend on the thread count (each thread answers a slice of the
queries from the same tree). On a CUDA device, on request only, :func:`chamfer` can use the
chunked brute-force kernel :func:`nearest_neighbours_torch` instead (same distances to
rounding, same indices except exact ties); the CPU benchmark keeps the KD-tree.

Containment (:func:`mesh_occupancy`, used by the volume samples and both IoUs): trimesh's
ray-parity test, on Embree's ray intersector (the embreex package; :func:`require_embree`
fails loudly without it rather than fall back to trimesh's own intersector, which is slower
and may change the numbers), is only meaningful on a watertight mesh.
A mesh that is not watertight (a hole, a user's ``model.ply`` with open parts) is tested
by a majority vote of ray parity along three fixed, slightly skewed directions
(``RAY_DIRECTIONS``): a ray escaping through a hole flips one vote, not the verdict.

Volume samples (:func:`sample_volume`) are drawn by rejection in the mesh's bounding
box with a budget of ``MAX_VOLUME_CANDIDATES`` candidates, so a thin but valid mesh
filling at least n / budget of its box (0.05% for n = 2048) is sampled; below that, or
for a mesh enclosing no volume, it raises :class:`VolumeSamplingError` (the benchmark
then scores the volume IoU as failed and counts it).

Empty meshes (no faces) get documented worst-case values, never NaN: when exactly
one mesh is empty the pair scores ``WORST`` (CD and Chamfer-L1 as if every point
were a box diagonal away, normal consistency 0, F-score 0, IoU 0); when both are
empty they are identical (CD 0, Chamfer-L1 0, normal consistency 1, F-score 1,
IoU 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree

BOX_HALF = 0.55
BOX_DIAGONAL = float(np.sqrt(3) * 2 * BOX_HALF)  # 1.905: the largest distance in the box
N_POINTS = 2048  # the paper's CD and volume IoU sample size
N_DENSE = 100_000  # OccNet's sample size for Chamfer-L1, normal consistency and F-score
F_SCORE_TAU = 0.01  # 1% of the unit box edge
MAX_VOLUME_CANDIDATES = 1 << 22  # rejection-sampling budget of sample_volume (4.2M candidates)
# Ray directions of the majority-vote containment test for meshes that are not watertight:
# near the axes but skewed, so that no ray runs along a face or an edge of an axis-aligned mesh.
RAY_DIRECTIONS = np.array([[1.0, 0.0137, -0.0211], [-0.0173, 1.0, 0.0119], [0.0151, -0.0127, 1.0]])
RAY_DIRECTIONS /= np.linalg.norm(RAY_DIRECTIONS, axis=1, keepdims=True)
WORST = {
    "cd": 2 * BOX_DIAGONAL**2,
    "chamfer_l1": BOX_DIAGONAL,
    "normal_consistency": 0.0,
    "f_score": 0.0,
    "iou": 0.0,
}
BEST = {"cd": 0.0, "chamfer_l1": 0.0, "normal_consistency": 1.0, "f_score": 1.0, "iou": 1.0}


def is_empty(mesh: trimesh.Trimesh | None) -> bool:
    return mesh is None or len(mesh.faces) == 0


@dataclass
class SurfaceSample:
    """points (N, 3) and unit normals (N, 3) on a mesh surface."""

    points: np.ndarray
    normals: np.ndarray


def sample_surface(mesh: trimesh.Trimesh, rng: np.random.Generator, n: int = N_POINTS) -> SurfaceSample:
    """``n`` area-weighted surface points with their face normals (seeded by ``rng``)."""
    if is_empty(mesh):
        raise ValueError("cannot sample the surface of an empty mesh")
    pts, face = trimesh.sample.sample_surface(mesh, n, seed=rng)
    return SurfaceSample(np.asarray(pts, np.float64), np.asarray(mesh.face_normals[face], np.float64))


class VolumeSamplingError(ValueError):
    """A mesh's volume could not be sampled: it encloses no volume, or too little of its
    bounding box for the rejection budget."""


def sample_volume(
    mesh: trimesh.Trimesh,
    rng: np.random.Generator,
    n: int = N_POINTS,
    max_candidates: int = MAX_VOLUME_CANDIDATES,
) -> np.ndarray:
    """``n`` points (n, 3) uniform in the volume enclosed by a mesh, by rejection sampling
    in its bounding box (containment by :func:`mesh_occupancy`). Candidates come in rounds
    of 4n, 8n, 16n, ... (at most ``max_candidates`` in all; seeded by ``rng``), so a mesh
    filling a fraction f >= n / max_candidates of its box is sampled. Raises
    ValueError for an empty mesh and :class:`VolumeSamplingError` when a watertight mesh
    has no positive volume or fewer than n points are found within the budget."""
    if is_empty(mesh):
        raise ValueError("cannot sample the volume of an empty mesh")
    if mesh.is_watertight and not mesh.volume > 0:
        raise VolumeSamplingError(f"the mesh encloses no volume (volume {mesh.volume:g})")
    lo, hi = mesh.bounds
    found: list[np.ndarray] = []
    total = tested = 0
    size = max(4 * n, 1024)
    while tested < max_candidates:
        cand = rng.uniform(lo, hi, size=(min(size, max_candidates - tested), 3))
        tested += len(cand)
        inside = cand[mesh_occupancy(mesh, cand)]
        found.append(inside)
        total += len(inside)
        if total >= n:
            return np.concatenate(found)[:n]
        size *= 2
    raise VolumeSamplingError(
        f"found only {total} of {n} points inside the mesh among {tested} candidates in its bounding box "
        f"(it fills less than {n / max_candidates:.2g} of the box)"
    )


def nearest_neighbours(
    queries: np.ndarray, points: np.ndarray, workers: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance (M,) float64 and index (M,) int64 into points (N, 3) of the nearest
    point of each of queries (M, 3), by scipy's cKDTree with ``workers`` threads (None:
    ``torch.get_num_threads()``; -1: every core). The result does not depend on ``workers``."""
    return cKDTree(points).query(queries, workers=torch.get_num_threads() if workers is None else workers)


def nearest_neighbours_torch(
    queries: np.ndarray, points: np.ndarray, device: str | torch.device, max_chunk_bytes: int = 1 << 30
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest_neighbours` by brute force on a torch device: queries (M, 3), points (N, 3)
    -> distance (M,) float64 and index (M,) int64 (numpy, on the CPU).

    In float64, by chunks of queries of at most ``max_chunk_bytes`` of (chunk, N) squared
    distances: the index is the argmin over the points of |p|^2 - 2 q.p (|q - p|^2 less the
    row constant |q|^2), the distance is then recomputed exactly, sqrt(sum((q - p)^2)), for
    that point. Distances equal the KD-tree's up to rounding (a fused multiply-add on a GPU
    may change the last bits); indices match except between points at equal distances (to
    ~1e-16 in squared distance), where the argmin takes the first."""
    queries, points = np.asarray(queries, np.float64), np.asarray(points, np.float64)
    for name, arr in (("queries", queries), ("points", points)):
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise ValueError(f"{name} must be an (n, 3) array, got shape {arr.shape}")
    if len(points) == 0:
        raise ValueError("no points to find the nearest of")
    q = torch.as_tensor(queries, device=device)
    p = torch.as_tensor(points, device=device)
    p_sq = (p * p).sum(1)
    chunk = max(1, max_chunk_bytes // (8 * len(p)))
    dist, index = [], []
    for start in range(0, len(q), chunk):
        qc = q[start : start + chunk]
        i = torch.addmm(p_sq[None, :], qc, p.T, alpha=-2).argmin(1)
        dist.append(((qc - p[i]) ** 2).sum(1).sqrt())
        index.append(i)
    if not dist:
        return np.zeros(0), np.zeros(0, np.int64)
    return torch.cat(dist).cpu().numpy(), torch.cat(index).cpu().numpy()


def chamfer(a: SurfaceSample, b: SurfaceSample, nn_device: str | None = None) -> dict[str, float]:
    """Point-set distances between two surface samples (units of the normalised frame).

    - ``cd`` (the paper's, Achlioptas et al.): mean_a min_b |a-b|^2 + mean_b min_a |a-b|^2
      (squared units; the benchmark reports it x10^3);
    - ``chamfer_l1`` (OccNet's): 0.5 (mean_a min_b |a-b| + mean_b min_a |a-b|);
    - ``normal_consistency`` (OccNet's): 0.5 (mean_a |n_a . n_b(a)| + mean_b |n_b . n_a(b)|)
      with b(a) the nearest neighbour of a;
    - ``f_score`` at τ = 0.01: harmonic mean of precision (fraction of a within τ of b)
      and recall (fraction of b within τ of a); a plays the prediction.

    Nearest neighbours by :func:`nearest_neighbours` (the KD-tree), or, when ``nn_device``
    names a CUDA device (``"cuda"``, ``"cuda:1"``) and one is available, by
    :func:`nearest_neighbours_torch` on it.
    """
    if nn_device is None:
        d_ab, i_ab = nearest_neighbours(a.points, b.points)
        d_ba, i_ba = nearest_neighbours(b.points, a.points)
    else:
        if torch.device(nn_device).type != "cuda" or not torch.cuda.is_available():
            raise ValueError(
                f"nn_device must name an available CUDA device, got {nn_device!r} "
                f"(CUDA available: {torch.cuda.is_available()}); leave it None for the KD-tree"
            )
        d_ab, i_ab = nearest_neighbours_torch(a.points, b.points, nn_device)
        d_ba, i_ba = nearest_neighbours_torch(b.points, a.points, nn_device)
    nc_ab = np.abs(np.einsum("ij,ij->i", a.normals, b.normals[i_ab])).mean()
    nc_ba = np.abs(np.einsum("ij,ij->i", b.normals, a.normals[i_ba])).mean()
    precision, recall = (d_ab < F_SCORE_TAU).mean(), (d_ba < F_SCORE_TAU).mean()
    f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {
        "cd": float((d_ab**2).mean() + (d_ba**2).mean()),
        "chamfer_l1": float(0.5 * (d_ab.mean() + d_ba.mean())),
        "normal_consistency": float(0.5 * (nc_ab + nc_ba)),
        "f_score": float(f),
    }


def volume_iou(
    m: trimesh.Trimesh, m_hat: trimesh.Trimesh, rng: np.random.Generator, n: int = N_POINTS
) -> float:
    """The paper's Table 1 IoU (a volume overlap): 0.5 (P[x ∈ M̂ | x ~ U(M)] + P[x ∈ M | x ~ U(M̂)]),
    each estimated from ``n`` uniform volume samples (:func:`sample_volume`; containment by
    :func:`mesh_occupancy`). Unitless, in [0, 1]. Raises :class:`VolumeSamplingError` when
    a mesh's volume cannot be sampled."""
    if is_empty(m) or is_empty(m_hat):
        return BEST["iou"] if is_empty(m) and is_empty(m_hat) else WORST["iou"]
    in_hat = mesh_occupancy(m_hat, sample_volume(m, rng, n)).mean()
    in_m = mesh_occupancy(m, sample_volume(m_hat, rng, n)).mean()
    return float(0.5 * (in_hat + in_m))


def occupancy_iou(pred: np.ndarray, target: np.ndarray) -> float:
    """OccNet's IoU |A ∩ B| / |A ∪ B| of two boolean occupancy vectors (N,) over the same
    points; two empty sets give 1 (they agree)."""
    pred, target = _occupancy_pair(pred, target)
    union = np.logical_or(pred, target).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, target).sum() / union)


def volume_overlap(pred: np.ndarray, target: np.ndarray) -> float:
    """The paper's volume IoU estimated at points uniform in a box (such as ``points.npz``)
    from two boolean occupancy vectors (N,): 0.5 (|A ∩ B| / |B| + |A ∩ B| / |A|), A = pred,
    B = target. The points of B are uniform in B's volume, so |A ∩ B| / |B| estimates
    P[x ∈ A | x ~ U(B)] (and the other way). Unitless, in [0, 1]; two empty sets give 1,
    one empty set 0 (the values of :func:`volume_iou` for empty meshes)."""
    pred, target = _occupancy_pair(pred, target)
    a, b = pred.sum(), target.sum()
    if a == 0 or b == 0:
        return BEST["iou"] if a == b else WORST["iou"]
    both = np.logical_and(pred, target).sum()
    return float(0.5 * (both / b + both / a))


def _occupancy_pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, target = np.asarray(pred, bool), np.asarray(target, bool)
    if pred.shape != target.shape:
        raise ValueError(f"occupancy vectors differ in shape: {pred.shape} vs {target.shape}")
    return pred, target


def ray_parity(mesh: trimesh.Trimesh, points: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Odd-crossing flags (N,) of rays from points (N, 3) along ``direction`` (3,) through a
    mesh: the number of distinct surface crossings of each ray, modulo 2 (hits at one
    location of a ray, as on an edge shared by two faces, count once)."""
    points = np.asarray(points, np.float64)
    dirs = np.broadcast_to(np.asarray(direction, np.float64), points.shape)
    locations, index_ray, _ = mesh.ray.intersects_location(points, dirs, multiple_hits=True)
    hits = np.unique(np.column_stack([index_ray, np.round(locations, 9)]), axis=0)
    return np.bincount(hits[:, 0].astype(np.int64), minlength=len(points)) % 2 == 1


def require_embree(mesh: trimesh.Trimesh) -> None:
    """Raise RuntimeError unless the mesh's ray tests run on Embree (trimesh's embreex
    intersector, which the reference reports used). Without embreex trimesh silently builds
    its own intersector instead: slower, and its containment answers may differ."""
    ray = type(mesh.ray)
    if ray.__module__ != "trimesh.ray.ray_pyembree":
        why = (
            "the embreex package is not installed or fails to import"
            if not trimesh.ray.has_embree
            else "the mesh was built with use_embree=False"
        )
        raise RuntimeError(
            f"containment tests need trimesh's Embree ray intersector, but the mesh uses "
            f"{ray.__module__}.{ray.__name__} ({why}); install it with `pip install embreex`"
        )


def mesh_occupancy(mesh: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """Inside flags (N,) of points (N, 3); all False for an empty mesh.

    A watertight mesh uses trimesh's ray-parity ``contains``; a mesh that is not watertight
    uses the majority of :func:`ray_parity` along the three ``RAY_DIRECTIONS`` (a point is
    inside when at least two of its rays cross the surface an odd number of times). Raises
    RuntimeError (:func:`require_embree`) when the mesh's rays do not run on Embree."""
    points = np.asarray(points, np.float64)
    if is_empty(mesh):
        return np.zeros(len(points), bool)
    require_embree(mesh)
    if mesh.is_watertight:
        return mesh.contains(points)
    votes = sum(ray_parity(mesh, points, d).astype(np.int64) for d in RAY_DIRECTIONS)
    return votes >= 2


def surface_metrics(
    pred: trimesh.Trimesh,
    ref: trimesh.Trimesh | SurfaceSample,
    rng: np.random.Generator,
    n: int = N_POINTS,
    n_dense: int = N_DENSE,
) -> dict[str, float]:
    """The surface metrics of :func:`chamfer` between a predicted mesh and a reference (a mesh,
    or surface samples such as ``pointcloud.npz``'s points (M, 3) and normals (M, 3)).

    ``cd`` (the paper's, squared units) uses ``n`` = 2048 samples per surface; ``chamfer_l1``,
    ``normal_consistency`` and ``f_score`` (OccNet's) use ``n_dense`` = 100k, because at 2048
    points the sample spacing (~0.04 on a unit object) dwarfs the F-score's τ = 0.01 and even
    identical meshes would score F ≈ 0.2. A reference sample is subsampled without
    replacement (all of it when it has fewer points). An empty mesh gets the documented
    worst/best values."""
    ref_empty = is_empty(ref) if isinstance(ref, trimesh.Trimesh) else len(ref.points) == 0
    if is_empty(pred) or ref_empty:
        values = BEST if is_empty(pred) and ref_empty else WORST
        return {k: values[k] for k in ("cd", "chamfer_l1", "normal_consistency", "f_score")}

    def ref_sample(k: int) -> SurfaceSample:
        if isinstance(ref, trimesh.Trimesh):
            return sample_surface(ref, rng, k)
        pick = np.sort(rng.choice(len(ref.points), min(k, len(ref.points)), replace=False))
        return SurfaceSample(
            np.asarray(ref.points[pick], np.float64), np.asarray(ref.normals[pick], np.float64)
        )

    out = {"cd": chamfer(sample_surface(pred, rng, n), ref_sample(n))["cd"]}
    dense = chamfer(sample_surface(pred, rng, n_dense), ref_sample(n_dense))
    out.update({k: dense[k] for k in ("chamfer_l1", "normal_consistency", "f_score")})
    return out


def compare_meshes(
    pred: trimesh.Trimesh,
    ref: trimesh.Trimesh,
    rng: np.random.Generator,
    n: int = N_POINTS,
    n_dense: int = N_DENSE,
) -> dict[str, float]:
    """All metrics between two meshes (pred plays the prediction for the F-score):
    :func:`surface_metrics` and the paper's :func:`volume_iou` (``n`` volume samples per
    mesh) as ``iou``. Empty meshes get the documented worst/best values."""
    return {**surface_metrics(pred, ref, rng, n, n_dense), "iou": volume_iou(ref, pred, rng, n)}


def compare_to_point_files(
    pred: trimesh.Trimesh,
    surface: SurfaceSample,
    points: np.ndarray,
    occupancies: np.ndarray,
    rng: np.random.Generator,
    n: int = N_POINTS,
    n_dense: int = N_DENSE,
) -> dict[str, float]:
    """A predicted mesh against ground truth given as OccNet's point files (real ShapeNet has
    no mesh), as OccNet's evaluation does.

    surface: ``pointcloud.npz``'s surface points (M, 3) and normals (M, 3); points (N, 3) and
    occupancies (N,) bool: ``points.npz``'s uniform box points and ground-truth inside flags.

    - ``cd``, ``chamfer_l1``, ``normal_consistency``, ``f_score``: :func:`surface_metrics`
      against ``n`` (CD) and ``n_dense`` points drawn without replacement from the point
      cloud, which is an area-weighted surface sample of the normalised mesh: the same
      estimators as against a mesh;
    - ``iou``: the paper's volume overlap by :func:`volume_overlap` over the N box points
      (the volume samples of both shapes are the box points inside them);
    - ``occnet_iou``: OccNet's :func:`occupancy_iou` over the same points.
    """
    occ = mesh_occupancy(pred, points)
    return {
        **surface_metrics(pred, surface, rng, n, n_dense),
        "iou": volume_overlap(occ, occupancies),
        "occnet_iou": occupancy_iou(occ, occupancies),
    }
