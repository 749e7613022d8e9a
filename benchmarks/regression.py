"""The CI regression job: both benchmarks score committed tiny models on committed tiny
data, and each report is compared with its committed baseline under ``benchmarks/baselines/``.

Why nothing is trained here. The first version of this job trained its tiny models from
scratch on every run. Training is chaotic: a last-bit difference in a floating-point
kernel (another CPU's oneDNN ISA, another thread count) grows into different models, and
the job failed on a fresh clone on another machine of the same kind with unchanged code
(36 shape metrics "regressed"). Scoring fixed weights on fixed data is not chaotic: a
kernel difference moves a score by float noise, far inside any tolerance. So:

- ``benchmarks/baselines/fixtures/data/{shapes,faces}``: the test splits of a tiny
  synthetic mini-ShapeNet (3 categories x 20 objects, 16 views, 32 px: 4 test objects per
  category) and a tiny synthetic VGGFace2 (192 identities x 12 images, 32 px, 96 of them
  test), in the real on-disk layouts;
- ``benchmarks/baselines/fixtures/models``: fp32 weights of the tiny models trained on the
  train splits of the same data (an SDN per dataset, preset ``tiny-16``; the OccNet,
  preset ``tiny``; the verifier, preset ``tiny``), with ``fixtures.json`` saying how.

The trainers are tested by their properties in ``tests/`` (resume equals uninterrupted, a
tiny overfit, gradient routing), not by this job.

What fails the job (``compare --aggregate-only`` with ``tolerances.yaml``): an aggregate
row (Table 1/2 "mean of categories", every faces curve) whose mean moves the wrong way by
more than its tolerance with disjoint 95% intervals that exist (>= 3 members per stratum);
exit 2 when the reports cannot be compared (data fingerprint, evaluated subset, defining
settings, format). ``tests/test_regression_job.py`` checks that the job passes on unchanged
code under another oneDNN ISA and thread count (the proxy for another machine) and fails
on a deliberate regression (greyscale reconstructions; a broken metric).

Rebuilding on purpose (a change to a generator, a trainer or a model's architecture that
the fixtures must follow): ``sdn-bench regress --rebuild-fixtures`` regenerates the data,
retrains the models and rewrites the fixtures; ``sdn-bench regress --refresh-baseline``
(``make regress-refresh``) rewrites the baselines from the current code. Commit either
with a note saying why.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch

from sdn.checkpoint import export_checkpoint
from sdn.io import atomic_write_json

from .compare import compare_main
from .faces import FacesBenchConfig, run_faces_benchmark
from .shapenet import ShapeNetBenchConfig, run_shapenet_benchmark

BASELINES = Path(__file__).parent / "baselines"
TOLERANCES = BASELINES / "tolerances.yaml"
FIXTURES = BASELINES / "fixtures"
FIXTURE_DATA = {"shapes": FIXTURES / "data" / "shapes", "faces": FIXTURES / "data" / "faces"}
FIXTURE_MODELS = {
    "sdn-shapes": FIXTURES / "models" / "sdn-shapes.pt",
    "sdn-faces": FIXTURES / "models" / "sdn-faces.pt",
    "occnet": FIXTURES / "models" / "occnet.pt",
    "verifier": FIXTURES / "models" / "verifier.pt",
}
BENCHMARKS = ("shapes", "faces")
SDN_OVERRIDES = ["train.steps=150", "train.set_size=4", "train.precision=fp32", "train.eval_sets=4"]
OCCNET_OVERRIDES = [  # lr 1e-3 and 1024 points: the tiny OccNet then depends on its input views
    "train.steps=400", "train.batch_objects=8", "train.points_per_object=1024", "train.lr=1e-3",
    "train.precision=fp32", "train.eval_every=100", "train.val_objects=0",
]  # fmt: skip
VERIFIER_OVERRIDES = ["train.steps=600", "train.precision=fp32"]


def shapes_data_config():
    from sdn.data.synthetic_shapes.generate import ShapesConfig

    return ShapesConfig(
        categories=["02691156", "02958343", "03001627"], objects_per_category=20, views=16, resolution=32,
        seed=11, n_points=30_000, n_surface=30_000, mesh_cells=64,
    )  # fmt: skip


def faces_data_config():
    from sdn.data.synthetic_faces.generate import FacesConfig

    return FacesConfig(identities=192, images_per_identity=12, resolution=32, test_fraction=0.5, seed=11)


def shapenet_config() -> ShapeNetBenchConfig:
    return ShapeNetBenchConfig(
        real_views=8, recon_views=(1, 4, 8), input_views=(1, 4, 8), table2_views=(1, 4, 8), bootstrap=200,
        dense_points=20_000, resolution0=16, upsampling_steps=1,
    )  # fmt: skip


def faces_config() -> FacesBenchConfig:
    return FacesBenchConfig(set_size=4, context_sizes=(1, 4, 8), noise_levels=(0.0, 0.25, 0.5), bootstrap=200)


def _copy_test_split(src: Path, dst: Path, kind: str) -> None:
    """The files of ``src`` that the benchmark reads from the test split, copied to ``dst``."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    if kind == "shapes":
        shutil.copy2(src / "metadata.yaml", dst / "metadata.yaml")
        for synset in sorted(p for p in src.iterdir() if (p / "test.lst").is_file()):
            (dst / synset.name).mkdir()
            shutil.copy2(synset / "test.lst", dst / synset.name / "test.lst")
            for oid in (synset / "test.lst").read_text().split():
                shutil.copytree(synset / oid, dst / synset.name / oid)
    else:
        for name in ("test_list.txt", "identity_meta.csv"):
            shutil.copy2(src / name, dst / name)
        (dst / "bb_landmark").mkdir()
        shutil.copy2(src / "bb_landmark" / "loose_bb_test.csv", dst / "bb_landmark" / "loose_bb_test.csv")
        shutil.copytree(src / "test", dst / "test")


