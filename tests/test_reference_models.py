"""Reference set models (benchmarks/models/references.py) on the committed regression fixtures:
shapes 3 categories x 4 test objects x 16 views, faces 96 test identities x 12 images, 32 px."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from benchmarks.faces import FacesBenchConfig, open_identities
from benchmarks.models.references import AVAILABLE, DEFAULT_FACES_CROP, REFERENCES, reference_model
from benchmarks.shapenet import ShapeNetBenchConfig, open_split

FIXTURES = Path(__file__).resolve().parents[1] / "benchmarks" / "baselines" / "fixtures" / "data"
SHAPES, FACES = FIXTURES / "shapes", FIXTURES / "faces"
WITHOUT_SAMPLE = {"copy", "same-category", "other-category", "other-identity"}


def _context(benchmark, data, cache, **over):
    fields = dict(
        benchmark=benchmark, data=data, split="test", resolution=32, seed=0, cache_dir=cache,
        categories=None, set_size=8 if benchmark == "faces" else None,
    )  # fmt: skip
    fields.update(over)
    return SimpleNamespace(**fields)


def _u8(images: torch.Tensor) -> np.ndarray:
    """float images = uint8 / 255 -> the uint8 pixels (numpy's rint: torch's round is slow here)."""
    return np.rint(images.numpy() * np.float32(255)).astype(np.uint8)


def _owners(images_of_item, count):
    """{uint8 bytes of an image: (item, image index)} over every image of every item."""
    out = {}
    for i in range(count):
        imgs = images_of_item(i)
        u8 = _u8(imgs)
        for v, x in enumerate(u8):
            out[x.tobytes()] = (i, v)
    return out


def _where(owners, images):
    """(item, image) of each image (k, 3, H, W), None for an unknown one."""
    u8 = _u8(images)
    return [owners.get(x.tobytes()) for x in u8]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ref-cache")


@pytest.fixture(scope="module")
def shapes(cache):
    """The shapes benchmark's own loader, its real sets, an owner map and the four models."""
    ds = open_split(SHAPES, ShapeNetBenchConfig(), 32, cache, progress=False)
    real = torch.stack([ds[i]["images"] for i in range(len(ds))])  # (12, 16, 3, 32, 32)
    owners = _owners(lambda i: ds.images(i, range(len(ds.objects[i].views))), len(ds))
    models = {n: reference_model(n, _context("shapenet", SHAPES, cache)) for n in AVAILABLE["shapenet"]}
    return SimpleNamespace(ds=ds, real=real, owners=owners, models=models)


@pytest.fixture(scope="module")
def faces(cache):
    cfg = FacesBenchConfig(context_sizes=(1, 4, 8))  # the fixture has 12 images per identity
    ds, picks = open_identities(FACES, cfg, 32, cache, progress=False)
    real = torch.stack([ds[i]["images"] for i in picks])  # (96, 8, 3, 32, 32)
    owners = _owners(lambda i: ds.images(i, range(len(ds.identities[i].paths))), len(ds))
    models = {n: reference_model(n, _context("faces", FACES, cache)) for n in AVAILABLE["faces"]}
    return SimpleNamespace(ds=ds, real=real, owners=owners, models=models)


def test_every_benchmark_image_is_in_the_index(shapes, faces):
    """The benchmarks' own loaders serve pixels the models find: every real set reconstructs."""
    for data, k in ((shapes, 8), (faces, 4)):
        for name, model in data.models.items():
            out = model.reconstruct(data.real[:, :k], 3, seed=list(range(len(data.real))))
            assert out.shape == (len(data.real), 3, 3, 32, 32) and out.dtype == torch.float32, name
            assert float(out.min()) >= 0 and float(out.max()) <= 1
            assert all(w is not None for w in _where(data.owners, out.flatten(0, 1))), name


@pytest.mark.parametrize("k", [1, 4, 8, 12])
def test_oracle_returns_other_images_of_the_same_object(shapes, k):
    oracle, real = shapes.models["oracle"], shapes.real
    out = oracle.reconstruct(real[:, :k], 16, seed=list(range(100, 100 + len(real))))
    for i in range(len(real)):
        inputs = set(_where(shapes.owners, real[i, :k]))
        got = _where(shapes.owners, out[i])
        assert {item for item, _ in got} == {i}
        assert not inputs & set(got)
        others = 16 - k
        # slots 0..A-1 are the A other views, each once; later slots repeat them
        assert len(set(got[:others])) == others
        assert set(got) == {(i, v) for v in range(16)} - inputs


def test_oracle_with_every_view_as_input_raises(shapes):
    with pytest.raises(ValueError, match="none is left to return"):
        shapes.models["oracle"].reconstruct(shapes.real[:1], 16, seed=[0])


