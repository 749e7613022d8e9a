"""Benchmark: synthetic-shapes generation throughput (objects/minute) on this machine.

    python -m benchmarks.perf.data_throughput --objects-per-category 4 --workers 1,2

Generates into a temporary folder for each worker count and prints a Markdown table
(objects/min, seconds per object, MB on disk per object). Timings are reported,
never asserted.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import click

from sdn.data.synthetic_shapes.generate import ShapesConfig, generate_shapes


def _du_mb(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20


def measure(objects_per_category: int, workers: int, resolution: int, views: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="sdn-shapes-bench-"))
    try:
        cfg = ShapesConfig(objects_per_category=objects_per_category, resolution=resolution, views=views)
        start = time.perf_counter()
        run = generate_shapes(tmp, cfg, workers=workers, progress=False)
        wall = time.perf_counter() - start
        n = run["objects_generated"]
        return {
            "workers": workers,
            "objects": n,
            "wall_s": wall,
            "objects_per_min": n / wall * 60,
            "mb_per_object": _du_mb(tmp) / n,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@click.command()
@click.option("--objects-per-category", default=4, show_default=True, type=int)
@click.option("--workers", default="1,2", show_default=True, help="Comma-separated worker counts.")
@click.option("--resolution", default=64, show_default=True, type=int)
@click.option("--views", default=24, show_default=True, type=int)
def main(objects_per_category, workers, resolution, views):
    print(f"machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    print("| workers | objects | wall (s) | objects/min | MB/object |")
    print("|---:|---:|---:|---:|---:|")
    for w in (int(v) for v in workers.split(",")):
        r = measure(objects_per_category, w, resolution, views)
        print(
            f"| {r['workers']} | {r['objects']} | {r['wall_s']:.1f} | "
            f"{r['objects_per_min']:.1f} | {r['mb_per_object']:.2f} |"
        )


if __name__ == "__main__":
    main()
