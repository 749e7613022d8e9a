"""Benchmark: mesh extraction (meshes/s), mesh-pair metrics (pairs/s) and where the ShapeNet
benchmark's time per object goes, on this machine.

    python -m benchmarks.perf.mesh_throughput --preset cpu-32 --meshes 4
    python -m benchmarks.perf.mesh_throughput --meshes 0 --pairs 0 --stage-objects 2

Extraction uses an OccNet of the given preset (random weights unless --occnet is given)
on a synthetic view; metrics compare pairs of analytic spheres. With ``--stage-objects N``
the script also scores N test objects of ``--data`` (spread over the split as the benchmark
spreads them) with :func:`benchmarks.shapenet.evaluate_object` in this process, with the
SDN ``--model`` and the OccNet ``--stage-occnet`` and the benchmark's default settings, and
prints a per-stage timing table. The stages are timed by wrapping, in this script only, the
functions that do them (:class:`StageTimer`); a stage's time is its own, excluding the stages
it calls (the containment tests inside volume sampling count as containment); ``other`` is
the rest of the wall time (data loading, grid refinement, the metric arithmetic).
Reported, never asserted.
"""

from __future__ import annotations

import functools
import os
import time
from collections import Counter
from collections.abc import Callable

import click
import numpy as np
import torch
import trimesh

import evaluation.geometry as geometry
import occnet_multiview.extract as extract
from benchmarks import shapenet, shapenet_real
from evaluation.geometry import compare_meshes
from occnet_multiview.config import occnet_preset
from occnet_multiview.extract import extract_mesh
from occnet_multiview.model import OccupancyNetwork


class StageTimer:
    """Wall time and call count per stage of functions wrapped by :meth:`patch`; a call's
    time is charged to its stage minus the time of the wrapped calls nested inside it."""

    def __init__(self) -> None:
        self.seconds: Counter = Counter()
        self.calls: Counter = Counter()
        self._nested: list[float] = []  # per open call: seconds spent in wrapped calls inside it
        self._undo: list[tuple[object, str, object]] = []

    def patch(self, owner: object, name: str, stage: str) -> None:
        """Replace ``owner.name`` (a module's function or an object's method) by a timed
        wrapper charging ``stage``; :meth:`restore` puts the originals back."""
        fn: Callable = getattr(owner, name)
        self._undo.append((owner, name, owner.__dict__.get(name)))

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            self._nested.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self.seconds[stage] += elapsed - self._nested.pop()
                self.calls[stage] += 1
                if self._nested:
                    self._nested[-1] += elapsed

        setattr(owner, name, timed)

    def restore(self) -> None:
        for owner, name, original in reversed(self._undo):
            if original is None:
                delattr(owner, name)  # an instance's method: the class's one shows again
            else:
                setattr(owner, name, original)
        self._undo.clear()

    def markdown(self, wall: float, n_objects: int) -> list[str]:
        """Rows of a Markdown table (stage, calls, total s, s per object, share of ``wall``),
        with ``other`` the wall time no stage accounts for."""
        rows = [*self.seconds.most_common(), ("other", wall - sum(self.seconds.values()))]
        lines = ["| stage | calls | total (s) | s per object | share |", "|---|---:|---:|---:|---:|"]
        for stage, sec in rows:
            calls = self.calls[stage] if stage in self.calls else ""
            lines.append(f"| {stage} | {calls} | {sec:.2f} | {sec / n_objects:.2f} | {sec / wall:.1%} |")
        lines.append(f"| total (wall) | | {wall:.2f} | {wall / n_objects:.2f} | 100% |")
        return lines


