"""From a signed-distance solid to OccNet-normalised geometry: mesh, occupancies, surface samples.

Normalisation follows Occupancy Networks: with the mesh's axis-aligned bounding
box [lo, hi], ``loc = (lo + hi) / 2`` and ``scale = max(hi - lo)``; a raw point x
maps to ``(x - loc) / scale``, so the bounding box is centred and its longest
edge is 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from skimage import measure

from .sdf import Node

RAW_BOUND = 3.0  # every family's raw geometry lies inside [-RAW_BOUND, RAW_BOUND]^3
COARSE_CELLS = 48


@dataclass
class NormalisedSolid:
    """A solid with its normalisation; ``mesh`` is in the normalised frame."""

    solid: Node
    loc: np.ndarray  # (3,)
    scale: float
    mesh: trimesh.Trimesh

    def to_raw(self, p: np.ndarray) -> np.ndarray:
        """Normalised points (N, 3) -> raw solid coordinates (N, 3) float32."""
        return (np.asarray(p, np.float32) * self.scale + self.loc).astype(np.float32)

    def occupancy(self, p: np.ndarray) -> np.ndarray:
        """Inside flags (N,) bool of normalised points p (N, 3), from the analytic SDF sign."""
        return self.solid.sdf(self.to_raw(p)) < 0.0


def _grid(lo: np.ndarray, step: float, shape) -> np.ndarray:
    """Grid points (X*Y*Z, 3) float32 of a regular grid, ij-indexed, starting at lo."""
    axes = [lo[i] + step * np.arange(shape[i], dtype=np.float64) for i in range(3)]
    g = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    return g.reshape(-1, 3).astype(np.float32)


def _sdf_chunked(solid: Node, pts: np.ndarray, chunk: int = 262144) -> np.ndarray:
    return np.concatenate([solid.sdf(pts[i : i + chunk]) for i in range(0, len(pts), chunk)])


def _narrow_band_volume(solid: Node, lo: np.ndarray, step: float, shape, stride: int = 4) -> np.ndarray:
    """SDF samples (X, Y, Z) on a regular grid, exact only near the surface.

    The grid is first sampled every ``stride`` points; each fine point takes the value
    of its block's corner sample, and is evaluated exactly only where that value is
    within the block diagonal plus a margin of the surface (|d| < 2 * stride * step).
    Elsewhere the copied value has the right sign (the SDF changes by at most the
    distance moved), which is all marching cubes needs away from the zero level.
    """
    shape = tuple(int(v) for v in shape)
    sub_shape = tuple((n + stride - 1) // stride for n in shape)
    sub = _sdf_chunked(solid, _grid(lo, step * stride, sub_shape)).reshape(sub_shape)
    vol = sub
    for axis in range(3):  # nearest-corner upsampling, then crop: (X, Y, Z)
        vol = np.repeat(vol, stride, axis=axis)
    vol = np.ascontiguousarray(vol[: shape[0], : shape[1], : shape[2]])
    near = np.abs(vol) < 2 * stride * step
    idx = np.argwhere(near)
    vol[near] = _sdf_chunked(solid, (lo + idx * step).astype(np.float32))
    return vol


def normalise(solid: Node, cells: int = 128) -> NormalisedSolid:
    """Mesh ``solid`` by marching cubes and normalise it.

    A coarse pass over the raw bound finds a conservative bounding box (grid points
    whose SDF is below a cell's half diagonal); the fine pass samples that box with
    ``cells + 8`` cells along its longest edge, so the final mesh has at least
    ``cells`` cells across the normalised unit edge (cell size <= 1/cells).
    Raises ValueError if the solid is empty or leaves the raw bound.
    """
    step = 2 * RAW_BOUND / COARSE_CELLS
    n = COARSE_CELLS + 1
    lo = np.full(3, -RAW_BOUND)
    coarse = _sdf_chunked(solid, _grid(lo, step, (n, n, n))).reshape(n, n, n)
    near = np.argwhere(coarse < step * 0.9)
    if len(near) == 0:
        raise ValueError("solid is empty: no grid point is inside or near its surface")
    if near.min() == 0 or near.max() == n - 1:
        raise ValueError(f"solid leaves the raw bound [-{RAW_BOUND}, {RAW_BOUND}]^3")
    box_lo = lo + (near.min(axis=0) - 1) * step
    box_hi = lo + (near.max(axis=0) + 1) * step
    fine = float((box_hi - box_lo).max()) / (cells + 8)
    shape = np.ceil((box_hi - box_lo) / fine).astype(int) + 1
    vol = _narrow_band_volume(solid, box_lo, fine, shape)
    # Exact zeros on grid points make marching cubes emit degenerate, duplicated faces
    # (non-manifold edges); count a point on the surface as outside, like occupancy does.
    vol[vol == 0.0] = np.float32(1e-6 * fine)
    if vol.min() >= 0:
        raise ValueError("solid has no interior at the fine grid resolution")
    verts, faces, _, _ = measure.marching_cubes(vol, level=0.0, spacing=(fine, fine, fine))
    verts = verts + box_lo
    # No vertex merging: skimage already shares vertices between faces, and merging by
    # position would glue distinct sheets that pass within rounding distance.
    mesh = trimesh.Trimesh(verts, faces, process=False)
    if mesh.volume < 0:
        mesh.invert()
    vlo, vhi = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    loc = (vlo + vhi) / 2
    scale = float((vhi - vlo).max())
    mesh.apply_translation(-loc)
    mesh.apply_scale(1.0 / scale)
    return NormalisedSolid(solid=solid, loc=loc.astype(np.float32), scale=scale, mesh=mesh)


def uniform_points(
    ns: NormalisedSolid, count: int, rng: np.random.Generator, padding: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """OccNet's uniform points: (count, 3) float16 in [-(1+padding)/2, (1+padding)/2]^3 and
    their occupancies (count,) bool, computed on the float16-rounded points."""
    half = (1.0 + padding) / 2
    pts = rng.uniform(-half, half, size=(count, 3)).astype(np.float16)
    return pts, ns.occupancy(pts.astype(np.float32))


def surface_points(
    ns: NormalisedSolid, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Area-weighted samples on the normalised mesh: points (count, 3) and unit face
    normals (count, 3), both float16."""
    pts, face_idx = trimesh.sample.sample_surface(ns.mesh, count, seed=rng)
    normals = ns.mesh.face_normals[face_idx]
    return pts.astype(np.float16), normals.astype(np.float16)