def test_same_and_other_category(shapes):
    ds, real = shapes.ds, shapes.real
    seeds = list(range(len(real)))
    same = shapes.models["same-category"].reconstruct(real[:, :4], 20, seed=seeds)
    other = shapes.models["other-category"].reconstruct(real[:, :4], 20, seed=seeds)
    for i in range(len(real)):
        s_items = {item for item, _ in _where(shapes.owners, same[i])}
        o_items = {item for item, _ in _where(shapes.owners, other[i])}
        assert len(s_items) == 1 and len(o_items) == 1  # one other object per set
        (s,), (o,) = s_items, o_items
        assert s != i and ds.objects[s].synset == ds.objects[i].synset
        assert ds.objects[o].synset != ds.objects[i].synset
        # its 16 views first (each once), then draws with replacement
        assert len(set(_where(shapes.owners, same[i, :16]))) == 16


def test_other_items_vary_with_the_seed(shapes):
    """The other object is a seeded choice: over seeds, every same-category candidate appears."""
    model, ds = shapes.models["same-category"], shapes.ds
    seen = set()
    for s in range(40):
        out = model.reconstruct(shapes.real[:1, :4], 1, seed=[s])
        seen.add(_where(shapes.owners, out[0])[0][0])
    assert seen == {j for j, o in enumerate(ds.objects) if o.synset == ds.objects[0].synset and j != 0}


def test_copy_returns_only_input_images(shapes, faces):
    for data, k in ((shapes, 3), (faces, 2)):
        out = data.models["copy"].reconstruct(data.real[:, :k], 10, seed=list(range(len(data.real))))
        for i in range(len(data.real)):
            assert set(_where(data.owners, out[i])) <= set(_where(data.owners, data.real[i, :k]))
        x = data.real[:2, :k]
        again = data.models["copy"].reconstruct(x, 10, seed=[0, 1])
        assert all(any(torch.equal(o, y) for y in x[b]) for b in range(2) for o in again[b])


def test_faces_oracle_and_other_identity(faces):
    ds, real = faces.ds, faces.real
    seeds = list(range(len(real)))
    oracle = faces.models["oracle"].reconstruct(real[:, :4], 8, seed=seeds)
    other = faces.models["other-identity"].reconstruct(real[:, :4], 8, seed=seeds)
    picks = [faces.owners[_u8(x).tobytes()][0] for x in real[:, 0]]
    for b, i in enumerate(picks):
        inputs = set(_where(faces.owners, real[b, :4]))
        got = _where(faces.owners, oracle[b])
        assert {item for item, _ in got} == {i} and not inputs & set(got)
        assert len(set(got)) == 8  # 12 images, 4 in the input: 8 others, each once
        o_items = {item for item, _ in _where(faces.owners, other[b])}
        assert len(o_items) == 1 and i not in o_items
    assert len(ds) == 96


def test_faces_crop_is_the_benchmarks_default():
    assert DEFAULT_FACES_CROP == FacesBenchConfig().crop


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_outputs_are_functions_of_seed_set_and_slot(shapes, faces, name):
    data = shapes if name in AVAILABLE["shapenet"] else faces
    model, x = data.models[name], data.real[:2, :4]
    both = model.reconstruct(x, 12, seed=[11, 22])
    assert torch.equal(both, model.reconstruct(x, 12, seed=[11, 22]))
    assert torch.equal(both[0], model.reconstruct(x[:1], 12, seed=[11])[0])
    assert torch.equal(both[1], model.reconstruct(x[1:], 12, seed=[22])[0])
    assert torch.equal(both[:, :5], model.reconstruct(x, 5, seed=[11, 22]))  # slot j ignores n_out
    swapped = model.reconstruct(x.flip(0), 12, seed=[22, 11])
    assert torch.equal(swapped, both.flip(0))
    assert not torch.equal(both, model.reconstruct(x, 12, seed=[12, 23]))
    # an int seed stands for per-set seeds set_seed(seed, STREAM_RECON, b), like the SDN
    assert torch.equal(model.reconstruct(x, 12, seed=5), model.reconstruct(x, 12, seed=5))


def test_an_image_outside_the_split_raises(shapes, faces):
    for data in (shapes, faces):
        for name, model in data.models.items():
            x = data.real[:1, :4].clone()
            x[0, 2, 0, 0, 0] = (torch.round(x[0, 2, 0, 0, 0] * 255) + 1) % 256 / 255
            with pytest.raises(ValueError, match="only reconstructs sets of the dataset's split") as e:
                model.reconstruct(x, 4, seed=[0])
            assert "test" in str(e.value) and str(data.ds.root) in str(e.value), name
    mixed = torch.cat([shapes.real[:1, :2], shapes.real[1:2, :2]], dim=1)
    with pytest.raises(ValueError, match="mixes images of several"):
        shapes.models["oracle"].reconstruct(mixed, 4, seed=[0])


def test_bad_inputs_raise(shapes):
    oracle = shapes.models["oracle"]
    with pytest.raises(ValueError, match="works at 32 px"):
        oracle.reconstruct(torch.zeros(1, 2, 3, 16, 16), 4, seed=[0])
    with pytest.raises(ValueError, match="n_out"):
        oracle.reconstruct(shapes.real[:1, :4], 0, seed=[0])
    with pytest.raises(ValueError, match="one seed per set"):
        oracle.reconstruct(shapes.real[:2, :4], 4, seed=[0])


