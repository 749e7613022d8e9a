"""`sdn-bench shapenet` sharded over torchrun ranks writes the same report as one process: the
same rows in the same order, floats equal up to the noise of another thread count (each
torchrun rank gets its share of the cores, so kernels reduce in another order, and a last-bit
change in an occupancy moves a marching-cubes vertex: measured up to 4e-5 relative here)."""

from __future__ import annotations

import json

import pandas as pd

from tests.torchrun_job import run_job

SCRIPT = """
import sys

from benchmarks import regression
from benchmarks.shapenet import run_shapenet_benchmark
cfg = regression.shapenet_config()
cfg.max_objects = 5
models, data = regression.FIXTURE_MODELS, regression.FIXTURE_DATA["shapes"]
run_shapenet_benchmark(
    models["sdn-shapes"], models["occnet"], data, sys.argv[1], cfg, cache_dir=sys.argv[2], progress=False
)
"""

RESULT_FILES = ("objects.csv", "table1a.csv", "table1b.csv", "table2.csv", "ground_truth.csv")


def _run(job, out, cache, world: int) -> None:
    """Run ``job`` in one process, or under torchrun with ``world`` gloo processes."""
    run_job(job, out, cache, world)


def test_sharded_report_equals_unsharded(tmp_path):
    job = tmp_path / "job.py"
    job.write_text(SCRIPT)
    one, two = tmp_path / "one", tmp_path / "two"
    _run(job, one, tmp_path / "cache1", 1)  # separate caches: both compute their real sides
    _run(job, two, tmp_path / "cache2", 2)
    for name in RESULT_FILES:  # same rows, same order; floats up to thread-count noise
        a, b = pd.read_csv(one / name), pd.read_csv(two / name)
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-3, atol=1e-6, obj=name)
    assert json.loads((two / "manifest.json").read_text())["machine"]["world_size"] == 2
