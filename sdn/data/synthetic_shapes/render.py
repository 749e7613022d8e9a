"""Cameras in OccNet's conventions and a ray-cast Lambertian renderer.

Camera conventions (what ``cameras.npz`` holds, for every view i):

- ``world_mat_i`` (3, 4) float32 = [R | t], world-to-camera: a point X in the
  *normalised* object frame (the frame of ``points.npz``) has camera coordinates
  ``x_cam = R @ X + t``. The camera frame is OpenCV's: x right, y down, z forward
  (into the scene), so visible points have ``x_cam[2] > 0``.
- ``camera_mat_i`` (3, 3) float32 = K, pixel intrinsics:
  ``[u, v, 1]^T ~ K @ x_cam`` with u to the right and v down, in pixels of the
  stored image, the centre of pixel (col j, row i) at (j + 0.5, i + 0.5);
  ``K = [[f, 0, W/2], [0, f, H/2], [0, 0, 1]]``, ``f = (W/2) / tan(fov/2)``.
- Also stored: ``azimuth_deg``, ``elevation_deg``, ``distance`` (V,) float32.

Viewpoints follow the Choy et al. (3D-R2N2) renders used by OccNet: azimuth
uniform in [0, 360), elevation uniform in [25, 30] degrees, a 25 degree field of
view, looking at the origin with y up. The distance is chosen per object so that
its bounding sphere fits the frame (times a random factor in [1.0, 1.15]).

Shading: Lambertian with an ambient term, a key light above-left of the camera
and a weaker fill light, on a white background; antialiased by averaging
``supersample`` x ``supersample`` rays per pixel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import trimesh
from trimesh.ray.ray_pyembree import RayMeshIntersector

from .geometry import NormalisedSolid

FOV_DEG = 25.0
ELEVATION_DEG = (25.0, 30.0)
AMBIENT, KEY, FILL = 0.32, 0.62, 0.22
KEY_DIR_CAM = np.array([-0.45, -0.65, -0.6])  # towards the key light, camera frame
FILL_DIR_CAM = np.array([0.7, 0.2, -0.6])


@dataclass
class Camera:
    K: np.ndarray  # (3, 3) pixel intrinsics
    Rt: np.ndarray  # (3, 4) world-to-camera
    azimuth_deg: float
    elevation_deg: float
    distance: float

    @property
    def center(self) -> np.ndarray:
        """Camera centre (3,) in the world frame: -R^T t."""
        return -self.Rt[:, :3].T @ self.Rt[:, 3]


def look_at(center: np.ndarray) -> np.ndarray:
    """World-to-camera [R | t] (3, 4) for a camera at ``center`` looking at the origin, y up."""
    f = -center / np.linalg.norm(center)
    right = np.cross(f, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(f, right)
    R = np.stack([right, down, f])
    return np.concatenate([R, (-R @ center)[:, None]], axis=1)


def intrinsics(resolution: int, fov_deg: float = FOV_DEG) -> np.ndarray:
    f = (resolution / 2) / np.tan(np.radians(fov_deg) / 2)
    return np.array([[f, 0, resolution / 2], [0, f, resolution / 2], [0, 0, 1.0]])


def sample_cameras(rng: np.random.Generator, n_views: int, resolution: int, radius: float) -> list[Camera]:
    """``n_views`` Choy-style cameras for an object whose bounding sphere has ``radius``."""
    K = intrinsics(resolution)
    fit = radius / np.sin(np.radians(FOV_DEG) / 2)
    cams = []
    for _ in range(n_views):
        az = float(rng.uniform(0.0, 360.0))
        el = float(rng.uniform(*ELEVATION_DEG))
        dist = float(fit * rng.uniform(1.0, 1.15))
        a, e = np.radians(az), np.radians(el)
        center = dist * np.array([np.cos(e) * np.sin(a), np.sin(e), np.cos(e) * np.cos(a)])
        cams.append(Camera(K=K, Rt=look_at(center), azimuth_deg=az, elevation_deg=el, distance=dist))
    return cams


def project(cam: Camera, points: np.ndarray) -> np.ndarray:
    """Pixel coordinates (N, 2) (u right, v down) of world points (N, 3)."""
    x = points @ cam.Rt[:, :3].T + cam.Rt[:, 3]
    uvw = x @ cam.K.T
    return uvw[:, :2] / uvw[:, 2:3]


def render_mesh(
    mesh: trimesh.Trimesh,
    cams: list[Camera],
    resolution: int,
    supersample: int = 3,
    albedo: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Render views (V, H, W, 3) uint8 of a mesh (normalised frame) on white.

    albedo: maps hit points (N, 3) to colours (N, 3) in [0, 1]; default a light grey.
    An empty mesh renders as blank white images.
    """
    s = supersample
    n = resolution * s
    if len(mesh.faces) == 0:
        return np.full((len(cams), resolution, resolution, 3), 255, np.uint8)
    intersector = RayMeshIntersector(mesh)
    vertex_normals = mesh.vertex_normals
    # Sub-pixel sample positions in pixel units, (n*n, 2) ordered row-major.
    coords = (np.arange(n) + 0.5) / s
    u, v = np.meshgrid(coords, coords, indexing="xy")
    pix = np.stack([u.ravel(), v.ravel(), np.ones(n * n)], axis=1)
    images = []
    for cam in cams:
        R = cam.Rt[:, :3]
        dirs_cam = pix @ np.linalg.inv(cam.K).T
        dirs = dirs_cam @ R  # row-vector form of R^T d
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        origins = np.broadcast_to(cam.center, dirs.shape)
        locs, ray_idx, tri_idx = intersector.intersects_location(origins, dirs, multiple_hits=False)
        img = np.ones((n * n, 3))
        if len(ray_idx):
            # Smooth shading: vertex normals interpolated with barycentric weights (N, 3).
            bary = trimesh.triangles.points_to_barycentric(mesh.triangles[tri_idx], locs)
            normals = np.einsum("nk,nkj->nj", bary, vertex_normals[mesh.faces[tri_idx]])
            normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
            facing = np.einsum("ij,ij->i", normals, dirs[ray_idx]) > 0
            normals[facing] *= -1
            colour = albedo(locs) if albedo is not None else np.full((len(locs), 3), 0.75)
            key = R.T @ (KEY_DIR_CAM / np.linalg.norm(KEY_DIR_CAM))
            fill = R.T @ (FILL_DIR_CAM / np.linalg.norm(FILL_DIR_CAM))
            light = AMBIENT + KEY * np.clip(normals @ key, 0, None) + FILL * np.clip(normals @ fill, 0, None)
            img[ray_idx] = np.clip(colour * light[:, None], 0.0, 1.0)
        # Box-filter the s x s sub-samples of each pixel: (H, s, W, s, 3) -> (H, W, 3).
        img = img.reshape(resolution, s, resolution, s, 3).mean(axis=(1, 3))
        images.append(np.round(img * 255).astype(np.uint8))
    return np.stack(images)


def render(
    ns: NormalisedSolid,
    cams: list[Camera],
    palette: np.ndarray,
    resolution: int,
    supersample: int = 3,
) -> np.ndarray:
    """Render views (V, H, W, 3) uint8 of a normalised solid, each part in its colour.

    palette: (M, 3) float in [0, 1], the albedo of each material index.
    """

    def albedo(locs: np.ndarray) -> np.ndarray:
        material = ns.solid.eval(ns.to_raw(locs))[1].astype(int)
        return palette[np.clip(material, 0, len(palette) - 1)]

    return render_mesh(ns.mesh, cams, resolution, supersample, albedo)
