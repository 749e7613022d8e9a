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
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
import trimesh
from skimage import measure

from sdn.training import autocast

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


def occupancy_grids(
    fn: Callable[[list[np.ndarray]], list[np.ndarray]],
    n_fields: int,
    threshold: float = DEFAULT_THRESHOLD,
    resolution0: int = 32,
    upsampling_steps: int = 2,
    dense: bool = False,
) -> list[np.ndarray]:
    """Probabilities of ``n_fields`` occupancy fields on (R+1)^3 grids, R = resolution0 *
    2^upsampling_steps, over the box, refined together: ``fn`` maps one points array (N_b, 3)
    per field to its probabilities (N_b,), and is called once per refinement level (once in
    dense mode), so a batched decoder (:func:`network_occupancies`) makes one pass per level
    for every field. Field b's grid is the one :func:`occupancy_grid` gives for it alone."""
    if dense:
        n = resolution0 * 2**upsampling_steps + 1
        return [v.reshape(n, n, n) for v in fn([_grid_points(n)] * n_fields)]
    n = resolution0 + 1
    grids = [v.reshape(n, n, n) for v in fn([_grid_points(n)] * n_fields)]
    for _ in range(upsampling_steps):
        n_fine = 2 * (n - 1) + 1
        step = 2 * BOX_HALF / (n_fine - 1)
        fines, masks = [], []
        for values in grids:
            active = _active_cells(values, threshold)
            t = torch.from_numpy(values.astype(np.float32))[None, None]
            fines.append(
                F.interpolate(t, size=(n_fine,) * 3, mode="trilinear", align_corners=True)[0, 0].numpy()
            )
            # Fine points that are corners of (the children of) active coarse cells.
            cells = torch.from_numpy(active.astype(np.float32))
            cells = (
                cells.repeat_interleave(2, 0).repeat_interleave(2, 1).repeat_interleave(2, 2)
            )  # fine cells
            masks.append(F.max_pool3d(cells[None, None], 2, stride=1, padding=1)[0, 0].numpy() > 0)
        exact = fn([-BOX_HALF + np.argwhere(mask) * step for mask in masks])
        for fine, mask, values in zip(fines, masks, exact, strict=True):
            fine[mask] = values
        grids, n = fines, n_fine
    return grids


def occupancy_grid(
    fn: Callable[[np.ndarray], np.ndarray],
    threshold: float = DEFAULT_THRESHOLD,
    resolution0: int = 32,
    upsampling_steps: int = 2,
    dense: bool = False,
) -> np.ndarray:
    """Probabilities on a (R+1)^3 grid, R = resolution0 * 2^upsampling_steps, over the box,
    of one occupancy function ``fn``: points (N, 3) -> probabilities (N,)."""
    return occupancy_grids(
        lambda points: [fn(points[0])], 1, threshold, resolution0, upsampling_steps, dense
    )[0]  # fmt: skip


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


CHUNK_POINTS = 8192  # points per decoder call: 2.5x faster than 65,536 on a 2-core CPU (cache-sized)


def network_occupancies(
    model, codes: torch.Tensor, chunk_points: int = CHUNK_POINTS, precision: str = "fp32"
) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """The occupancy functions of an OccNet for B codes (B, c_dim), evaluated together: a list
    of B point arrays (N_b, 3) -> B probability arrays (N_b,) float32, so that
    :func:`occupancy_grids` makes one pass per refinement level for all of them.

    Each code's points are decoded in calls of ``chunk_points`` points with that code alone:
    mixing codes in one call changes the matrix shapes, and with them the last bits of the
    probabilities (measured ~1e-6), so a mesh would depend on which other meshes it was
    extracted with; this way it does not. Small calls are also where the speed is on a CPU
    (cache-sized matrices: 2.5x the points/s of 65,536-point calls; mixing 7 codes per call
    gained less, measured in benchmarks/perf/mesh_throughput.py). ``precision``: "fp32", or "bf16"
    autocast as the OccNet trains (~3.5x faster on CPUs with AMX-bf16; the logits then carry
    bf16's 8-bit mantissa)."""

    @torch.no_grad()
    def fn(points: list[np.ndarray]) -> list[np.ndarray]:
        if len(points) != len(codes):
            raise ValueError(f"expected {len(codes)} point arrays (one per code), got {len(points)}")
        probs = []
        for c, pts in zip(codes, points, strict=True):
            out = [np.zeros(0, np.float32)]
            for i in range(0, len(pts), chunk_points):
                p = torch.as_tensor(pts[i : i + chunk_points], dtype=torch.float32, device=codes.device)
                with autocast(codes.device, precision):
                    logits = model.decode(p[None], c[None])
                out.append(torch.sigmoid(logits.float())[0].cpu().numpy())
            probs.append(np.concatenate(out))
        return probs

    return fn


def network_occupancy(
    model, c: torch.Tensor, chunk_points: int = CHUNK_POINTS
) -> Callable[[np.ndarray], np.ndarray]:
    """The occupancy function of an OccNet for one code c (1, c_dim): points (N, 3) ->
    probabilities (N,)."""
    batched = network_occupancies(model, c, chunk_points)
    return lambda points: batched([points])[0]


@contextmanager
def eval_mode(model):
    """The model in eval mode within the block, its previous mode restored after."""
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


def encode_sets(model, image_sets, precision: str = "fp32") -> torch.Tensor:
    """Codes (B, c_dim) float32 of B view-sets, each (V_b, 3, H, W) in [0, 1] (V_b may differ:
    each set is encoded and pooled on its own), with the model in eval mode, in ``precision``
    (see :func:`network_occupancies`)."""
    device = next(model.parameters()).device
    with eval_mode(model), torch.no_grad(), autocast(device, precision):
        return torch.cat([model.encode(images[None].to(device)).float() for images in image_sets])


def extract_meshes(
    model,
    image_sets,
    threshold: float = DEFAULT_THRESHOLD,
    resolution0: int = 32,
    upsampling_steps: int = 2,
    dense: bool = False,
    precision: str = "fp32",
) -> list[tuple[trimesh.Trimesh, np.ndarray]]:
    """Meshes of B view-sets (a sequence of (V_b, 3, H, W) tensors in [0, 1]), their codes
    refined together, one pass per refinement level (:func:`occupancy_grids`), each mesh
    independent of the others (:func:`network_occupancies`): one
    (trimesh in the normalised frame, final probability grid (R+1,)*3) per set. The model is
    used in eval mode, in ``precision`` (:func:`network_occupancies`)."""
    codes = encode_sets(model, image_sets, precision)
    with eval_mode(model):
        fn = network_occupancies(model, codes, precision=precision)
        grids = occupancy_grids(fn, len(codes), threshold, resolution0, upsampling_steps, dense)
    return [(mesh_from_grid(grid, threshold), grid) for grid in grids]


def extract_mesh(
    model,
    images: torch.Tensor,
    threshold: float = DEFAULT_THRESHOLD,
    resolution0: int = 32,
    upsampling_steps: int = 2,
    dense: bool = False,
    precision: str = "fp32",
) -> trimesh.Trimesh:
    """Mesh of one view-set: images (V, 3, H, W) in [0, 1] -> trimesh (normalised frame).
    The model is used in eval mode, in ``precision`` (:func:`network_occupancies`)."""
    return extract_meshes(model, [images], threshold, resolution0, upsampling_steps, dense, precision)[0][0]
