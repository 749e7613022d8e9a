"""Mesh geometry metrics of the ShapeNet benchmark (DESIGN.md §5).

Meshes are ``trimesh.Trimesh`` objects in the OccNet-normalised frame (bounding box
centred, longest edge 1; the evaluation volume is the cube [-0.55, 0.55]^3). Every
random sample is drawn from a ``numpy.random.Generator`` that the caller seeds.

Nearest neighbours (:func:`nearest_neighbours`) use pykdtree's KD-tree (the library OccNet's
own evaluation uses: 1.7x faster per thread than scipy's cKDTree on these queries, with
identical float64 distances and indices, measured in benchmarks/perf/mesh_throughput.py) with
``torch.get_num_threads()`` OpenMP threads unless told otherwise: the benchmark sets torch's
threads to cores / worker processes, so one worker uses every core and several do not
oversubscribe them. The answer does not depend on the thread count (each thread answers a
slice of the queries from the same tree). On a CUDA device, on request only, :func:`chamfer` can use the
chunked brute-force kernel :func:`nearest_neighbours_torch` instead (same distances to
rounding, same indices except exact ties); the CPU benchmark keeps the KD-tree.

Containment (:func:`mesh_occupancy`, used by the volume samples and both IoUs): trimesh's
ray-parity test, on Embree's ray intersector (the embreex package; :func:`require_embree`
fails loudly without it rather than fall back to trimesh's own intersector, which is slower
and may change the numbers), is only meaningful on a watertight mesh.
A mesh that is not watertight (a hole, a user's ``model.ply`` with open parts) is tested
by a majority vote of ray parity along three fixed, slightly skewed directions
(``RAY_DIRECTIONS``): a ray escaping through a hole flips one vote, not the verdict.

Volume samples (:func:`sample_volume`) are drawn by rejection with a budget of
``MAX_VOLUME_CANDIDATES`` candidates: uniformly in the mesh's bounding box, or, for a mesh
that marching cubes extracted from a known grid (:class:`ExtractionGrid`), uniformly in the
grid cells that are inside or cut by the surface, where only the cut cells need a
containment test. Both give points uniform in the enclosed volume; the grid route needs no
rejection rounds for thin objects. A mesh filling less than n / budget of its candidate
region (0.05% for n = 2048), or enclosing no volume, raises :class:`VolumeSamplingError`
(the benchmark then scores the volume IoU as failed and counts it).

Samples once per mesh (:class:`MeshSamples`, :func:`sample_mesh`): the benchmark draws each
mesh's surface samples (``N_POINTS`` and ``N_DENSE``) and volume samples once and reuses
them in every comparison the mesh takes part in (:func:`pair_metrics`). Sample coordinates
are stored as float32 (2^-24 of the unit box), so that samples written to and read from the
benchmark's cache are the samples computed afresh, bit for bit; the metrics compute in
float64.

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
from pykdtree.kdtree import KDTree
from threadpoolctl import threadpool_limits

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


SAMPLE_DTYPE = np.float32  # stored sample coordinates (see the module doc)


@dataclass
class SurfaceSample:
    """points (N, 3) and unit normals (N, 3) on a mesh surface."""

    points: np.ndarray
    normals: np.ndarray


def sample_surface(mesh: trimesh.Trimesh, rng: np.random.Generator, n: int = N_POINTS) -> SurfaceSample:
    """``n`` area-weighted surface points with their face normals (seeded by ``rng``), as
    float32 arrays (N, 3)."""
    if is_empty(mesh):
        raise ValueError("cannot sample the surface of an empty mesh")
    pts, face = trimesh.sample.sample_surface(mesh, n, seed=rng)
    return SurfaceSample(np.asarray(pts, SAMPLE_DTYPE), np.asarray(mesh.face_normals[face], SAMPLE_DTYPE))


def subsample(sample: SurfaceSample, rng: np.random.Generator, n: int) -> SurfaceSample:
    """``n`` points of a surface sample (such as ``pointcloud.npz``'s) drawn without
    replacement, in their original order (all of them when it has fewer), as float32."""
    pick = np.sort(rng.choice(len(sample.points), min(n, len(sample.points)), replace=False))
    return SurfaceSample(
        np.asarray(sample.points[pick], SAMPLE_DTYPE), np.asarray(sample.normals[pick], SAMPLE_DTYPE)
    )


@dataclass(frozen=True)
class ExtractionGrid:
    """The grid a mesh was extracted from (:func:`occnet_multiview.extract.mesh_from_grid`):
    occupancy probabilities ``values`` (n, n, n) at points spanning [-BOX_HALF, BOX_HALF]^3,
    marching cubes at ``threshold`` on the grid padded by one outside (0) layer."""

    values: np.ndarray
    threshold: float

    def cells(self) -> tuple[np.ndarray, np.ndarray, float, float]:
        """The padded grid's cells that are inside or cut by the surface: their corner
        indices (C, 3) int64, a flag (C,) for the cells inside (all 8 corners at or above
        the threshold: no surface crosses them, so they lie wholly inside), the coordinate
        of the padded grid's first point and the cell size."""
        above = np.pad(self.values, 1, mode="constant", constant_values=0.0) >= self.threshold
        m = above.shape[0] - 1
        corners = [above[i : i + m, j : j + m, k : k + m] for i in (0, 1) for j in (0, 1) for k in (0, 1)]
        any_above, all_above = np.logical_or.reduce(corners), np.logical_and.reduce(corners)
        index = np.argwhere(any_above)
        step = 2 * BOX_HALF / (self.values.shape[0] - 1)
        return index, all_above[any_above], -BOX_HALF - step, step


class VolumeSamplingError(ValueError):
    """A mesh's volume could not be sampled: it encloses no volume, or too little of its
    bounding box for the rejection budget."""


def sample_volume(
    mesh: trimesh.Trimesh,
    rng: np.random.Generator,
    n: int = N_POINTS,
    max_candidates: int = MAX_VOLUME_CANDIDATES,
    grid: ExtractionGrid | None = None,
) -> np.ndarray:
    """``n`` points (n, 3) float32 uniform in the volume enclosed by a mesh, by rejection
    sampling (containment by :func:`mesh_occupancy`; seeded by ``rng``).

    Candidates are uniform in the mesh's bounding box or, with the ``grid`` the mesh was
    extracted from, uniform in the grid cells inside or cut by the surface
    (:meth:`ExtractionGrid.cells`; a candidate in an inside cell is accepted untested). Both
    regions contain the whole enclosed volume, so the accepted points are uniform in it.
    Candidates come in rounds of 4n, 8n, 16n, ... (at most ``max_candidates`` in all), so a
    mesh filling a fraction f >= n / max_candidates of the region is sampled. Raises
    ValueError for an empty mesh and :class:`VolumeSamplingError` when a watertight mesh has
    no positive volume or fewer than n points are found within the budget."""
    if is_empty(mesh):
        raise ValueError("cannot sample the volume of an empty mesh")
    if mesh.is_watertight and not mesh.volume > 0:
        raise VolumeSamplingError(f"the mesh encloses no volume (volume {mesh.volume:g})")
    if grid is not None:
        index, inside_cell, origin, step = grid.cells()
        if len(index) == 0:
            raise VolumeSamplingError("no grid cell is inside or cut by the surface")
    found: list[np.ndarray] = []
    total = tested = 0
    size = max(4 * n, 1024)
    while tested < max_candidates:
        m = min(size, max_candidates - tested)
        if grid is None:
            cand = rng.uniform(*mesh.bounds, size=(m, 3))
            inside = mesh_occupancy(mesh, cand)
        else:
            cell = rng.integers(0, len(index), size=m)
            cand = origin + (index[cell] + rng.random((m, 3))) * step
            inside = inside_cell[cell].copy()
            inside[~inside] = mesh_occupancy(mesh, cand[~inside])
        tested += m
        found.append(cand[inside])
        total += int(inside.sum())
        if total >= n:
            return np.concatenate(found)[:n].astype(SAMPLE_DTYPE)
        size *= 2
    region = "its bounding box" if grid is None else "the grid cells inside or cut by its surface"
    raise VolumeSamplingError(
        f"found only {total} of {n} points inside the mesh among {tested} candidates in {region} "
        f"(it fills less than {n / max_candidates:.2g} of the region)"
    )


@dataclass
class MeshSamples:
    """One shape's samples, drawn once (:func:`sample_mesh`) and reused in every comparison.

    mesh: the mesh (None for a shape given by point files only); surface: ``N_POINTS`` surface
    samples (CD); dense: ``N_DENSE`` surface samples (Chamfer-L1, normal consistency,
    F-score); both None for an empty mesh. volume: ``N_POINTS`` volume samples (n, 3), None
    for an empty mesh, for point files, or when they could not be drawn (``volume_error``
    says why)."""

    mesh: trimesh.Trimesh | None
    surface: SurfaceSample | None
    dense: SurfaceSample | None
    volume: np.ndarray | None = None
    volume_error: str | None = None

    @property
    def empty(self) -> bool:
        return self.surface is None or len(self.surface.points) == 0


def sample_mesh(
    mesh: trimesh.Trimesh,
    rng: np.random.Generator,
    n: int = N_POINTS,
    n_dense: int = N_DENSE,
    grid: ExtractionGrid | None = None,
) -> MeshSamples:
    """A mesh's :class:`MeshSamples`: ``n`` and ``n_dense`` surface samples, then ``n`` volume
    samples (:func:`sample_volume`, in ``grid``'s cells when given), in that order from
    ``rng``. An empty mesh has none; a :class:`VolumeSamplingError` is kept as
    ``volume_error``."""
    samples = surface_samples(mesh, rng, n, n_dense)
    if samples.empty:
        return samples
    try:
        samples.volume = sample_volume(mesh, rng, n, grid=grid)
    except VolumeSamplingError as e:
        samples.volume_error = str(e)
    return samples


def surface_samples(
    mesh: trimesh.Trimesh, rng: np.random.Generator, n: int = N_POINTS, n_dense: int = N_DENSE
) -> MeshSamples:
    """A mesh's :class:`MeshSamples` without volume samples: ``n`` then ``n_dense`` surface
    samples from ``rng`` (none for an empty mesh)."""
    if is_empty(mesh):
        return MeshSamples(mesh, None, None)
    return MeshSamples(mesh, sample_surface(mesh, rng, n), sample_surface(mesh, rng, n_dense))


def point_file_samples(
    cloud: SurfaceSample, rng: np.random.Generator, n: int = N_POINTS, n_dense: int = N_DENSE
) -> MeshSamples:
    """Ground truth given as a surface point cloud (``pointcloud.npz``'s points (M, 3) and
    normals (M, 3)): ``n`` and ``n_dense`` of its points drawn without replacement
    (:func:`subsample`), no mesh and no volume samples."""
    return MeshSamples(None, subsample(cloud, rng, n), subsample(cloud, rng, n_dense))


def nearest_neighbours(
    queries: np.ndarray, points: np.ndarray, workers: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance (M,) float64 and index (M,) int64 into points (N, 3) of the nearest
    point of each of queries (M, 3), by pykdtree's KD-tree in float64 with ``workers`` OpenMP
    threads (None: ``torch.get_num_threads()``; -1: every core). The result does not depend
    on ``workers``."""
    queries, points = np.asarray(queries, np.float64), np.asarray(points, np.float64)
    threads = torch.get_num_threads() if workers is None else workers
    with threadpool_limits(limits=None if threads == -1 else threads, user_api="openmp"):
        dist, index = KDTree(points).query(queries, k=1)
    return dist, index.astype(np.int64)


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
    na, nb = np.asarray(a.normals, np.float64), np.asarray(b.normals, np.float64)
    nc_ab = np.abs(np.einsum("ij,ij->i", na, nb[i_ab])).mean()
    nc_ba = np.abs(np.einsum("ij,ij->i", nb, na[i_ba])).mean()
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
    """The paper's Table 1 IoU of two meshes, each's ``n`` volume samples drawn from ``rng``
    (:func:`sample_volume`): :func:`samples_volume_iou`. Raises :class:`VolumeSamplingError`
    when a mesh's volume cannot be sampled."""
    if is_empty(m) or is_empty(m_hat):
        return BEST["iou"] if is_empty(m) and is_empty(m_hat) else WORST["iou"]
    volumes = [MeshSamples(x, None, None, sample_volume(x, rng, n)) for x in (m, m_hat)]
    return samples_volume_iou(*volumes)


def samples_volume_iou(m: MeshSamples, m_hat: MeshSamples) -> float:
    """The paper's Table 1 IoU (a volume overlap): 0.5 (P[x ∈ M̂ | x ~ U(M)] + P[x ∈ M | x ~ U(M̂)]),
    each probability estimated from the other shape's volume samples (containment by
    :func:`mesh_occupancy`). Unitless, in [0, 1]; 1 when both meshes are empty, 0 when one is.
    Raises :class:`VolumeSamplingError` when a non-empty mesh has no volume samples, and
    ValueError for a shape without a mesh (point files)."""
    if m.mesh is None or m_hat.mesh is None:
        raise ValueError("the volume IoU needs two meshes; point files are scored by volume_overlap")
    if is_empty(m.mesh) or is_empty(m_hat.mesh):
        return BEST["iou"] if is_empty(m.mesh) and is_empty(m_hat.mesh) else WORST["iou"]
    for x in (m, m_hat):
        if x.volume is None:
            raise VolumeSamplingError(x.volume_error or "the mesh has no volume samples")
    in_hat = mesh_occupancy(m_hat.mesh, m.volume).mean()
    in_m = mesh_occupancy(m.mesh, m_hat.volume).mean()
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


def surface_pair_metrics(pred: MeshSamples, ref: MeshSamples) -> dict[str, float]:
    """The surface metrics of :func:`chamfer` between two shapes' samples (pred plays the
    prediction for the F-score): ``cd`` (the paper's, squared units) from the ``N_POINTS``
    samples; ``chamfer_l1``, ``normal_consistency`` and ``f_score`` (OccNet's) from the
    ``N_DENSE`` ones, because at 2048 points the sample spacing (~0.04 on a unit object)
    dwarfs the F-score's τ = 0.01 and even identical meshes would score F ≈ 0.2. An empty
    shape gets the documented worst values (best when both are empty)."""
    if pred.empty or ref.empty:
        values = BEST if pred.empty and ref.empty else WORST
        return {k: values[k] for k in ("cd", "chamfer_l1", "normal_consistency", "f_score")}
    out = {"cd": chamfer(pred.surface, ref.surface)["cd"]}
    dense = chamfer(pred.dense, ref.dense)
    out.update({k: dense[k] for k in ("chamfer_l1", "normal_consistency", "f_score")})
    return out


def pair_metrics(pred: MeshSamples, ref: MeshSamples) -> dict[str, float]:
    """All five metrics between two meshes' samples: :func:`surface_pair_metrics` and the
    paper's volume IoU :func:`samples_volume_iou` as ``iou`` (raises
    :class:`VolumeSamplingError` when a mesh's volume samples could not be drawn)."""
    return {**surface_pair_metrics(pred, ref), "iou": samples_volume_iou(ref, pred)}


def surface_metrics(
    pred: trimesh.Trimesh,
    ref: trimesh.Trimesh | SurfaceSample,
    rng: np.random.Generator,
    n: int = N_POINTS,
    n_dense: int = N_DENSE,
) -> dict[str, float]:
    """:func:`surface_pair_metrics` between a predicted mesh and a reference (a mesh, or
    surface samples such as ``pointcloud.npz``'s points (M, 3) and normals (M, 3), subsampled
    without replacement), ``n`` and ``n_dense`` surface samples each drawn from ``rng``."""

    pred_samples = surface_samples(pred, rng, n, n_dense)
    if isinstance(ref, SurfaceSample):
        return surface_pair_metrics(pred_samples, point_file_samples(ref, rng, n, n_dense))
    return surface_pair_metrics(pred_samples, surface_samples(ref, rng, n, n_dense))


def compare_meshes(
    pred: trimesh.Trimesh,
    ref: trimesh.Trimesh,
    rng: np.random.Generator,
    n: int = N_POINTS,
    n_dense: int = N_DENSE,
) -> dict[str, float]:
    """All metrics between two meshes (pred plays the prediction for the F-score), each
    mesh sampled once from ``rng`` (:func:`sample_mesh`): :func:`pair_metrics`. Empty
    meshes get the documented worst/best values."""
    return pair_metrics(sample_mesh(pred, rng, n, n_dense), sample_mesh(ref, rng, n, n_dense))


def point_file_metrics(
    pred: MeshSamples, truth: MeshSamples, points: np.ndarray, occupancies: np.ndarray
) -> dict[str, float]:
    """A predicted mesh's samples against ground truth given as OccNet's point files (real
    ShapeNet has no mesh), as OccNet's evaluation does.

    truth: :func:`point_file_samples` of ``pointcloud.npz`` (an area-weighted surface sample
    of the normalised mesh, so the surface estimators are those against a mesh); points (N, 3)
    and occupancies (N,) bool: ``points.npz``'s uniform box points and ground-truth inside flags.

    - ``cd``, ``chamfer_l1``, ``normal_consistency``, ``f_score``: :func:`surface_pair_metrics`;
    - ``iou``: the paper's volume overlap by :func:`volume_overlap` over the N box points
      (the volume samples of both shapes are the box points inside them);
    - ``occnet_iou``: OccNet's :func:`occupancy_iou` over the same points.
    """
    occ = mesh_occupancy(pred.mesh, points)
    return {
        **surface_pair_metrics(pred, truth),
        "iou": volume_overlap(occ, occupancies),
        "occnet_iou": occupancy_iou(occ, occupancies),
    }


def compare_to_point_files(
    pred: trimesh.Trimesh,
    surface: SurfaceSample,
    points: np.ndarray,
    occupancies: np.ndarray,
    rng: np.random.Generator,
    n: int = N_POINTS,
    n_dense: int = N_DENSE,
) -> dict[str, float]:
    """:func:`point_file_metrics` of a predicted mesh (``n`` and ``n_dense`` surface samples
    from ``rng``) against ``surface`` (the point cloud's points (M, 3) and normals (M, 3),
    subsampled from ``rng``), points (N, 3) and occupancies (N,) bool."""
    pred_samples = surface_samples(pred, rng, n, n_dense)
    return point_file_metrics(pred_samples, point_file_samples(surface, rng, n, n_dense), points, occupancies)
