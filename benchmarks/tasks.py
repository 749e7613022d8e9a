"""``sdn-bench tasks shapenet|faces``: every request a benchmark will make of a set model,
written to a folder for a model outside this process (:mod:`benchmarks.models.folder`).

The requests come from the harnesses' own enumerations (:func:`benchmarks.shapenet.
reconstruction_requests`, :func:`benchmarks.shapenet.figure_requests` and
:func:`benchmarks.shapenet.section_requests`,
:func:`benchmarks.faces.faces_requests`) over the objects or identities the benchmark
selects with the same options, so the folder answers exactly what the benchmark asks.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from .faces import FacesBenchConfig, faces_requests, open_identities
from .models.folder import write_tasks
from .shapenet import (
    ShapeNetBenchConfig,
    figure_picks,
    figure_requests,
    object_key,
    open_split,
    reconstruction_requests,
    section_requests,
    selected_objects,
)


def shapenet_tasks(data, resolution: int, cfg: ShapeNetBenchConfig, out, cache_dir=None) -> dict:
    """The ShapeNet benchmark's requests at ``resolution`` px (the OccNet's) for the objects
    ``cfg`` selects, written to ``out`` (tasks.json and input PNGs); returns tasks.json."""
    cfg.validate()
    ds = open_split(data, cfg, resolution, cache_dir, progress=False)
    indices = selected_objects(ds, cfg)
    requests = []
    for i in indices:
        requests += reconstruction_requests(cfg, object_key(ds, i), ds[i]["images"]).values()
    requests += figure_requests(ds, figure_picks(indices), cfg, can_sample=True).values()
    if cfg.distribution:
        requests += section_requests(cfg, len(indices))
    header = {"benchmark": "shapenet", "resolution": resolution, "data": str(data), "split": cfg.split,
              "seed": cfg.seed, "config": asdict(cfg)}  # fmt: skip
    return write_tasks(requests, out, header)


def faces_tasks(data, resolution: int, cfg: FacesBenchConfig, out, cache_dir=None) -> dict:
    """The faces benchmark's requests at ``resolution`` px (the model's) for the identities
    ``cfg`` selects, written to ``out``; returns tasks.json."""
    cfg.validate()
    ds, picks = open_identities(data, cfg, resolution, cache_dir, progress=False)
    header = {"benchmark": "faces", "resolution": resolution, "data": str(Path(data)), "split": cfg.split,
              "seed": cfg.seed, "config": asdict(cfg)}  # fmt: skip
    return write_tasks(faces_requests(ds, picks, cfg, can_sample=True), out, header)
