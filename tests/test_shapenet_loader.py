"""The OccNet-layout loader on a fixture in the *real* format, its cache, and its errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sdn.data.image_cache import cached_images
from sdn.data.occnet_files import read_cameras, read_pointcloud, read_points
from sdn.data.shapenet import ShapeNetViews

CHAIR, PLANE = "03001627", "02691156"


def _real_object(obj: Path, colour, rng: np.random.Generator) -> None:
    """One object as real OccNet ShapeNet ships it: 24 JPGs of 137 px, 4x4 world mats."""
    img_dir = obj / "img_choy2016"
    img_dir.mkdir(parents=True)
    for i in range(24):
        a = np.full((137, 137, 3), 255, np.uint8)
        a[30 + i : 100, 40:90] = colour
        Image.fromarray(a).save(img_dir / f"{i:03d}.jpg", quality=95)
    cams = {}
    for i in range(24):
        cams[f"camera_mat_{i}"] = np.array([[149.84, 0, 68.5], [0, 149.84, 68.5], [0, 0, 1]], np.float32)
        cams[f"world_mat_{i}"] = np.concatenate([np.eye(3), [[0], [0], [1.5]]], 1).astype(np.float32)
    np.savez(img_dir / "cameras.npz", **cams)
    p = rng.uniform(-0.55, 0.55, (1000, 3)).astype(np.float16)
    occ = np.linalg.norm(p.astype(np.float32), axis=1) < 0.4
    np.savez(
        obj / "points.npz",
        points=p,
        occupancies=np.packbits(occ),
        loc=np.zeros(3),
        scale=np.float64(1.0),
    )
    n = rng.normal(size=(500, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    np.savez(
        obj / "pointcloud.npz",
        points=(0.4 * n).astype(np.float16),
        normals=n.astype(np.float16),
        loc=np.zeros(3),
        scale=1.0,
    )


@pytest.fixture
def real_root(tmp_path) -> Path:
    root = tmp_path / "ShapeNet"
    rng = np.random.default_rng(0)
    for synset, colour, ids in [
        (CHAIR, (200, 30, 30), ["1a2b", "3c4d", "5e6f"]),
        (PLANE, (30, 30, 200), ["aa11", "bb22"]),
    ]:
        for oid in ids:
            _real_object(root / synset / oid, colour, rng)
        # Real .lst files have no trailing newline.
        (root / synset / "train.lst").write_text("\n".join(ids[:-1]))
        (root / synset / "test.lst").write_text(ids[-1])
        (root / synset / "val.lst").write_text("")
    (root / "metadata.yaml").write_text(
        f"{CHAIR}:\n  id: {CHAIR}\n  name: chair\n{PLANE}:\n  id: {PLANE}\n  name: airplane,aeroplane,plane\n"
    )
    return root


def test_reads_real_format(real_root, tmp_path):
    ds = ShapeNetViews(
        real_root, "train", set_size=8, resolution=64, cache_dir=tmp_path / "c", progress=False
    )
    assert len(ds) == 3  # 2 chairs + 1 plane
    item = ds[0]
    assert item["images"].shape == (8, 3, 64, 64) and item["images"].dtype == torch.float32
    assert 0.0 <= item["images"].min() and item["images"].max() <= 1.0
    assert item["synset"] == PLANE and item["category"] == "airplane,aeroplane,plane"
    assert item["object_id"] == "aa11" and item["views"].shape == (8,)
    # The plane is blue on white: the image is mostly white with a blue patch.
    img = item["images"][0]
    assert img.mean() > 0.6 and (img[2] - img[0]).max() > 0.5
    chairs = ShapeNetViews(
        real_root,
        "train",
        categories=["chair"],
        set_size=4,
        resolution=32,
        cache_dir=tmp_path / "c",
        progress=False,
    )
    assert [o.object_id for o in chairs.objects] == ["1a2b", "3c4d"]
    assert read_points(chairs.objects[0].path / "points.npz").occupancies.shape == (1000,)
    cams = chairs.cameras(0)
    assert cams.K.shape == (24, 3, 3) and cams.Rt.shape == (24, 3, 4)
    assert chairs.pointcloud(0).normals.shape == (500, 3)


def test_view_choice_eval_fixed_train_seeded(real_root, tmp_path):
    kw = dict(set_size=8, resolution=32, cache_dir=tmp_path / "c", progress=False)
    ev = ShapeNetViews(real_root, "train", random_views=False, **kw)
    a, b = ev[1]["views"], ev[1]["views"]
    assert torch.equal(a, b) and len(set(a.tolist())) == 8
    tr = ShapeNetViews(real_root, "train", random_views=True, seed=3, **kw)
    first = tr[1]["views"].clone()
    assert torch.equal(tr[1]["views"], first)
    tr.set_epoch(1)
    assert not torch.equal(tr[1]["views"], first)
    tr.set_epoch(0)
    assert torch.equal(tr[1]["views"], first)


def test_packbits_truncation(tmp_path):
    occ = np.random.default_rng(0).random(1003) < 0.3
    np.savez(
        tmp_path / "points.npz",
        points=np.zeros((1003, 3), np.float16),
        occupancies=np.packbits(occ),
        loc=np.zeros(3),
        scale=1.0,
    )
    np.testing.assert_array_equal(read_points(tmp_path / "points.npz").occupancies, occ)


def test_image_cache_reused_and_invalidated(real_root, tmp_path):
    paths = sorted((real_root / CHAIR / "1a2b" / "img_choy2016").glob("*.jpg"))[:3]
    cache = tmp_path / "cache"
    a = cached_images(paths, 16, cache, progress=False)
    assert a.shape == (3, 16, 16, 3) and len(list(cache.glob("*.u8"))) == 1
    b = cached_images(paths, 16, cache, progress=False)
    np.testing.assert_array_equal(a, b)
    assert len(list(cache.glob("*.u8"))) == 1
    Image.fromarray(np.zeros((137, 137, 3), np.uint8)).save(paths[0])
    os.utime(paths[0], ns=(1, 1))
    c = cached_images(paths, 16, cache, progress=False)
    assert len(list(cache.glob("*.u8"))) == 2 and c[0].max() == 0


def test_errors_name_the_problem(real_root, tmp_path):
    kw = dict(resolution=32, cache_dir=tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match="dataset root not found"):
        ShapeNetViews(tmp_path / "nope", "train", **kw)
    with pytest.raises(ValueError, match=r"unknown category 'spoon'.*03001627 \(chair\)"):
        ShapeNetViews(real_root, "train", categories=["spoon"], **kw)
    with pytest.raises(ValueError, match="split 'val' is empty"):
        ShapeNetViews(real_root, "val", **kw)
    with pytest.raises(ValueError, match="set_size must be >= 1"):
        ShapeNetViews(real_root, "train", set_size=0, **kw)
    with pytest.raises(ValueError, match="has 24 views, fewer than the set size 25"):
        ShapeNetViews(real_root, "train", set_size=25, **kw)
    (real_root / PLANE / "test.lst").unlink()
    with pytest.raises(ValueError, match=f"split file not found: .*{PLANE}/test.lst"):
        ShapeNetViews(real_root, "test", **kw)
    bad = real_root / CHAIR / "1a2b" / "img_choy2016" / "005.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="corrupt or unreadable image: .*005.jpg"):
        ShapeNetViews(real_root, "train", categories=[CHAIR], **kw)
    (real_root / CHAIR / "3c4d" / "img_choy2016").rename(real_root / CHAIR / "3c4d" / "moved")
    with pytest.raises(ValueError, match="has no image folder"):
        ShapeNetViews(real_root, "train", categories=[CHAIR], **kw)


def test_npz_reader_errors(tmp_path):
    (tmp_path / "broken.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="broken.npz: not a readable .npz"):
        read_points(tmp_path / "broken.npz")
    np.savez(tmp_path / "p.npz", points=np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"missing keys \['occupancies'\]"):
        read_points(tmp_path / "p.npz")
    np.savez(tmp_path / "q.npz", points=np.zeros((16, 3)), occupancies=np.zeros(1, np.uint8))
    with pytest.raises(ValueError, match="expected np.packbits of 16 flags"):
        read_points(tmp_path / "q.npz")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        read_pointcloud(tmp_path / "missing.npz")
    with pytest.raises(FileNotFoundError):
        read_cameras(tmp_path / "missing.npz")


def test_loader_on_synthetic_data(tiny_shapes, tmp_path):
    ds = ShapeNetViews(
        tiny_shapes, "train", set_size=4, resolution=32, cache_dir=tmp_path / "c", progress=False
    )
    assert len(ds) == 2  # 1 train object per category at N = 3
    assert ds[0]["images"].shape == (4, 3, 32, 32)
    pts = ds.points(0)
    assert pts.points.shape == (100_000, 3) and pts.occupancies.dtype == bool


def test_fingerprint_hashes_content(tiny_shapes, tmp_path):
    """Same bytes, same fingerprint (whatever the root or the mtimes); one changed byte of any
    file the loader reads, with names and sizes unchanged, another fingerprint."""
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(tiny_shapes, root)
    ds = ShapeNetViews(root, "train", set_size=2, resolution=16, cache_dir=tmp_path / "c", progress=False)
    base = ds.fingerprint()
    assert base == ShapeNetViews(tiny_shapes, "train", set_size=2, resolution=16, cache_dir=tmp_path / "c",
                                 progress=False).fingerprint()  # fmt: skip
    obj = ds.objects[0].path

    def flip_middle_byte(path):
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))

    view = ds.objects[1].views[3]
    os.utime(view, (0, 0))
    assert ds.fingerprint() == base  # mtime is not content
    for path in (view, obj / "img_choy2016" / "cameras.npz", obj / "points.npz", obj / "pointcloud.npz"):
        original = path.read_bytes()
        flip_middle_byte(path)
        assert ds.fingerprint() != base, path.name
        path.write_bytes(original)
        assert ds.fingerprint() == base
    # One value rewritten by numpy far from the middle: the archive's CRC (in its sampled tail) changes.
    pts = dict(np.load(obj / "points.npz"))
    pts["points"][30_000] += 0.25  # byte ~180k of ~600k: outside the head, middle and tail samples
    np.savez(obj / "points.npz", **pts)
    assert ds.fingerprint() != base
    assert ShapeNetViews(root, "val", set_size=2, resolution=16, cache_dir=tmp_path / "c",
                         progress=False).fingerprint() != base  # fmt: skip
