"""The synthetic mini-ShapeNet: layout, geometry, cameras, determinism, resume."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
import yaml
from PIL import Image

from sdn.data.shapenet import ShapeNetViews
from sdn.data.synthetic_shapes import generate as gen
from sdn.data.synthetic_shapes.categories import CATEGORIES, resolve_categories
from sdn.data.synthetic_shapes.generate import (
    ShapesConfig,
    build_object,
    generate_shapes,
    split_ids,
)

from .conftest import TINY


def objects(root: Path):
    return sorted(p for p in root.glob("*/*") if p.is_dir() and not p.name.startswith("."))


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every dataset file except the run log (which records timings)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "generation.json"
    }


def test_layout_keys_shapes_dtypes(tiny_shapes):
    objs = objects(tiny_shapes)
    assert len(objs) == 6
    for obj in objs:
        pts = np.load(obj / "points.npz")
        assert set(pts.files) == {"points", "occupancies", "loc", "scale"}
        assert pts["points"].shape == (100_000, 3) and pts["points"].dtype == np.float16
        assert pts["occupancies"].dtype == np.uint8 and pts["occupancies"].shape == (12_500,)
        assert pts["loc"].shape == (3,) and pts["scale"].shape == ()
        assert np.abs(pts["points"]).max() <= 0.55
        pc = np.load(obj / "pointcloud.npz")
        assert set(pc.files) == {"points", "normals", "loc", "scale"}
        assert pc["points"].shape == pc["normals"].shape == (100_000, 3)
        assert pc["points"].dtype == pc["normals"].dtype == np.float16
        cams = np.load(obj / "img_choy2016" / "cameras.npz")
        for i in range(TINY["views"]):
            assert cams[f"camera_mat_{i}"].shape == (3, 3)
            assert cams[f"world_mat_{i}"].shape == (3, 4)
            img = Image.open(obj / "img_choy2016" / f"{i:03d}.png")
            assert img.size == (32, 32) and img.mode == "RGB"
        assert not (obj / "img_choy2016" / f"{TINY['views']:03d}.png").exists()
        assert (obj / "model.ply").is_file()


def test_packbits_round_trip_matches_analytic_occupancy(tiny_shapes, tiny_shapes_config):
    obj = objects(tiny_shapes)[0]
    record = json.loads((obj / "params.json").read_text())
    category = resolve_categories([record["synset"]])[0]
    ns, _, _ = build_object(tiny_shapes_config, category, record["index"])
    pts = np.load(obj / "points.npz")
    occ = np.unpackbits(pts["occupancies"])[:100_000].astype(bool)
    np.testing.assert_array_equal(occ, ns.occupancy(pts["points"].astype(np.float32)))
    assert 0.005 < occ.mean() < 0.6


def test_split_lists_and_metadata(tiny_shapes):
    meta = yaml.safe_load((tiny_shapes / "metadata.yaml").read_text())
    assert set(meta) == set(TINY["categories"])
    for synset, entry in meta.items():
        assert entry["id"] == synset and entry["synthetic"] is True and entry["name"]
        lists = {
            s: (tiny_shapes / synset / f"{s}.lst").read_text().splitlines() for s in ("train", "val", "test")
        }
        all_ids = [i for ids in lists.values() for i in ids]
        assert all(i.strip() == i and i for i in all_ids)
        assert len(all_ids) == len(set(all_ids)) == 3
        assert {p.name for p in (tiny_shapes / synset).iterdir() if p.is_dir()} == set(all_ids)


@pytest.mark.parametrize(
    "n,expected",
    [(50, (35, 5, 10)), (10, (7, 1, 2)), (4, (2, 1, 1)), (3, (1, 1, 1)), (2, (2, 0, 0))],
)
def test_split_fractions(n, expected):
    s = split_ids(ShapesConfig(objects_per_category=n), "03001627")
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == expected
    assert split_ids(ShapesConfig(objects_per_category=n), "03001627") == s


def test_normalised_mesh_watertight_and_occupancy_agrees_with_containment(tiny_shapes):
    rng = np.random.default_rng(0)
    for obj in objects(tiny_shapes):
        mesh = trimesh.load(obj / "model.ply", process=False)
        assert mesh.is_watertight
        lo, hi = mesh.bounds
        np.testing.assert_allclose((lo + hi) / 2, 0.0, atol=1e-6)
        assert abs((hi - lo).max() - 1.0) < 1e-6
        pts = np.load(obj / "points.npz")
        occ = np.unpackbits(pts["occupancies"])[:100_000].astype(bool)
        idx = rng.choice(100_000, 2048, replace=False)
        inside = mesh.contains(pts["points"][idx].astype(np.float64))
        assert (inside == occ[idx]).mean() >= 0.99, obj


def test_surface_samples_on_zero_level_with_outward_normals(tiny_shapes, tiny_shapes_config):
    """Surface samples lie within 1.5 grid cells (1/128 of the unit edge) of the SDF zero
    level, and their normals agree with the SDF gradient."""
    for obj in objects(tiny_shapes)[:3]:
        record = json.loads((obj / "params.json").read_text())
        ns, _, _ = build_object(
            tiny_shapes_config, resolve_categories([record["synset"]])[0], record["index"]
        )
        pc = np.load(obj / "pointcloud.npz")
        p = pc["points"][:5000].astype(np.float32)
        d = ns.solid.sdf(ns.to_raw(p)) / ns.scale
        assert np.quantile(np.abs(d), 0.99) < 1.5 / 128
        eps = 1e-3
        grad = np.stack(
            [
                ns.solid.sdf(ns.to_raw(p + e)) - ns.solid.sdf(ns.to_raw(p - e))
                for e in np.eye(3, dtype=np.float32) * eps
            ],
            axis=1,
        )
        grad /= np.linalg.norm(grad, axis=1, keepdims=True) + 1e-12
        cos = np.einsum("ij,ij->i", grad, pc["normals"][:5000].astype(np.float32))
        assert np.median(cos) > 0.95


def test_cameras_project_surface_onto_object_pixels(tiny_shapes):
    """Surface points visible in a view project onto non-background pixels: this checks
    K, [R|t] and the documented pixel convention together."""
    from sdn.data.occnet_files import read_cameras

    for obj in objects(tiny_shapes)[:2]:
        cams = read_cameras(obj / "img_choy2016" / "cameras.npz")
        mesh = trimesh.load(obj / "model.ply", process=False)
        pc = np.load(obj / "pointcloud.npz")["points"][:3000].astype(np.float64)
        for i in range(3):
            R, t = cams.Rt[i, :, :3].astype(np.float64), cams.Rt[i, :, 3].astype(np.float64)
            np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-5)
            xc = pc @ R.T + t
            assert (xc[:, 2] > 0).all()
            uv = (xc @ cams.K[i].T.astype(np.float64))[:, :2] / xc[:, 2:3]
            img = np.asarray(Image.open(obj / "img_choy2016" / f"{i:03d}.png")).astype(int)
            cols, rows = np.floor(uv).astype(int).T
            assert ((cols >= 0) & (cols < 32) & (rows >= 0) & (rows < 32)).all()
            # Only count points that face the camera (others may be hidden).
            centre = -R.T @ t
            _, ray_idx, _ = mesh.ray.intersects_location(
                np.repeat(centre[None], len(pc), 0), pc - centre, multiple_hits=False
            )
            assert len(ray_idx) > 100
            background = (img[rows, cols] >= 250).all(axis=1)
            assert background.mean() < 0.05


def test_views_differ_and_show_an_object(tiny_shapes):
    obj = objects(tiny_shapes)[0]
    imgs = [np.asarray(Image.open(obj / "img_choy2016" / f"{i:03d}.png")).astype(float) for i in range(3)]
    for im in imgs:
        fg = (im < 250).any(axis=2).mean()
        assert 0.02 < fg < 0.9
    assert np.abs(imgs[0] - imgs[1]).mean() > 1.0


def test_deterministic_across_worker_counts(tmp_path, tiny_shapes):
    other = tmp_path / "w2"
    generate_shapes(other, ShapesConfig(**TINY), workers=2, progress=False)
    assert tree_digest(other) == tree_digest(tiny_shapes)
    # Two separately generated copies: the same data fingerprint under different roots.
    for split in ("train", "val", "test"):
        a, b = (
            ShapeNetViews(r, split, set_size=2, resolution=16, cache_dir=tmp_path / "c", progress=False)
            for r in (other, tiny_shapes)
        )
        assert a.fingerprint() == b.fingerprint()


def test_resume_after_interruption(tmp_path, tiny_shapes, monkeypatch):
    root = tmp_path / "resume"
    calls = {"n": 0}
    real_render = gen.render

    def flaky_render(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt("simulated crash")
        return real_render(*args, **kwargs)

    monkeypatch.setattr(gen, "render", flaky_render)
    with pytest.raises(KeyboardInterrupt):
        generate_shapes(root, ShapesConfig(**TINY), workers=1, progress=False)
    finished = objects(root)
    assert len(finished) == 3  # only whole objects are visible after the crash
    for obj in finished:
        assert (obj / "model.ply").is_file() and (obj / "points.npz").is_file()
    monkeypatch.setattr(gen, "render", real_render)
    run = generate_shapes(root, ShapesConfig(**TINY), workers=1, progress=False)
    assert run["objects_skipped"] == 3 and run["objects_generated"] == 3
    assert not list(root.glob("*/.tmp-*"))
    assert tree_digest(root) == tree_digest(tiny_shapes)
    record = json.loads((root / "generation.json").read_text())
    assert len(record["runs"]) == 1 and record["config"]["seed"] == TINY["seed"]


def test_resume_with_other_settings_is_refused(tiny_shapes):
    with pytest.raises(ValueError, match="differs in: resolution"):
        generate_shapes(tiny_shapes, ShapesConfig(**{**TINY, "resolution": 64}), workers=1, progress=False)


def test_test_split_only_then_resume_with_all_splits(tmp_path, tiny_shapes):
    root = tmp_path / "test-only"
    cfg = ShapesConfig(**TINY)
    run = generate_shapes(root, cfg, workers=1, progress=False, splits=("test",))
    assert run["objects_generated"] == 2 and run["splits"] == ["test"]
    full = tree_digest(tiny_shapes)
    lists = {s: split_ids(cfg, s) for s in TINY["categories"]}
    not_test = {f"{s}/{oid}" for s, ls in lists.items() for split in ("train", "val") for oid in ls[split]}
    expected = {k: v for k, v in full.items() if "/".join(k.split("/")[:2]) not in not_test}
    assert sum(k.endswith("/model.ply") for k in expected) == 2
    # Byte for byte the test objects, complete .lst files and metadata.yaml of the full run.
    assert tree_digest(root) == expected
    assert [p.relative_to(root).as_posix() for p in objects(root)] == sorted(
        f"{s}/{oid}" for s, ls in lists.items() for oid in ls["test"]
    )
    with pytest.raises(ValueError, match="differs in: seed"):
        generate_shapes(root, ShapesConfig(**{**TINY, "seed": 8}), progress=False, splits=("train",))
    run = generate_shapes(root, ShapesConfig(**TINY), workers=1, progress=False)
    assert run["objects_skipped"] == 2 and run["objects_generated"] == 4
    assert tree_digest(root) == full
    record = json.loads((root / "generation.json").read_text())
    assert [r["splits"] for r in record["runs"]] == [["test"], ["train", "val", "test"]]
    assert record["config"] == json.loads((tiny_shapes / "generation.json").read_text())["config"]


@pytest.mark.parametrize("splits", [(), ("test", "dev")])
def test_bad_splits(tmp_path, splits):
    with pytest.raises(ValueError, match="splits must be a non-empty subset of train, val, test"):
        generate_shapes(tmp_path / "x", ShapesConfig(**TINY), progress=False, splits=splits)
    assert not (tmp_path / "x").exists()


def test_bad_config_values():
    with pytest.raises(ValueError, match="objects_per_category must be >= 1"):
        ShapesConfig(objects_per_category=0).validate()
    with pytest.raises(ValueError, match="unknown category 'spoon'"):
        ShapesConfig(categories=["spoon"]).validate()


@pytest.mark.parametrize("category", CATEGORIES, ids=lambda c: c.name)
def test_every_family_varies_and_meshes_watertight(category):
    cfg = ShapesConfig(mesh_cells=40)
    params, volumes = [], []
    for i in range(3):
        ns, p, palette = build_object(cfg, category, i)
        assert ns.mesh.is_watertight, (category.name, i)
        params.append(p)
        volumes.append(ns.mesh.volume)
        assert palette.shape == (4, 3)
    continuous = [k for k, v in params[0].items() if isinstance(v, float)]
    discrete = [k for k, v in params[0].items() if not isinstance(v, float)]
    assert len(continuous) >= 5 and len(discrete) >= 1, params[0]
    assert len({json.dumps(p, sort_keys=True) for p in params}) == 3
    assert np.ptp(volumes) > 0.01 * np.mean(volumes)
