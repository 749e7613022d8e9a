"""`sdn-bench faces` sharded over torchrun ranks writes the same report as one process.

Both runs do the very same computations, so the reports must be equal exactly: chunk 1 (one
set per forward pass: no result depends on which sets share one), the one-process run given
a rank's thread count (LOCAL_WORLD_SIZE=2, :func:`benchmarks.sharding.threads_per_rank`),
and replacement batches of 16 so that both ranks embed label-noise replacements. Otherwise
float noise separates them, and it reorders near-tied pair scores, which moves ROC points:
measured on this data, chunk 5 moved pair scores (curves.csv ``threshold``) by up to 2.6e-7;
two threads against one, at chunk 1, made the ``recon`` curve at context 8 2 points shorter,
its AUC 4.8e-6 and its interval's upper bound 2.8e-5 apart.
"""

from __future__ import annotations

import json

import pandas as pd

from tests.torchrun_job import run_job

SCRIPT = """
import sys

from benchmarks import faces, regression

load_embedder = faces.load_embedder


def batches_of_16(*args):
    embedder = load_embedder(*args)
    embedder.batch_size = 16  # the 35 replacements drawn: batches 0 and 2 on rank 0, 1 on rank 1
    return embedder


faces.load_embedder = batches_of_16
cfg = regression.faces_config()
cfg.max_identities = 24
models, data = regression.FIXTURE_MODELS, regression.FIXTURE_DATA["faces"]
faces.run_faces_benchmark(
    models["sdn-faces"], data, sys.argv[1], cfg, embedder=str(models["verifier"]), cache_dir=sys.argv[2],
    progress=False, chunk=1,
)
"""

RESULT_FILES = ("curves.csv", "summary.csv", "equivalent_noise.csv")


def _run(job, out, cache, world: int) -> None:
    """Run ``job`` in one process with the thread count of a rank of 2, or under torchrun
    with ``world`` gloo processes."""
    run_job(job, out, cache, world, {"LOCAL_WORLD_SIZE": "2"})


def test_sharded_report_equals_unsharded(tmp_path):
    job = tmp_path / "job.py"
    job.write_text(SCRIPT)
    one, two = tmp_path / "one", tmp_path / "two"
    _run(job, one, tmp_path / "cache", 1)
    _run(job, two, tmp_path / "cache", 2)
    for name in RESULT_FILES:  # the same rows in the same order, the same floats
        a, b = pd.read_csv(one / name), pd.read_csv(two / name)
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=name)
    lines = [(p / "summary.md").read_text().split("\n")[3:] for p in (one, two)]  # after the header
    assert lines[0] == lines[1]
    manifests = [json.loads((p / "manifest.json").read_text()) for p in (one, two)]
    assert [m["machine"]["world_size"] for m in manifests] == [1, 2]
    assert manifests[0]["data"]["subset_sha256"] == manifests[1]["data"]["subset_sha256"]
