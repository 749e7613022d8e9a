"""What ``make bench`` runs: build (or reuse) the default synthetic dataset, then the
ShapeNet benchmark with the committed reference checkpoints."""

from __future__ import annotations

from pathlib import Path

from sdn.data.preview import shapes_grid
from sdn.data.synthetic_shapes.generate import ShapesConfig, generate_shapes

from .report_index import write_combined_index
from .shapenet import ShapeNetBenchConfig, run_shapenet_benchmark

REFERENCE_SDN = Path("checkpoints/sdn-shapes-cpu32.pt")
REFERENCE_OCCNET = Path("checkpoints/occnet-shapes-cpu32.pt")
DEFAULT_MAX_OBJECTS = 13  # one test object per category (about 30 s of CPU per object per worker)


def run_bench(
    root: str, out: str, workers: int = 2, max_objects: int = DEFAULT_MAX_OBJECTS, echo=print
) -> None:
    """Generate or resume the default dataset (13 categories x 50 objects x 24 views, 64 px)
    under ``root``, write its preview, and score the reference checkpoints on it."""
    run = generate_shapes(root, ShapesConfig(), workers=workers)
    made, reused = run["objects_generated"], run["objects_skipped"]
    echo(f"dataset {root}: {made} objects generated, {reused} reused, {run['wall_s']:.1f} s")
    echo(f"preview: {shapes_grid(root, Path(out) / 'shapes-preview.png')}")
    missing = [p for p in (REFERENCE_SDN, REFERENCE_OCCNET) if not p.is_file()]
    if missing:
        echo(f"no reference checkpoint at {', '.join(map(str, missing))}: the ShapeNet benchmark is skipped")
        return
    cfg = ShapeNetBenchConfig(max_objects=max_objects, workers=workers)
    manifest = run_shapenet_benchmark(
        REFERENCE_SDN, REFERENCE_OCCNET, root, Path(out) / "shapes", cfg, command="make bench"
    )
    n, wall = manifest["data"]["objects"], manifest["wall_s"]
    echo(f"shapes report: {Path(out) / 'shapes' / 'tables.md'} ({n} objects, {wall:.0f} s)")
    echo(f"index: {write_combined_index(out)}")
