"""Mesh extraction from an occupancy function: hierarchical refinement or a dense grid.

The occupancy function maps points (N, 3) in the normalised frame to probabilities
(N,). The grid spans the evaluation box [-0.55, 0.55]^3 (OccNet's, padding 0.1).

Hierarchical mode (as OccNet's MISE): evaluate a coarse grid of ``resolution0``
cells per side; then, ``upsampling_steps`` times, halve the cell size and evaluate
exactly only the points of cells whose corners straddle the threshold (plus a
one-cell margin); every other point takes the trilinear interpolation of the
coarser level. With resolution0 = 32 and two steps the effective grid is 128^3.
Features thinner than a coarse cell that no coarse corner detects can be missed,
as in MISE; the dense mode evaluates every point and is the reference.

Marching cubes (scikit-image) runs at the threshold on the final grid, padded with
an outside border so that the surface is closed. An empty prediction gives an empty
``trimesh.Trimesh`` (no faces), which the metrics score as documented.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
import trimesh
from skimage import measure

BOX_HALF = 0.55
DEFAULT_THRESHOLD = 0.2  # OccNet's default probability threshold


def _grid_points(n: int) -> np.ndarray:
    """(n^3, 3) points of an n-per-side grid over the box, ij-indexed."""
    axis = np.linspace(-BOX_HALF, BOX_HALF, n)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)


def _active_cells(values: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean (n-1)^3 mask of cells whose 8 corner values straddle the threshold,
    dilated by one cell."""
    above = values >= threshold
    corners = [
        above[i : i + above.shape[0] - 1, j : j + above.shape[1] - 1, k : k + above.shape[2] - 1]
        for i in (0, 1)
        for j in (0, 1)
        for k in (0, 1)
    ]
    any_above = np.logical_or.reduce(corners)
    all_above = np.logical_and.reduce(corners)
    active = any_above & ~all_above
    # Dilate by one cell (3x3x3 max filter) so that a surface entering a neighbour is kept.
    t = torch.from_numpy(active.astype(np.float32))[None, None]
    return F.max_pool3d(t, 3, stride=1, padding=1)[0, 0].numpy() > 0


def occupancy_grid(
    fn: Callable[[np.ndarray], np.ndarray],
    threshold: float = DEFAULT_THRESHOLD,
    resolution0: int = 32,
    upsampling_steps: int = 2,
    dense: bool = False,
) -> np.ndarray:
    """Probabilities on a (R+1)^3 grid, R = resolution0 * 2^upsampling_steps, over the box."""
    if dense:
        n = resolution0 * 2**upsampling_steps + 1
        return fn(_grid_points(n)).reshape(n, n, n)
    n = resolution0 + 1
    values = fn(_grid_points(n)).reshape(n, n, n)
    for _ in range(upsampling_steps):
        active = _active_cells(values, threshold)
        n_fine = 2 * (n - 1) + 1
        t = torch.from_numpy(values.astype(np.float32))[None, None]
        fine = F.interpolate(t, size=(n_fine,) * 3, mode="trilinear", align_corners=True)[0, 0].numpy()
        # Fine points that are corners of (the children of) active coarse cells.
        cells = torch.from_numpy(active.astype(np.float32))
        cells = cells.repeat_interleave(2, 0).repeat_interleave(2, 1).repeat_interleave(2, 2)  # fine cells
        mask = F.max_pool3d(cells[None, None], 2, stride=1, padding=1)[0, 0].numpy() > 0  # their corners
        idx = np.argwhere(mask)
        if len(idx):
            step = 2 * BOX_HALF / (n_fine - 1)
            fine[mask] = fn(-BOX_HALF + idx * step)
        values, n = fine, n_fine
    return values


def mesh_from_grid(values: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> trimesh.Trimesh:
    """Marching cubes at ``threshold`` on a grid over the box; empty mesh when nothing is
    above (or everything is above) the threshold."""
    if values.max() < threshold or values.min() >= threshold:
        return trimesh.Trimesh()
    padded = np.pad(values, 1, mode="constant", constant_values=0.0)  # outside border: closed surface
    n = values.shape[0]
    step = 2 * BOX_HALF / (n - 1)
    verts, faces, _, _ = measure.marching_cubes(padded, level=threshold, spacing=(step, step, step))
    verts = verts - BOX_HALF - step  # undo the padding offset
    mesh = trimesh.Trimesh(verts, faces, process=False)
    if mesh.volume < 0:
        mesh.invert()
    return mesh


def network_occupancy(
    model, c: torch.Tensor, batch_points: int = 65536
) -> Callable[[np.ndarray], np.ndarray]:
    """The occupancy function of an OccNet for one code c (1, c_dim): points -> probabilities."""

    @torch.no_grad()
    def fn(points: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(points), batch_points):
            p = torch.as_tensor(points[i : i + batch_points], dtype=torch.float32, device=c.device)[None]
            out.append(torch.sigmoid(model.decode(p, c)).float()[0].cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    return fn


def extract_mesh(
    model,
    images: torch.Tensor,
    threshold: float = DEFAULT_THRESHOLD,
    resolution0: int = 32,
    upsampling_steps: int = 2,
    dense: bool = False,
) -> trimesh.Trimesh:
    """Mesh of one view-set: images (V, 3, H, W) in [0, 1] -> trimesh (normalised frame).
    The model is used in eval mode."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            c = model.encode(images[None].to(next(model.parameters()).device))
        grid = occupancy_grid(network_occupancy(model, c), threshold, resolution0, upsampling_steps, dense)
    finally:
        model.train(was)
    return mesh_from_grid(grid, threshold)
