"""Leak checks between a training set and evaluated splits (sdn.data.overlap)."""

import json
import shutil

import pytest

from sdn.data.overlap import check_disjoint, object_signature
from sdn.data.synthetic_shapes.generate import ShapesConfig, generate_shapes


def _shapes(root, seed, count):
    cfg = ShapesConfig(categories=["lamp"], objects_per_category=count, views=1, resolution=16, seed=seed)
    generate_shapes(root, cfg, workers=1)
    return root


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("overlap")
    return {
        "default": _shapes(tmp / "default", 0, 5),
        "bigger": _shapes(tmp / "bigger", 0, 10),  # the same seed: objects 0-4 again, re-split
        "other": _shapes(tmp / "other", 1, 10),
    }


def test_a_larger_set_with_the_same_seed_is_refused(sets):
    with pytest.raises(ValueError, match=r"shares \d+ objects with the val/test split .*another seed"):
        check_disjoint(sets["bigger"], [sets["default"]])


def test_another_seed_is_disjoint(sets):
    record = check_disjoint(sets["other"], [sets["default"]])
    assert record["train_objects"] == 7  # 70% of 10
    assert [c["splits"] for c in record["disjoint_from"]] == [["val", "test"], ["val", "test"]]
    assert record["disjoint_from"][1]["objects"] == 2  # 5 objects: 1 val + 1 test


def test_shared_objects_are_found_by_parameters_not_names(sets, tmp_path):
    root = shutil.copytree(sets["other"], tmp_path / "renamed")
    synset = next(p for p in root.iterdir() if p.is_dir())
    train = (synset / "train.lst").read_text().split()
    test = (synset / "test.lst").read_text().split()
    # The same object under another name, in other colours: still shared.
    clone = synset / ("0" * 32)
    shutil.copytree(synset / test[0], clone)
    record = json.loads((clone / "params.json").read_text())
    record["palette"] = [[0.0, 0.0, 0.0]] * len(record["palette"])
    (clone / "params.json").write_text(json.dumps(record))
    assert object_signature(clone) == object_signature(synset / test[0])
    (synset / "train.lst").write_text("\n".join([*train, clone.name]) + "\n")
    with pytest.raises(ValueError, match=r"shares 1 objects with the val/test split"):
        check_disjoint(root, [])


def test_real_layout_objects_are_identified_by_id(tmp_path):
    obj = tmp_path / "02691156" / "abc"
    obj.mkdir(parents=True)
    assert object_signature(obj) == "id:02691156/abc"


def test_the_occnet_trainer_refuses_a_leaking_set_before_training(sets, tmp_path):
    from occnet_multiview.config import occnet_preset
    from occnet_multiview.trainer import train_occnet

    with pytest.raises(ValueError, match="shares"):
        train_occnet(sets["bigger"], occnet_preset("tiny"), tmp_path / "run", held_out=[sets["default"]])
    assert not (tmp_path / "run").exists()


def test_nested_training_subsets(sets, tmp_path):
    from sdn.data.shapenet import ShapeNetViews

    def ids(n):
        ds = ShapeNetViews(sets["other"], "train", set_size=1, resolution=16, cache_dir=tmp_path,
                           progress=False, max_per_category=n)  # fmt: skip
        return [o.object_id for o in ds.objects]

    assert len(ids(3)) == 3 and ids(3) == ids(5)[:3] and len(ids(None)) == 7
    with pytest.raises(ValueError, match="max_per_category"):
        ids(0)


def test_unwritten_objects_are_identified_by_their_planned_parameters(sets, tmp_path):
    """A split listed but not written (``--splits train,val``) still counts: before the fix its
    objects were identified by name, so a leak into an unwritten test split went unseen."""
    from sdn.data.overlap import split_signatures

    written = split_signatures(sets["default"], ["test"])
    root = shutil.copytree(sets["default"], tmp_path / "unwritten")
    synset = next(p for p in root.iterdir() if p.is_dir())
    for oid in (synset / "test.lst").read_text().split():
        shutil.rmtree(synset / oid)
    assert split_signatures(root, ["test"]) == written  # the same signatures, from generation.json
    with pytest.raises(ValueError, match=r"shares \d+ objects with the val/test split"):
        check_disjoint(sets["bigger"], [root])
    (root / "generation.json").unlink()
    with pytest.raises(ValueError, match=r"missing and .*generation.json does not exist"):
        split_signatures(root, ["test"])