def build_fixtures(work: Path, echo=print) -> None:
    """Regenerate the tiny data, train the tiny models from scratch (fp32, one thread) and
    write the fixtures (test splits and weights-only fp32 checkpoints) with fixtures.json."""
    from evaluation.verifier import verifier_preset
    from evaluation.verifier_trainer import train_verifier
    from occnet_multiview.config import occnet_preset
    from occnet_multiview.trainer import train_occnet
    from sdn.config import apply_overrides, preset
    from sdn.data.synthetic_faces.generate import generate_faces
    from sdn.data.synthetic_shapes.generate import generate_shapes
    from sdn.trainer import train_sdn

    work = Path(work)
    if work.exists():
        shutil.rmtree(work)
    torch.set_num_threads(1)
    cache, t0 = work / "cache", time.time()
    data = {"shapes": work / "data" / "shapes", "faces": work / "data" / "faces"}
    generate_shapes(data["shapes"], shapes_data_config(), workers=1, progress=False)
    generate_faces(data["faces"], faces_data_config(), workers=1, progress=False)
    models = work / "models"
    for name, dataset in (("sdn-shapes", "shapes"), ("sdn-faces", "faces")):
        cfg = apply_overrides(preset("tiny-16", dataset), SDN_OVERRIDES)
        train_sdn(data[dataset], cfg, models / name, dataset=dataset, progress=False, cache_dir=cache)
    train_occnet(data["shapes"], apply_overrides(occnet_preset("tiny"), OCCNET_OVERRIDES), models / "occnet",
                 progress=False, cache_dir=cache)  # fmt: skip
    train_verifier(data["faces"], apply_overrides(verifier_preset("tiny"), VERIFIER_OVERRIDES),
                   models / "verifier", progress=False, cache_dir=cache)  # fmt: skip
    echo(f"[regress] fixtures: data and training {time.time() - t0:.0f} s")
    for kind in BENCHMARKS:
        _copy_test_split(data[kind], FIXTURE_DATA[kind], kind)
    sources = {
        "sdn-shapes": models / "sdn-shapes" / "checkpoint.pt",
        "sdn-faces": models / "sdn-faces" / "checkpoint.pt",
        "occnet": models / "occnet" / "best.pt",
        "verifier": models / "verifier" / "best.pt",
    }
    FIXTURE_MODELS["occnet"].parent.mkdir(parents=True, exist_ok=True)
    for name, src in sources.items():
        export_checkpoint(src, FIXTURE_MODELS[name], half=False)
    atomic_write_json(
        FIXTURES / "fixtures.json",
        {
            "made_by": "sdn-bench regress --rebuild-fixtures",
            "shapes_data": {**shapes_data_config().__dict__, "kept": "test split only"},
            "faces_data": {**faces_data_config().__dict__, "kept": "test split only"},
            "sdn": {"preset": "tiny-16", "overrides": SDN_OVERRIDES},
            "occnet": {"preset": "tiny", "overrides": OCCNET_OVERRIDES},
            "verifier": {"preset": "tiny", "overrides": VERIFIER_OVERRIDES},
            "threads": 1,
            "torch": torch.__version__,
        },
    )
    echo(f"[regress] fixtures written under {FIXTURES}: commit them with the reason")


