"""The synthetic VGGFace2: layout and its quirks, annotations, determinism, resume, arguments."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdn.data.synthetic_faces import generate as gen
from sdn.data.synthetic_faces.face_model import Identity, Variation, sample_variation
from sdn.data.synthetic_faces.generate import (
    FacesConfig,
    generate_faces,
    identity_images,
    identity_splits,
)
from sdn.data.synthetic_faces.render import annotate, render_face
from sdn.data.vggface2 import VGGFace2Sets

TINY = dict(identities=4, images_per_identity=3, resolution=40, seed=3)
SPLITS = ("train", "test")


@pytest.fixture(scope="module")
def tiny_faces(tmp_path_factory) -> Path:
    """Root of a 4-identity x 3-image synthetic VGGFace2 at 40 px."""
    root = tmp_path_factory.mktemp("faces")
    generate_faces(root, FacesConfig(**TINY), workers=1, progress=False)
    return root


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every dataset file except the run log (which records timings)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "generation.json"
    }


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as f:
        return list(csv.reader(f))


def images_on_disk(root: Path, split: str) -> list[str]:
    return sorted(str(p.relative_to(root / split)) for p in (root / split).rglob("*") if p.is_file())


def test_layout_lists_and_disjoint_splits(tiny_faces):
    ids = {s: sorted(p.name for p in (tiny_faces / s).iterdir()) for s in SPLITS}
    assert all(re.fullmatch(r"n\d{6}", i) for s in SPLITS for i in ids[s])
    assert sorted(ids["train"] + ids["test"]) == ["n000001", "n000002", "n000003", "n000004"]
    assert not set(ids["train"]) & set(ids["test"])
    assert len(ids["test"]) == 1 and len(ids["train"]) == 3
    for s in SPLITS:
        files = images_on_disk(tiny_faces, s)
        assert (tiny_faces / f"{s}_list.txt").read_text().splitlines() == files
        assert len(files) == 3 * len(ids[s])
        for rel in files:
            assert re.fullmatch(r"n\d{6}/\d{4}_\d{2}\.jpg", rel)
            with Image.open(tiny_faces / s / rel) as im:
                assert im.format == "JPEG" and im.mode == "RGB" and im.size == (40, 40)
    assert not [p for p in tiny_faces.rglob(".*")]


def test_identity_meta_quirks(tiny_faces):
    lines = (tiny_faces / "identity_meta.csv").read_text().splitlines()
    assert lines[0] == "Class_ID, Name, Sample_Num, Flag, Gender"
    assert all(re.fullmatch(r'n\d{6}, "[^"]+", \d+, [01], [mf]', line) for line in lines[1:])
    rows = list(csv.reader(lines, skipinitialspace=True))
    assert all(len(r) == 5 for r in rows)
    by_id = {r[0]: r for r in rows[1:]}
    assert by_id["n000003"][1] == "Synthetic_Person_0003, Jr."  # a name with a comma
    assert by_id["n000001"][1] == "Synthetic_Person_0001"
    for s, flag in (("train", "1"), ("test", "0")):
        for d in (tiny_faces / s).iterdir():
            assert by_id[d.name][3] == flag
            assert int(by_id[d.name][2]) == len(list(d.iterdir()))


def test_boxes_and_landmarks_one_row_per_image_inside(tiny_faces):
    res = TINY["resolution"]
    for s in SPLITS:
        names = [
            line.removesuffix(".jpg") for line in (tiny_faces / f"{s}_list.txt").read_text().splitlines()
        ]
        bb = read_rows(tiny_faces / "bb_landmark" / f"loose_bb_{s}.csv")
        lm = read_rows(tiny_faces / "bb_landmark" / f"loose_landmark_{s}.csv")
        assert bb[0] == ["NAME_ID", "X", "Y", "W", "H"]
        assert lm[0] == ["NAME_ID"] + [f"P{i}{a}" for i in range(1, 6) for a in "XY"]
        assert [r[0] for r in bb[1:]] == names == [r[0] for r in lm[1:]]
        for b, m in zip(bb[1:], lm[1:], strict=True):
            x, y, w, h = (int(v) for v in b[1:])
            assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= res and y + h <= res
            pts = np.array(m[1:], float).reshape(5, 2)
            assert ((pts[:, 0] > x) & (pts[:, 0] < x + w) & (pts[:, 1] > y) & (pts[:, 1] < y + h)).all()
            # MTCNN's order: the image-left eye and mouth corner first; eyes above nose above mouth.
            assert pts[0, 0] < pts[1, 0] and pts[3, 0] < pts[4, 0]
            assert pts[:2, 1].max() < pts[2, 1] < pts[3:, 1].min()


def test_annotations_match_the_face_model(tiny_faces):
    cfg = FacesConfig(**TINY)
    lm = {
        r[0]: np.array(r[1:], float)
        for r in read_rows(tiny_faces / "bb_landmark" / "loose_landmark_train.csv")[1:]
    }
    number = next(int(d.name[1:]) for d in (tiny_faces / "train").iterdir())
    ident, images = identity_images(cfg, number)
    for stem, var in images:
        ann = annotate(ident, var, cfg.resolution)
        np.testing.assert_allclose(lm[f"n{number:06d}/{stem}"], ann.landmarks.ravel(), atol=0.006)


def test_landmarks_land_on_the_face(tiny_faces):
    """Re-render each image on a pure green background: the five landmark pixels are on the
    head (not green), the corners are background."""
    cfg = FacesConfig(**{**TINY, "resolution": 64})
    for number in range(1, cfg.identities + 1):
        ident, images = identity_images(cfg, number)
        for _, var in images:
            var = dataclasses.replace(
                var, background="solid", background_colours=((0.0, 1.0, 0.0),) * 2, noise=0.0, exposure=1.0
            )
            img = render_face(ident, var, cfg.resolution).astype(int)
            green = (img[..., 1] > 200) & (img[..., 0] < 60) & (img[..., 2] < 60)
            assert green[0, 0] and green[0, -1]
            for u, v in annotate(ident, var, cfg.resolution).landmarks:
                assert not green[int(v), int(u)], (number, u, v)


def test_synthetic_meta_pose_ranges(tiny_faces):
    for s in SPLITS:
        with (tiny_faces / f"synthetic_meta_{s}.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        names = [
            line.removesuffix(".jpg") for line in (tiny_faces / f"{s}_list.txt").read_text().splitlines()
        ]
        assert [r["NAME_ID"] for r in rows] == names
        for r in rows:
            assert abs(float(r["yaw"])) <= 45 and abs(float(r["pitch"])) <= 20 and abs(float(r["roll"])) <= 10


def test_variation_covers_the_ranges_and_accessories_are_not_identity():
    vs = [sample_variation(np.random.default_rng(i)) for i in range(1500)]
    yaw = np.array([v.yaw for v in vs])
    assert np.abs(yaw).max() <= 45 and (np.abs(yaw) > 30).mean() > 0.05
    assert max(abs(v.pitch) for v in vs) > 15 and max(abs(v.roll) for v in vs) > 8
    assert (
        0.05 < np.mean([v.glasses for v in vs]) < 0.3 and 0.03 < np.mean([v.hat != "none" for v in vs]) < 0.2
    )
    assert {"glasses", "hat", "yaw", "smile", "blink", "background"} <= {
        f.name for f in dataclasses.fields(Variation)
    }
    ident_fields = {f.name for f in dataclasses.fields(Identity)}
    assert not ident_fields & {"glasses", "hat", "yaw", "smile"}
    assert len(ident_fields) >= 12


def test_deterministic_across_worker_counts(tmp_path, tiny_faces):
    other = tmp_path / "w2"
    generate_faces(other, FacesConfig(**TINY), workers=2, progress=False)
    assert tree_digest(other) == tree_digest(tiny_faces)
    # Two separately generated copies: the same data fingerprint under different roots.
    for split in ("train", "test"):
        a, b = (
            VGGFace2Sets(r, split, set_size=1, resolution=16, cache_dir=tmp_path / "c", progress=False)
            for r in (other, tiny_faces)
        )
        assert a.fingerprint() == b.fingerprint()


def test_resume_after_interruption(tmp_path, tiny_faces, monkeypatch):
    root = tmp_path / "resume"
    calls = {"n": 0}
    real_render = gen.render_face

    def flaky_render(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated crash")
        return real_render(*args, **kwargs)

    monkeypatch.setattr(gen, "render_face", flaky_render)
    with pytest.raises(KeyboardInterrupt):
        generate_faces(root, FacesConfig(**TINY), workers=1, progress=False)
    whole = [p for s in SPLITS for p in (root / s).iterdir() if not p.name.startswith(".")]
    assert len(whole) == 1 and len(list(whole[0].iterdir())) == 3  # only whole identities are visible
    assert len(list(root.glob("*/.tmp-*"))) == 1  # the interrupted identity, under a temporary name
    monkeypatch.setattr(gen, "render_face", real_render)
    run = generate_faces(root, FacesConfig(**TINY), workers=1, progress=False)
    assert run["identities_skipped"] == 1 and run["identities_generated"] == 3
    assert run["images_generated"] == 9
    assert not list(root.glob("*/.tmp-*"))
    assert tree_digest(root) == tree_digest(tiny_faces)
    record = json.loads((root / "generation.json").read_text())
    assert len(record["runs"]) == 1 and record["config"] == {**TINY, "test_fraction": 0.2}


def test_rerun_skips_and_other_settings_are_refused(tiny_faces):
    before = tree_digest(tiny_faces)
    run = generate_faces(tiny_faces, FacesConfig(**TINY), workers=1, progress=False)
    assert run["identities_skipped"] == 4 and run["identities_generated"] == 0
    assert tree_digest(tiny_faces) == before
    with pytest.raises(ValueError, match="differs in: resolution, seed"):
        generate_faces(tiny_faces, FacesConfig(**{**TINY, "resolution": 48, "seed": 4}), progress=False)


def test_test_split_only_then_resume_with_all_splits(tmp_path, tiny_faces):
    root = tmp_path / "test-only"
    run = generate_faces(root, FacesConfig(**TINY), workers=1, progress=False, splits=("test",))
    assert run["identities_generated"] == 1 and run["splits"] == ["test"]
    assert images_on_disk(root, "train") == []
    full = tree_digest(tiny_faces)
    # Byte for byte the test images and every table (train's too) of the full run.
    assert tree_digest(root) == {k: v for k, v in full.items() if not k.startswith("train/")}
    assert images_on_disk(root, "test") == images_on_disk(tiny_faces, "test") != []
    a, b = (
        VGGFace2Sets(r, "test", set_size=1, resolution=16, cache_dir=tmp_path / "c", progress=False)
        for r in (root, tiny_faces)
    )
    assert a.fingerprint() == b.fingerprint()
    with pytest.raises(ValueError, match="differs in: seed"):
        generate_faces(root, FacesConfig(**{**TINY, "seed": 4}), progress=False, splits=("train",))
    run = generate_faces(root, FacesConfig(**TINY), workers=1, progress=False)
    assert run["identities_skipped"] == 1 and run["identities_generated"] == 3
    assert tree_digest(root) == full
    record = json.loads((root / "generation.json").read_text())
    assert [r["splits"] for r in record["runs"]] == [["test"], ["train", "test"]]


@pytest.mark.parametrize("splits", [(), ("val",)])
def test_bad_splits(tmp_path, splits):
    with pytest.raises(ValueError, match="splits must be a non-empty subset of train, test"):
        generate_faces(tmp_path / "x", FacesConfig(**TINY), progress=False, splits=splits)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "change,message",
    [
        ({"identities": 1}, "identities must be >= 2"),
        ({"images_per_identity": 0}, "images_per_identity must be >= 1"),
        ({"resolution": 16}, "resolution must be >= 32"),
        ({"test_fraction": 0.0}, r"test_fraction must be in \(0, 1\)"),
        ({"test_fraction": 1.0}, r"test_fraction must be in \(0, 1\)"),
    ],
)
def test_bad_arguments(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        generate_faces(tmp_path / "x", FacesConfig(**{**TINY, **change}), progress=False)
    assert not (tmp_path / "x").exists()


def test_bad_workers_and_unknown_keys(tmp_path):
    with pytest.raises(ValueError, match="workers must be >= 1"):
        generate_faces(tmp_path, FacesConfig(**TINY), workers=0, progress=False)
    with pytest.raises(ValueError, match="unknown faces config keys"):
        FacesConfig.from_dict({"identity": 3})


@pytest.mark.parametrize("n,fraction,expected", [(500, 0.2, 100), (10, 0.2, 2), (2, 0.2, 1), (3, 0.9, 2)])
def test_test_split_size(n, fraction, expected):
    cfg = FacesConfig(identities=n, test_fraction=fraction)
    splits = identity_splits(cfg)
    assert sorted(splits) == list(range(1, n + 1))
    assert sum(s == "test" for s in splits.values()) == expected
    assert identity_splits(cfg) == splits
