"""The VGGFace2-layout loader on a hand-built fixture in the *real* format, its crops and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sdn.data.vggface2 import VGGFace2Sets, read_identity_meta, read_loose_bb, resolve_crop, square_box

META = (
    "Class_ID, Name, Sample_Num, Flag, Gender\n"
    'n000001, "14th_Dalai_Lama", 4, 1, m\n'
    'n000002, "Abel_Xavier, Jr.", 4, 1, m,\n'  # a comma in a quoted name, a trailing comma
    "n000003, A_J_Buckley, 2, 1, m\n"
    'n000004, "Aaron ""AJ"" Lee", 3, 0, f\n'
    "n000005, Zoe, 3, 0, f\n"
)


def identity_colour(k: int) -> tuple[int, int, int]:
    """A distinct saturated colour per identity number."""
    rng = np.random.default_rng(1000 + k)
    c = rng.integers(0, 256, 3)
    c[k % 3] = 255
    c[(k + 1) % 3] = 0
    return tuple(int(v) for v in c)


def write_vggface2(
    root: Path, counts: dict[str, dict[str, int]], seed: int = 0, meta: str | None = META
) -> Path:
    """A VGGFace2-layout root: ``counts[split][identity] = images``. Each image is a random
    noise JPG of its own size with a rectangle of the identity's colour at its loose box
    (per-image jitter in place and size, with room for the 1.3x square around it), listed
    in ``{split}_list.txt`` (no final newline, as the real files) and
    ``bb_landmark/loose_bb_{split}.csv`` (quoted NAME_ID)."""
    rng = np.random.default_rng(seed)
    (root / "bb_landmark").mkdir(parents=True, exist_ok=True)
    for split, ids in counts.items():
        lines, bbs = [], ["NAME_ID,X,Y,W,H"]
        for ident, n in ids.items():
            (root / split / ident).mkdir(parents=True)
            k = int(ident[1:])
            for j in range(n):
                w, h = int(rng.integers(60, 121)), int(rng.integers(60, 121))
                a = rng.integers(0, 90, (h, w, 3)).astype(np.uint8)
                side = min(w, h)
                bw, bh = int(rng.integers(side // 4, side // 2)), int(rng.integers(side // 4, side // 2))
                m = int(0.16 * max(bw, bh)) + 1  # room for the 1.3x square on every side
                x, y = int(rng.integers(m, w - bw - m)), int(rng.integers(m, h - bh - m))
                a[y : y + bh, x : x + bw] = identity_colour(k)
                rel = f"{ident}/{j + 1:04d}_01"
                Image.fromarray(a).save(root / split / f"{rel}.jpg", quality=95)
                lines.append(f"{rel}.jpg")
                bbs.append(f'"{rel}",{x},{y},{bw},{bh}')
        (root / f"{split}_list.txt").write_text("\n".join(lines))
        (root / "bb_landmark" / f"loose_bb_{split}.csv").write_text("\n".join(bbs) + "\n")
    if meta is not None:
        (root / "identity_meta.csv").write_text(meta)
    return root


SMALL = {
    "train": {"n000001": 4, "n000002": 4, "n000003": 2},
    "test": {"n000004": 3, "n000005": 3},
}


@pytest.fixture
def faces(tmp_path) -> Path:
    return write_vggface2(tmp_path / "vggface2", SMALL)


def test_identity_meta_quirks(faces):
    meta = read_identity_meta(faces / "identity_meta.csv")
    assert list(meta) == ["n000001", "n000002", "n000003", "n000004", "n000005"]
    assert meta["n000002"].name == "Abel_Xavier, Jr." and meta["n000002"].gender == "m"
    assert meta["n000004"].name == 'Aaron "AJ" Lee' and meta["n000004"].flag == 0
    assert meta["n000003"].name == "A_J_Buckley" and meta["n000001"].sample_num == 4
    bad = faces / "bad.csv"
    bad.write_text("Class_ID, Name, Sample_Num, Flag, Gender\nn1, x\n")
    with pytest.raises(ValueError, match=r"bad.csv:2: expected 5 fields"):
        read_identity_meta(bad)
    with pytest.raises(ValueError, match="identity meta file not found: .*nope.csv"):
        read_identity_meta(faces / "nope.csv")


def test_sets_shapes_skips_and_flat_view(faces, tmp_path):
    kw = dict(resolution=32, cache_dir=tmp_path / "c", progress=False)
    ds = VGGFace2Sets(faces, "train", set_size=3, **kw)
    assert len(ds) == 2 and ds.skipped_identities == 1 and ds.skipped == ["n000003"]
    assert ds.names == ["14th_Dalai_Lama", "Abel_Xavier, Jr."]
    item = ds[1]
    assert item["images"].shape == (3, 3, 32, 32) and item["images"].dtype == torch.float32
    assert 0.0 <= item["images"].min() and item["images"].max() <= 1.0
    assert item["identity"] == "n000002" and item["name"] == "Abel_Xavier, Jr." and item["index"] == 1
    assert len(set(item["views"].tolist())) == 3
    # every identity is kept at n = 2; the flat view lists each image once with its identity
    ds2 = VGGFace2Sets(faces, "train", set_size=2, **kw)
    assert len(ds2) == 3 and ds2.skipped_identities == 0
    assert ds2.flat_labels.tolist() == [0] * 4 + [1] * 4 + [2] * 2
    assert ds2.flat_paths[4].relative_to(faces).as_posix() == "train/n000002/0001_01.jpg"
    flat = ds2.flat()
    assert len(flat) == 10 and flat.num_classes == 3
    assert flat[9]["label"] == 2 and flat[9]["image"].shape == (3, 32, 32)
    torch.testing.assert_close(ds2.flat_images(ds2.identity_rows(1)), ds2.images(1, np.arange(4)))
    # test split, a fingerprint that depends on crop and resolution
    te = VGGFace2Sets(faces, "test", set_size=3, **kw)
    assert te.class_ids == ["n000004", "n000005"] and te.names[0] == 'Aaron "AJ" Lee'
    assert ds.fingerprint() != VGGFace2Sets(faces, "train", set_size=3, crop="none", **kw).fingerprint()
    # identity_meta.csv is optional: names fall back to the class ids
    (faces / "identity_meta.csv").unlink()
    assert VGGFace2Sets(faces, "test", set_size=3, **kw).names == ["n000004", "n000005"]


def test_view_choice_eval_fixed_train_seeded(faces, tmp_path):
    kw = dict(set_size=3, resolution=16, cache_dir=tmp_path / "c", progress=False)
    ev = VGGFace2Sets(faces, "train", random_views=False, **kw)
    assert torch.equal(ev[0]["views"], ev[0]["views"])
    tr = VGGFace2Sets(faces, "train", random_views=True, seed=3, **kw)
    seen = {tuple(tr[0]["views"].tolist())}
    first = tr[0]["views"].clone()
    for e in range(1, 6):
        tr.set_epoch(e)
        seen.add(tuple(tr[0]["views"].tolist()))
    assert len(seen) > 1
    tr.set_epoch(0)
    assert torch.equal(tr[0]["views"], first)


def test_loose_bb_crop_centres_the_box(faces, tmp_path):
    """The coloured rectangle drawn at the loose box fills the middle of the crop."""
    bbs = read_loose_bb(faces / "bb_landmark" / "loose_bb_train.csv")
    assert bbs["n000001/0001_01"][2] > 0
    ds = VGGFace2Sets(faces, "train", set_size=2, resolution=48, cache_dir=tmp_path / "c", progress=False)
    colour = torch.tensor(identity_colour(2), dtype=torch.float32) / 255
    for row in ds.identity_rows(1):
        img = ds.flat_images([row])[0]  # (3, 48, 48)
        centre = img[:, 22:26, 22:26].mean(dim=(1, 2))
        assert (centre - colour).abs().max() < 0.12, (row, centre, colour)
        corner = img[:, :3, :3].mean(dim=(1, 2))  # the 1.3x square leaves background around the box
        assert (corner - colour).abs().max() > 0.3, (row, corner, colour)
    # the crop geometry: square, inside the image, 1.3 x the longer side when it fits
    assert square_box((10, 10, 20, 10), (100, 100)) == pytest.approx((7, 2, 33, 28))
    assert square_box((0, 0, 20, 10), (100, 100)) == pytest.approx((0, 0, 26, 26))  # shifted inside
    assert square_box((0, 0, 90, 50), (100, 60)) == pytest.approx((15, 0, 75, 60))  # shrunk to fit
    # the whole image instead: the rectangle is off-centre in some images
    whole = VGGFace2Sets(
        faces, "train", set_size=2, resolution=48, crop="none", cache_dir=tmp_path / "c", progress=False
    )
    off = [
        (whole.flat_images([r])[0][:, 22:26, 22:26].mean(dim=(1, 2)) - colour).abs().max()
        for r in range(4, 8)
    ]
    assert max(off) > 0.3


def test_mtcnn_crop_runs_offline_and_caches_boxes(faces, tmp_path, monkeypatch):
    kw = dict(set_size=3, resolution=24, crop="mtcnn", cache_dir=tmp_path / "c", progress=False)
    ds = VGGFace2Sets(faces, "test", **kw)
    assert ds[0]["images"].shape == (3, 3, 24, 24)
    # no real faces in noise: every image falls back to its loose-box square
    assert ds.crop_fallbacks == 6
    loose = VGGFace2Sets(faces, "test", set_size=3, resolution=24, cache_dir=tmp_path / "c", progress=False)
    torch.testing.assert_close(ds.flat_images(range(6)), loose.flat_images(range(6)))
    assert len(list((tmp_path / "c" / "boxes").glob("*.npy"))) == 2

    import facenet_pytorch

    def no_detector(*a, **k):
        raise AssertionError("the detector ran although its boxes are cached")

    monkeypatch.setattr(facenet_pytorch, "MTCNN", no_detector)
    again = VGGFace2Sets(faces, "test", **kw)
    assert again.crop_fallbacks == 6


def test_errors_name_the_problem(faces, tmp_path):
    kw = dict(resolution=16, cache_dir=tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match="dataset root not found"):
        VGGFace2Sets(tmp_path / "nope", "train", **kw)
    with pytest.raises(ValueError, match="split must be one of"):
        VGGFace2Sets(faces, "val", **kw)
    with pytest.raises(ValueError, match="crop must be one of"):
        VGGFace2Sets(faces, "train", crop="tight", **kw)
    with pytest.raises(ValueError, match=r"no identity has at least 5 images \(3 identities skipped\)"):
        VGGFace2Sets(faces, "train", set_size=5, **kw)
    assert resolve_crop(faces, "auto") == "loose_bb"
    (faces / "bb_landmark" / "loose_bb_test.csv").rename(faces / "moved.csv")
    assert resolve_crop(faces, "auto") == "none" and resolve_crop(faces, "mtcnn") == "mtcnn"
    with pytest.raises(ValueError, match="bounding-box file not found: .*loose_bb_test.csv"):
        VGGFace2Sets(faces, "test", set_size=2, **kw)
    assert len(VGGFace2Sets(faces, "test", set_size=2, crop="none", **kw)) == 2
    (faces / "test_list.txt").write_text("\n")
    with pytest.raises(ValueError, match="test_list.txt: split 'test' is empty"):
        VGGFace2Sets(faces, "test", set_size=2, crop="none", **kw)
    (faces / "test_list.txt").unlink()
    with pytest.raises(ValueError, match="image list not found: .*test_list.txt"):
        VGGFace2Sets(faces, "test", set_size=2, crop="none", **kw)
    bad = faces / "train" / "n000002" / "0003_01.jpg"
    bad.write_bytes(b"not a jpeg")
    for crop in ("loose_bb", "none"):
        with pytest.raises(ValueError, match="corrupt or unreadable image: .*n000002/0003_01.jpg"):
            VGGFace2Sets(faces, "train", set_size=2, crop=crop, **kw)
    bad.unlink()
    with pytest.raises(ValueError, match="image not found: .*n000002/0003_01.jpg"):
        VGGFace2Sets(faces, "train", set_size=2, crop="none", **kw)


def test_fingerprint_hashes_content(faces, tmp_path):
    """Two separately written copies of the same bytes agree; one changed byte of an image, the
    list, the meta or the box csv (names and sizes unchanged) changes the fingerprint."""
    other = write_vggface2(tmp_path / "other", SMALL)
    kw = dict(set_size=2, resolution=16, cache_dir=tmp_path / "c", progress=False)
    ds = VGGFace2Sets(faces, "train", **kw)
    base = ds.fingerprint()
    assert VGGFace2Sets(other, "train", **kw).fingerprint() == base
    assert VGGFace2Sets(faces, "test", **kw).fingerprint() != base
    assert VGGFace2Sets(faces, "train", crop="none", **kw).fingerprint() != base
    targets = [
        ds.flat_paths[3],
        faces / "train_list.txt",
        faces / "identity_meta.csv",
        faces / "bb_landmark" / "loose_bb_train.csv",
    ]
    for path in targets:
        original = path.read_bytes()
        data = bytearray(original)
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        assert ds.fingerprint() != base, path.name
        path.write_bytes(original)
        assert ds.fingerprint() == base
