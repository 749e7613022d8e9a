"""The CI regression job: both benchmarks on tiny, fixed-seed data and models, compared
with the committed baseline reports under ``benchmarks/baselines/``.

What it runs (all fixed here, so two runs of one commit give the same reports):

1. a tiny synthetic mini-ShapeNet (3 categories x 10 objects, 16 views, 32 px, 30k points) and a tiny
   synthetic VGGFace2 (24 identities x 12 images, 32 px, half of them test);
2. tiny models trained from scratch for a fixed number of steps in float32 on one
   thread: an SDN per dataset (preset ``tiny-16``), the OccNet (preset ``tiny``) and
   the verifier (preset ``tiny``);
3. ``sdn-bench shapenet`` and ``sdn-bench faces`` on the test splits;
4. ``sdn-bench compare`` of each report with its baseline, with the tolerances in
   ``benchmarks/baselines/tolerances.yaml``.

Because training is part of the job, a change to a trainer, a model, a loss, a data
generator, a loader, the mesh pipeline or a metric moves the numbers; the comparison
fails (exit 1) only when a metric moves the wrong way by more than its tolerance with
disjoint confidence intervals, and exits 2 when the reports cannot be compared (for
example a changed dataset fingerprint).

Refreshing the baseline on purpose (after a change that is meant to move the numbers):
``sdn-bench regress --refresh-baseline`` (or ``make regress-refresh``) reruns the job
and copies its reports over ``benchmarks/baselines/{shapes,faces}``; commit them with a
note saying why they moved.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch

from evaluation.verifier import verifier_preset
from evaluation.verifier_trainer import train_verifier
from occnet_multiview.config import occnet_preset
from occnet_multiview.trainer import train_occnet
from sdn.config import apply_overrides, preset
from sdn.data.synthetic_faces.generate import FacesConfig, generate_faces
from sdn.data.synthetic_shapes.generate import ShapesConfig, generate_shapes
from sdn.trainer import train_sdn

from .compare import compare_main
from .faces import FacesBenchConfig, run_faces_benchmark
from .shapenet import ShapeNetBenchConfig, run_shapenet_benchmark

BASELINES = Path(__file__).parent / "baselines"
TOLERANCES = BASELINES / "tolerances.yaml"
SHAPES = ShapesConfig(
    categories=["02691156", "02958343", "03001627"], objects_per_category=10, views=16, resolution=32,
    seed=11, n_points=30_000, n_surface=30_000, mesh_cells=64,
)  # fmt: skip
FACES = FacesConfig(identities=24, images_per_identity=12, resolution=32, test_fraction=0.5, seed=11)
SDN_OVERRIDES = ["train.steps=150", "train.set_size=4", "train.precision=fp32", "train.eval_sets=4"]
OCCNET_OVERRIDES = [  # lr 1e-3 and 1024 points: the tiny OccNet then depends on its input views
    "train.steps=400", "train.batch_objects=8", "train.points_per_object=1024", "train.lr=1e-3",
    "train.precision=fp32", "train.eval_every=100", "train.val_objects=0",
]  # fmt: skip
VERIFIER_OVERRIDES = ["train.steps=150", "train.precision=fp32"]


def shapenet_config() -> ShapeNetBenchConfig:
    return ShapeNetBenchConfig(
        real_views=8, recon_views=(1, 4, 8), input_views=(1, 4, 8), table2_views=(1, 4, 8), bootstrap=200,
        dense_points=20_000, resolution0=16, upsampling_steps=1,
    )  # fmt: skip


def faces_config() -> FacesBenchConfig:
    return FacesBenchConfig(set_size=4, context_sizes=(1, 4, 8), noise_levels=(0.0, 0.25, 0.5), bootstrap=200)


def run_reports(work: Path, echo=print) -> dict[str, Path]:
    """Generate the tiny data, train the tiny models and write both reports under
    ``work``; returns {"shapes": report folder, "faces": report folder}."""
    work = Path(work)
    if work.exists():
        shutil.rmtree(work)  # every run starts from nothing: no resumed models or stale reports
    torch.set_num_threads(1)  # float32 on one thread: the same numbers on every run
    cache, t0 = work / "cache", time.time()
    shapes, faces = work / "data" / "shapes", work / "data" / "faces"
    generate_shapes(shapes, SHAPES, workers=1, progress=False)
    generate_faces(faces, FACES, workers=1, progress=False)
    echo(f"[regress] data: {time.time() - t0:.0f} s")
    models = work / "models"
    for name, root, dataset in (("sdn-shapes", shapes, "shapes"), ("sdn-faces", faces, "faces")):
        cfg = apply_overrides(preset("tiny-16", dataset), SDN_OVERRIDES)
        train_sdn(root, cfg, models / name, dataset=dataset, progress=False, cache_dir=cache)
    train_occnet(shapes, apply_overrides(occnet_preset("tiny"), OCCNET_OVERRIDES), models / "occnet",
                 progress=False, cache_dir=cache)  # fmt: skip
    train_verifier(faces, apply_overrides(verifier_preset("tiny"), VERIFIER_OVERRIDES), models / "verifier",
                   progress=False, cache_dir=cache)  # fmt: skip
    echo(f"[regress] data and training: {time.time() - t0:.0f} s")
    reports = {"shapes": work / "reports" / "shapes", "faces": work / "reports" / "faces"}
    run_shapenet_benchmark(
        models / "sdn-shapes" / "checkpoint.pt", models / "occnet" / "best.pt", shapes, reports["shapes"],
        shapenet_config(), cache_dir=cache, progress=False, command="sdn-bench regress",
    )  # fmt: skip
    run_faces_benchmark(
        models / "sdn-faces" / "checkpoint.pt", faces, reports["faces"], faces_config(),
        embedder=str(models / "verifier" / "best.pt"), cache_dir=cache, progress=False,
        command="sdn-bench regress",
    )  # fmt: skip
    echo(f"[regress] reports: {time.time() - t0:.0f} s")
    return reports


def run_regression(work, refresh_baseline: bool = False, echo=print) -> int:
    """Run the job and compare with the baselines: 0 nothing regressed, 1 a metric
    regressed, 2 not comparable. With ``refresh_baseline`` the new reports replace the
    baselines instead (returns 0)."""
    reports = run_reports(work, echo)
    if refresh_baseline:
        for name, folder in reports.items():
            target = BASELINES / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(folder, target)
            echo(f"[regress] baseline {target} refreshed: commit it with the reason")
        return 0
    codes = []
    for name, folder in reports.items():
        echo(f"[regress] {name}: compare with {BASELINES / name}")
        codes.append(compare_main(folder, BASELINES / name, TOLERANCES, Path(work) / "compare" / name))
    return max(codes)
