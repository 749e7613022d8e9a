"""The SDN's selection score during training: the benchmark, reduced, on validation data only."""

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks import regression
from benchmarks.selection import FacesSelection, ShapesSelection
from sdn.config import apply_overrides, preset
from sdn.data.synthetic_faces.generate import FacesConfig, generate_faces
from sdn.model import SDN
from sdn.trainer import open_training_data, train_sdn

TINY_SDN = ["train.steps=2", "train.set_size=3", "train.batch_sets=2", "train.eval_sets=2",
            "train.eval_every=2", "train.precision=fp32"]  # fmt: skip
TINY_BENCH = dict(table2_views=(1, 4), dense_points=4000, resolution0=16, upsampling_steps=1)


def test_shapes_selection_scores_the_val_split_into_eval_csv(tiny_shapes, tmp_path):
    occnet = str(regression.FIXTURE_MODELS["occnet"])  # trained: its meshes are not empty
    selection = ShapesSelection(occnet, str(tiny_shapes), objects=2, ks=(1, 4),
                                bench=TINY_BENCH, cache_dir=str(tmp_path / "c"), bootstrap=20)  # fmt: skip
    run = tmp_path / "sdn"
    record = train_sdn(tiny_shapes, apply_overrides(preset("tiny-16"), TINY_SDN), run, progress=False,
                       cache_dir=tmp_path / "c", selection=selection)  # fmt: skip
    ev = pd.read_csv(run / "eval.csv")
    assert list(ev.step) == [2]
    norms = [ev[f"sel_table1a_iou_k{k}_norm"].iloc[0] for k in (1, 4)]
    assert np.isfinite(norms).all() and ev.selection_score.iloc[0] == pytest.approx(np.mean(norms), abs=1e-5)
    assert ev["sel_table1a_iou_k1_norm_lo"].isna().all()  # one object per category: no interval
    assert (run / "selection.png").is_file()
    manifest = json.loads((run / "selection" / "step_0000002" / "manifest.json").read_text())
    assert manifest["data"]["split"] == "val" and manifest["model"]["kind"] == "sdn"
    assert record["selection"]["split"] == "val"
    ladder = json.loads((run / "selection" / "step_0000002" / "references" / "ladder.json").read_text())
    assert {r["name"] for r in ladder["references"]} >= {"oracle", "other-category"}


def test_a_selection_every_that_no_evaluation_reaches_is_refused(tiny_shapes, tmp_path):
    """--selection-every 1100 with evaluations every 500 once trained 14 minutes unscored."""
    cfg = apply_overrides(preset("tiny-16"), TINY_SDN)  # eval_every=2
    with pytest.raises(ValueError, match="selection_every=3 is not a multiple of train.eval_every=2"):
        train_sdn(tiny_shapes, cfg, tmp_path / "sdn", progress=False, selection=lambda *a: {},
                  selection_every=3)  # fmt: skip


def test_faces_selection_scores_exactly_the_identities_the_run_held_out(tmp_path):
    root = tmp_path / "faces"
    generate_faces(root, FacesConfig(identities=12, images_per_identity=8, resolution=32, test_fraction=0.25,
                                     seed=3), progress=False)  # fmt: skip
    cfg = apply_overrides(preset("tiny-16", "faces"), TINY_SDN)
    train_sdn(root, cfg, tmp_path / "sdn", dataset="faces", progress=False, cache_dir=tmp_path / "c")
    from evaluation.verifier import verifier_preset
    from evaluation.verifier_trainer import train_verifier

    vcfg = apply_overrides(verifier_preset("tiny"), ["train.steps=2", "train.precision=fp32"])
    train_verifier(root, vcfg, tmp_path / "verifier", progress=False, cache_dir=tmp_path / "c")
    t = cfg.train
    selection = FacesSelection(str(tmp_path / "verifier" / "best.pt"), str(root), t.eval_sets, t.set_size,
                               seed=t.seed, cache_dir=str(tmp_path / "c"), bootstrap=20)  # fmt: skip
    model = SDN.from_checkpoint(tmp_path / "sdn" / "checkpoint.pt")
    sets = open_training_data("faces", root, t, model.resolution, tmp_path / "c", progress=False)
    held = {sets.val.identities[int(i)].class_id for i in sets.val_items}
    assert set(selection.identities(model.resolution)) == held
    out = selection(model, 2, tmp_path / "run")
    assert np.isfinite(out["selection_score"])
    manifest = json.loads((tmp_path / "run" / "selection" / "step_0000002" / "manifest.json").read_text())
    assert manifest["data"]["split"] == "train" and manifest["data"]["identities"] == len(held)
