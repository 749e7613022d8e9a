"""Benchmark: mesh extraction (meshes/s) and mesh-pair metrics (pairs/s) on this machine.

    python -m benchmarks.mesh_throughput --preset cpu-32 --meshes 4

Extraction uses an OccNet of the given preset (random weights unless --occnet is given)
on a synthetic view; metrics compare pairs of ground-truth meshes from a dataset
(--data) or analytic spheres. Reported, never asserted.
"""

from __future__ import annotations

import time

import click
import numpy as np
import torch
import trimesh

from evaluation.geometry import compare_meshes
from occnet_multiview.config import occnet_preset
from occnet_multiview.extract import extract_mesh
from occnet_multiview.model import OccupancyNetwork


@click.command()
@click.option("--preset", default="cpu-32", show_default=True)
@click.option("--occnet", default=None, help="An OccNet checkpoint (default: random weights).")
@click.option("--meshes", default=4, show_default=True, type=int)
@click.option("--pairs", default=4, show_default=True, type=int)
def main(preset, occnet, meshes, pairs):
    torch.manual_seed(0)
    if occnet:
        model = OccupancyNetwork.from_checkpoint(occnet)
    else:
        model = OccupancyNetwork(occnet_preset(preset)).eval()
    res = model.resolution
    images = torch.rand(16, 3, res, res)
    print(f"torch threads {torch.get_num_threads()}; OccNet {model.cfg.preset} at {res} px")
    print("| what | per item (s) | items/s |")
    print("|---|---:|---:|")
    for label, kw in (("hierarchical 32^3 -> 128^3", {}), ("dense 129^3", {"dense": True})):
        start = time.perf_counter()
        for _ in range(meshes):
            extract_mesh(model, images, threshold=0.5, **kw)
        sec = (time.perf_counter() - start) / meshes
        print(f"| mesh extraction, {label} | {sec:.2f} | {1 / sec:.2f} |")
    a, b = trimesh.creation.icosphere(5, 0.4), trimesh.creation.icosphere(5, 0.35)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(pairs):
        compare_meshes(a, b, rng)
    sec = (time.perf_counter() - start) / pairs
    print(f"| metrics per mesh pair (all five) | {sec:.2f} | {1 / sec:.2f} |")


if __name__ == "__main__":
    main()
