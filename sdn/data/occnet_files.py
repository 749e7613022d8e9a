"""Readers for the per-object files of the Occupancy Networks ShapeNet layout (DESIGN.md §3.1).

Each reader names the file and what was expected when a file is missing or malformed.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Points:
    """``points`` (N, 3) float32 in the normalised frame, ``occupancies`` (N,) bool,
    ``loc`` (3,) and ``scale``: raw = points * scale + loc."""

    points: np.ndarray
    occupancies: np.ndarray
    loc: np.ndarray
    scale: float


@dataclass
class PointCloud:
    """Surface samples ``points`` (N, 3) and unit ``normals`` (N, 3), float32."""

    points: np.ndarray
    normals: np.ndarray
    loc: np.ndarray
    scale: float


@dataclass
class Cameras:
    """``K`` (V, 3, 3) pixel intrinsics and ``Rt`` (V, 3, 4) world-to-camera [R | t]."""

    K: np.ndarray
    Rt: np.ndarray


def _load(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an archive")
        with z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise ValueError(f"{path}: not a readable .npz archive ({e})") from e
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}; expected {list(keys)}, found {sorted(arrays)}")
    return arrays


def _loc_scale(path: Path, z: dict) -> tuple[np.ndarray, float]:
    loc = np.asarray(z.get("loc", np.zeros(3)), dtype=np.float32).reshape(-1)
    scale = float(np.asarray(z.get("scale", 1.0)).reshape(-1)[0])
    if loc.shape != (3,):
        raise ValueError(f"{path}: 'loc' must have 3 values, got shape {loc.shape}")
    return loc, scale


def read_points(path: str | Path) -> Points:
    """Read ``points.npz``: unpack the bit-packed occupancies and truncate them to N."""
    path = Path(path)
    z = _load(path, ("points", "occupancies"))
    pts = z["points"].astype(np.float32)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"{path}: 'points' must be (N, 3), got {pts.shape}")
    packed = z["occupancies"]
    if packed.dtype == np.uint8 and packed.size * 8 >= len(pts) and packed.size < len(pts):
        occ = np.unpackbits(packed)[: len(pts)].astype(bool)
    elif packed.size == len(pts):  # an unpacked boolean array, as some tools write
        occ = packed.astype(bool).reshape(-1)
    else:
        raise ValueError(
            f"{path}: 'occupancies' has {packed.size} entries ({packed.dtype}); expected "
            f"np.packbits of {len(pts)} flags ({(len(pts) + 7) // 8} bytes)"
        )
    loc, scale = _loc_scale(path, z)
    return Points(pts, occ, loc, scale)


def read_pointcloud(path: str | Path) -> PointCloud:
    """Read ``pointcloud.npz`` (surface points and normals)."""
    path = Path(path)
    z = _load(path, ("points", "normals"))
    pts, nrm = z["points"].astype(np.float32), z["normals"].astype(np.float32)
    if pts.shape != nrm.shape or pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(
            f"{path}: 'points' and 'normals' must both be (N, 3), got {pts.shape} and {nrm.shape}"
        )
    loc, scale = _loc_scale(path, z)
    return PointCloud(pts, nrm, loc, scale)


def read_cameras(path: str | Path) -> Cameras:
    """Read ``img_choy2016/cameras.npz``: ``camera_mat_i`` and ``world_mat_i`` for i = 0..V-1.

    ``world_mat_i`` may be stored as (3, 4) or (4, 4); it is returned as (3, 4).
    """
    path = Path(path)
    z = _load(path, ("camera_mat_0", "world_mat_0"))
    n = 0
    while f"camera_mat_{n}" in z and f"world_mat_{n}" in z:
        n += 1
    K = np.stack([z[f"camera_mat_{i}"].astype(np.float32) for i in range(n)])
    Rt = np.stack([z[f"world_mat_{i}"].astype(np.float32)[:3, :4] for i in range(n)])
    if K.shape[1:] != (3, 3) or Rt.shape[1:] != (3, 4):
        raise ValueError(
            f"{path}: expected 3x3 camera_mat_i and 3x4 world_mat_i, got {K.shape[1:]} and {Rt.shape[1:]}"
        )
    return Cameras(K, Rt)
