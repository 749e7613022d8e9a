"""What ``make bench`` runs: build (or reuse) the default synthetic dataset, then the benchmarks."""

from __future__ import annotations

from pathlib import Path

from sdn.data.preview import shapes_grid
from sdn.data.synthetic_shapes.generate import ShapesConfig, generate_shapes


def run_bench(root: str, out: str, workers: int = 2, echo=print) -> None:
    """Generate or resume the default dataset (13 categories x 50 objects x 24 views, 64 px)
    under ``root`` and write its preview to ``out``/shapes-preview.png."""
    run = generate_shapes(root, ShapesConfig(), workers=workers)
    echo(
        f"dataset {root}: {run['objects_generated']} objects generated, "
        f"{run['objects_skipped']} reused, {run['wall_s']:.1f} s"
    )
    preview = shapes_grid(root, Path(out) / "shapes-preview.png")
    echo(f"preview: {preview}")
    echo(
        "The SDN training, the multi-view OccNet and the Table 1/Table 2 and Figure 8 "
        "benchmarks are added to this job by the issues that build them."
    )