def run_reports(work, echo=print, benchmarks=BENCHMARKS) -> dict[str, Path]:
    """Score the fixture models on the fixture data and write the reports under ``work``
    (emptied first); returns {benchmark: report folder} for each of ``benchmarks``."""
    unknown = sorted(set(benchmarks) - set(BENCHMARKS))
    if unknown or not benchmarks:
        raise ValueError(f"benchmarks must be a non-empty subset of {BENCHMARKS}, got {list(benchmarks)}")
    missing = [str(p) for p in [*FIXTURE_DATA.values(), *FIXTURE_MODELS.values()] if not p.exists()]
    if missing:
        raise ValueError(
            f"regression fixtures missing: {', '.join(missing)}; run sdn-bench regress --rebuild-fixtures"
        )
    work = Path(work)
    if work.exists():
        shutil.rmtree(work)  # no stale reports
    cache, t0 = work / "cache", time.time()
    reports = {}
    if "shapes" in benchmarks:
        reports["shapes"] = work / "reports" / "shapes"
        run_shapenet_benchmark(
            FIXTURE_MODELS["sdn-shapes"], FIXTURE_MODELS["occnet"], FIXTURE_DATA["shapes"], reports["shapes"],
            shapenet_config(), cache_dir=cache, progress=False, command="sdn-bench regress",
        )  # fmt: skip
        echo(f"[regress] shapes report: {time.time() - t0:.0f} s")
    if "faces" in benchmarks:
        reports["faces"] = work / "reports" / "faces"
        run_faces_benchmark(
            FIXTURE_MODELS["sdn-faces"], FIXTURE_DATA["faces"], reports["faces"], faces_config(),
            embedder=str(FIXTURE_MODELS["verifier"]), cache_dir=cache, progress=False,
            command="sdn-bench regress",
        )  # fmt: skip
        echo(f"[regress] faces report: {time.time() - t0:.0f} s")
    return reports


def run_regression(work, refresh_baseline: bool = False, echo=print, benchmarks=BENCHMARKS) -> int:
    """Run the job and compare with the baselines (aggregate rows only): 0 nothing
    regressed, 1 a metric regressed, 2 not comparable. With ``refresh_baseline`` the new
    reports replace the baselines instead (returns 0)."""
    reports = run_reports(work, echo, benchmarks)
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
        out = Path(work) / "compare" / name
        codes.append(compare_main(folder, BASELINES / name, TOLERANCES, out, aggregate_only=True))
    return max(codes)