def test_oracle_samples_real_sets(shapes, faces):
    for data, n in ((shapes, 16), (faces, 8)):
        oracle = data.models["oracle"]
        out = oracle.sample(6, n, "learned", seed=[1, 2, 3, 4, 5, 6])
        assert out.shape == (6, n, 3, 32, 32) and out.dtype == torch.float32
        for s in out:
            got = _where(data.owners, s)
            assert all(g is not None for g in got)
            assert len({item for item, _ in got}) == 1 and len(set(got)) == n  # one item, distinct images
        assert torch.equal(out[2:4], oracle.sample(2, n, "learned", seed=[3, 4]))
        assert torch.equal(oracle.sample(3, n, "uniform", seed=7), oracle.sample(3, n, "uniform", seed=7))
        over = oracle.sample(2, 20, "uniform", seed=[0, 1])  # more than an item holds: repeats
        assert all(len({g[0] for g in _where(data.owners, s)}) == 1 for s in over)
    with pytest.raises(ValueError, match="prior"):
        shapes.models["oracle"].sample(2, 4, "flat", seed=[0, 1])
    items = {
        _where(faces.owners, s)[0][0]
        for s in faces.models["oracle"].sample(40, 4, "learned", seed=list(range(40)))
    }
    assert len(items) > 20  # random identities, not a constant


def test_only_the_oracle_and_copy_train_sample(shapes, faces):
    for data in (shapes, faces):
        for name, model in data.models.items():
            assert hasattr(model, "sample") == (name not in WITHOUT_SAMPLE), name
    assert set(REFERENCES) == WITHOUT_SAMPLE | {"oracle", "copy-train"}


def test_describe(shapes, faces):
    for data in (shapes, faces):
        for name, model in data.models.items():
            d = model.describe()
            assert d["name"] == name == model.name and d["kind"] == "reference"
            assert d["dataset"] == str(data.ds.root) and d["split"] == "test"
            assert isinstance(d["definition"], str) and d["definition"]
            assert model.resolution == 32


def test_unknown_names_raise(cache):
    with pytest.raises(ValueError, match=r"'nope'.*oracle.*copy.*same-category.*other-category"):
        reference_model("nope", _context("shapenet", SHAPES, cache))
    with pytest.raises(ValueError, match=r"'other-identity'.*faces benchmark only.*oracle"):
        reference_model("other-identity", _context("shapenet", SHAPES, cache))
    with pytest.raises(ValueError, match=r"'same-category'.*shapenet benchmark only.*other-identity"):
        reference_model("same-category", _context("faces", FACES, cache))
    with pytest.raises(ValueError, match="unknown benchmark"):
        reference_model("oracle", _context("bogus", SHAPES, cache))


def test_other_resolution_and_categories(cache):
    """At another working resolution (and a category subset) the models still find the
    benchmark loader's pixels; other-category needs two categories."""
    ds = open_split(SHAPES, ShapeNetBenchConfig(categories=["03001627", "02691156"]), 16, cache, False)
    ctx = _context("shapenet", SHAPES, cache, resolution=16, categories=["03001627", "02691156"])
    model = reference_model("other-category", ctx)
    x = torch.stack([ds[i]["images"][:4] for i in range(len(ds))])
    out = model.reconstruct(x, 4, seed=list(range(len(ds))))
    assert out.shape == (len(ds), 4, 3, 16, 16)
    with pytest.raises(ValueError, match="at least two categories"):
        reference_model("other-category", _context("shapenet", SHAPES, cache, categories=["chair"]))
    native = reference_model("copy", _context("shapenet", SHAPES, cache, resolution=None))
    assert native.resolution == 32  # the fixture's files are 32 px


def test_copy_train_samples_are_the_novelty_sections_training_sets(tiny_shapes, tmp_path):
    """``ref:copy-train`` reconstructs as ``copy`` and samples real sets of the training split,
    exactly the sets the novelty section reads (:func:`benchmarks.distribution.open_training_sets`)."""
    from benchmarks.distribution import training_sets_or_note

    context = _context("shapenet", tiny_shapes, tmp_path, train_split="train")
    model = reference_model("copy-train", context)
    train, note = training_sets_or_note("shapenet", tiny_shapes, "train", 4, 32, 0, tmp_path)
    assert note == "" and len(train) == 2
    sets = model.sample(5, 4, "learned", seed=list(range(5)))
    known = {_u8(train[i]["images"]).tobytes() for i in range(len(train))}
    assert all(_u8(s).tobytes() in known for s in sets)
    again = model.sample(2, 4, "uniform", seed=[3, 4])
    assert torch.equal(again, sets[3:])  # a set is a function of its seed
    test = open_split(tiny_shapes, ShapeNetBenchConfig(real_views=4), 32, tmp_path, progress=False)
    real = torch.stack([test[i]["images"] for i in range(len(test))])
    copy = reference_model("copy", context)
    assert torch.equal(model.reconstruct(real, 6, seed=[0, 1]), copy.reconstruct(real, 6, seed=[0, 1]))
    with pytest.raises(ValueError, match="must differ from the evaluated split"):
        reference_model("copy-train", _context("shapenet", tiny_shapes, tmp_path, train_split="test"))
