"""What ``make bench`` runs: build (or reuse) the train and test splits of the default
synthetic datasets (the test splits are scored; the train splits are the novelty section's
training sets), then both benchmarks with the committed reference checkpoints, and one index
over the reports. The val splits are left for ``sdn-bench data shapes|faces`` on the same
roots, which add them."""

from __future__ import annotations

import time
from pathlib import Path

from sdn.data.preview import faces_grid, shapes_grid
from sdn.data.synthetic_faces.generate import FacesConfig, generate_faces
from sdn.data.synthetic_shapes.generate import ShapesConfig, generate_shapes

from .faces import FacesBenchConfig, run_calibrated_faces
from .report_index import write_combined_index
from .shapenet import ShapeNetBenchConfig, run_calibrated_shapenet
from .shipped import FACES_SDN, OCCNET, SHAPES_SDN, VERIFIER, shipped_checkpoint

DEFAULT_MAX_OBJECTS = 39  # three test objects per category: the fewest with a bootstrap interval


def _shipped(echo, what: str, *names: str) -> list[Path] | None:
    """The shipped checkpoints ``names`` (:mod:`benchmarks.shipped`), or None (echoed: the
    ``what`` benchmark is skipped) when this installation lacks one."""
    try:
        return [shipped_checkpoint(n) for n in names]
    except ValueError as e:
        echo(f"{e}: the {what} benchmark is skipped")
        return None


def _stage(echo, name: str, start: float) -> float:
    """Echo the wall time of stage ``name`` begun at ``start``; return now (the next stage's start)."""
    now = time.time()
    echo(f"stage {name}: {now - start:.1f} s")
    return now


def run_bench(
    root: str,
    faces_root: str,
    out: str,
    workers: int = 2,
    max_objects: int | None = None,
    references: bool = True,
    echo=print,
) -> None:
    """Generate or resume the train and test splits of the default datasets (shapes: 13
    categories x 50 objects x 24 views at 64 px under ``root``, of which the 455 train and 130
    test objects; faces: 500 identities x 24 images at 64 px under ``faces_root``, of which the
    train and the 100 test identities: the train splits are the novelty section's training
    sets, :mod:`benchmarks.distribution`),
    write previews of the test splits, score the reference checkpoints on them
    (``max_objects`` shapes, None: ``DEFAULT_MAX_OBJECTS``; every test identity) into
    ``out/shapes`` and ``out/faces`` (with ``references``, each with its calibration ladder:
    :mod:`benchmarks.ladder`), and write ``out/index.md``. Echoes each stage's wall time."""
    out = Path(out)
    start = time.time()
    run = generate_shapes(root, ShapesConfig(), workers=workers, splits=("train", "test"))
    echo(f"shapes {root} (train and test splits): {run['objects_generated']} objects generated, "
         f"{run['objects_skipped']} reused, {run['wall_s']:.1f} s")  # fmt: skip
    run = generate_faces(faces_root, FacesConfig(), workers=workers, splits=("train", "test"))
    echo(f"faces {faces_root} (train and test splits): {run['identities_generated']} identities generated, "
         f"{run['identities_skipped']} reused, {run['wall_s']:.1f} s")  # fmt: skip
    start = _stage(echo, "data", start)
    previews = (
        shapes_grid(root, out / "shapes-preview.png", split="test"),
        faces_grid(faces_root, out / "faces-preview.png", split="test"),
    )
    echo(f"previews: {previews[0]}, {previews[1]}")
    start = _stage(echo, "previews", start)
    shapes = _shipped(echo, "ShapeNet", SHAPES_SDN, OCCNET)
    if shapes:
        cfg = ShapeNetBenchConfig(max_objects=max_objects or DEFAULT_MAX_OBJECTS, workers=workers)
        m = run_calibrated_shapenet(
            *shapes, root, out / "shapes", cfg, references, command="make bench", echo=echo
        )
        n, wall = m["data"]["objects"], m["wall_s"]
        echo(f"shapes report: {out / 'shapes' / 'tables.md'} ({n} objects, {wall:.0f} s)")
    start = _stage(echo, "shapes benchmark", start)
    faces = _shipped(echo, "faces", FACES_SDN, VERIFIER)
    if faces:
        m = run_calibrated_faces(faces[0], faces_root, out / "faces", FacesBenchConfig(), str(faces[1]),
                                 references=references, command="make bench", echo=echo)  # fmt: skip
        echo(f"faces report: {out / 'faces' / 'summary.md'} ({m['data']['identities']} identities, "
             f"{m['wall_s']:.0f} s)")  # fmt: skip
    _stage(echo, "faces benchmark", start)
    echo(f"index: {write_combined_index(out)}")