def stage_table(
    model_path: str, occnet_path: str, data: str, n_objects: int, threads: int | None = None, **config
) -> list[str]:
    """Score ``n_objects`` test objects of ``data`` as one benchmark worker with ``threads``
    threads (None: every core, as with ``--workers 1``; 1 is what each of 2 workers on 2 cores
    gets), nothing cached, and return the per-stage timing table (Markdown lines). ``config``:
    :class:`benchmarks.shapenet.ShapeNetBenchConfig` fields (e.g. ``precision="bf16"``)."""
    cfg = shapenet.ShapeNetBenchConfig(**config)
    loaded, occ = shapenet.load_models(model_path, occnet_path, data, cfg)
    set_model = loaded.model
    ds = shapenet.open_split(data, cfg, occ.resolution, None, progress=False)
    torch.set_num_threads(threads or os.cpu_count() or 1)
    shapenet._set_state(set_model, occ, ds, cfg, cache=None)  # nothing cached: every stage runs
    indices = [int(i) for i in np.linspace(0, len(ds) - 1, min(n_objects, len(ds))).round()]
    timer = StageTimer()
    timer.patch(set_model, "reconstruct", "set model reconstruct")
    timer.patch(occ, "encode", "OccNet encode")
    timer.patch(occ, "decode", "OccNet decode")
    timer.patch(extract, "mesh_from_grid", "marching cubes")
    timer.patch(geometry, "sample_surface", "surface sampling")
    timer.patch(geometry, "sample_volume", "volume sampling")
    timer.patch(geometry, "chamfer", "nearest neighbours (chamfer)")
    timer.patch(geometry, "mesh_occupancy", "containment (mesh_occupancy)")
    timer.patch(shapenet_real, "mesh_occupancy", "containment (mesh_occupancy)")
    start = time.perf_counter()
    try:
        for i in indices:
            shapenet.evaluate_object(i)
    finally:
        timer.restore()
    wall = time.perf_counter() - start
    keys = ", ".join(shapenet.object_key(ds, i) for i in indices)
    head = f"Stages of scoring {len(indices)} object(s) ({keys}), torch threads {torch.get_num_threads()}:"
    return [head, "", *timer.markdown(wall, len(indices))]


@click.command()
@click.option("--preset", default="cpu-32", show_default=True)
@click.option("--occnet", default=None, help="An OccNet checkpoint (default: random weights).")
@click.option("--meshes", default=4, show_default=True, type=int, help="0: no extraction rows.")
@click.option("--pairs", default=4, show_default=True, type=int, help="0: no metrics row.")
@click.option("--stage-objects", default=0, show_default=True, type=int, help="Objects of the stage table.")
@click.option("--model", default="checkpoints/sdn-shapes-cpu32.pt", show_default=True)
@click.option("--stage-occnet", default="checkpoints/occnet-shapes-cpu32.pt", show_default=True)
@click.option("--data", default="data/shapes-default", show_default=True)
@click.option(
    "--stage-threads", default=None, type=int, help="Threads of the stage table (default: all cores)."
)
@click.option("--stage-precision", default="fp32", show_default=True, type=click.Choice(["fp32", "bf16"]))
def main(
    preset, occnet, meshes, pairs, stage_objects, model, stage_occnet, data, stage_threads, stage_precision
):
    torch.manual_seed(0)
    if occnet:
        net = OccupancyNetwork.from_checkpoint(occnet)
    else:
        net = OccupancyNetwork(occnet_preset(preset)).eval()
    res = net.resolution
    images = torch.rand(16, 3, res, res)
    print(f"torch threads {torch.get_num_threads()}; OccNet {net.cfg.preset} at {res} px")
    print("| what | per item (s) | items/s |")
    print("|---|---:|---:|")
    for label, kw in (("hierarchical 32^3 -> 128^3", {}), ("dense 129^3", {"dense": True})):
        if meshes < 1:
            break
        start = time.perf_counter()
        for _ in range(meshes):
            extract_mesh(net, images, threshold=0.5, **kw)
        sec = (time.perf_counter() - start) / meshes
        print(f"| mesh extraction, {label} | {sec:.2f} | {1 / sec:.2f} |")
    if pairs > 0:
        a, b = trimesh.creation.icosphere(5, 0.4), trimesh.creation.icosphere(5, 0.35)
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for _ in range(pairs):
            compare_meshes(a, b, rng)
        sec = (time.perf_counter() - start) / pairs
        print(f"| metrics per mesh pair (all five) | {sec:.2f} | {1 / sec:.2f} |")
    if stage_objects > 0:
        print()
        table = stage_table(
            model, stage_occnet, data, stage_objects, stage_threads, precision=stage_precision
        )
        print("\n".join(table))


if __name__ == "__main__":
    main()
