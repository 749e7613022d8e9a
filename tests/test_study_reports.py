"""The study drivers' reports (benchmarks/perf/occnet_study.py, sdn_search.py) on hand-made run folders."""

import json

import pandas as pd
from click.testing import CliRunner

from benchmarks.perf import occnet_study, sdn_search


def _run(folder, sessions, **record):
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"sessions": sessions, **record}))


def test_occnet_study_compares_variants_at_the_steps_all_reached(tmp_path):
    variants = (("n455", [500, 1000], [0.40, 0.45]), ("n2600", [500, 1000, 1500], [0.42, 0.5, 0.55]))
    for name, steps, ious in variants:
        folder = tmp_path / name
        lowered = {"step": 1000, "train.lr": [1e-4, 3e-5], "train.max_minutes": [40, 20]}
        changes = [lowered] if name == "n2600" else []
        _run(folder, [{"start_step": 0, "end_step": steps[-1], "wall_s": 2.0 * steps[-1]}],
             train_objects=455 if name == "n455" else 2600, leak_check={"train_objects": 2600},
             config_changes=changes,
             best={"best_iou": max(ious), "step": steps[ious.index(max(ious))],
                   "best_threshold": 0.3})  # fmt: skip
        pd.DataFrame({"step": steps, "best_iou": ious, "best_threshold": 0.3}).to_csv(folder / "eval.csv")
    out, records = tmp_path / "doc.md", tmp_path / "records.json"
    args = ["report", "--work", str(tmp_path), "--out", str(out), "--records", str(records)]
    r = CliRunner().invoke(occnet_study.main, args)
    assert r.exit_code == 0, r.output
    text = out.read_text()
    # A lowered learning rate is part of what was trained; a longer sitting is not.
    lr = "train.train_per_category=200, train.lr=3e-05 from step 1000"
    assert f"| n2600 | {lr} | 2600 | 1500 | 2.00 | 50 | 0.550 (1500, 0.3) |" in text
    assert "| n455 | train.train_per_category=35 | 455 | 1000 |" in text  # the subset, not the split
    per_step = text.split("per evaluated step (-: not reached):")[1]
    assert "| step | n455 | n2600 |" in per_step and "| 1000 | 0.450 | 0.500 |" in per_step
    assert "| 1500 | - | 0.550 |" in per_step  # n455 never reached 1500
    assert (tmp_path / "doc.png").is_file() and "![validation IoU against steps](doc.png)" in text
    # A variant whose run folder is gone is reported from its committed record.
    occnet_study.store_record(records, occnet_study.variant_record(tmp_path / "n455", "n455"))
    (tmp_path / "n455" / "eval.csv").unlink()
    r = CliRunner().invoke(occnet_study.main, args)
    assert r.exit_code == 0, r.output
    assert out.read_text() == text


def test_sdn_search_reports_the_best_selection_score_and_missing_intervals(tmp_path):
    folder = tmp_path / "wide-s0"
    _run(folder, [{"start_step": 0, "end_step": 2000, "wall_s": 3000.0}])
    tag1, tag16 = sdn_search.SELECTION_FIELDS
    rows = []
    for step, s1, s16 in ((1000, 0.2, 0.3), (2000, 0.4, 0.2)):
        rows.append({"step": step, tag1: 0.5, f"{tag1}_norm": s1, f"{tag1}_norm_lo": s1 - 0.1,
                     f"{tag1}_norm_hi": s1 + 0.1, tag16: 0.6, f"{tag16}_norm": s16,
                     "selection_score": (s1 + s16) / 2})  # fmt: skip
    pd.DataFrame(rows).to_csv(folder / "eval.csv", index=False)
    out, records = tmp_path / "doc.md", tmp_path / "records.json"
    args = ["report", "--work", str(tmp_path), "--out", str(out), "--records", str(records)]
    r = CliRunner().invoke(sdn_search.main, args)
    assert r.exit_code == 0, r.output
    line = next(x for x in out.read_text().splitlines() if x.startswith("| wide-s0"))
    assert line.startswith("| wide-s0 | 2000 | 50 | 1.50 | 2000 | 0.300 | 0.500 / 0.40 [0.30, 0.50] ")
    assert "0.600 / 0.20 [n too small]" in line
    # The shipped reference, scored by the same selection, is one more row (training from its manifest).
    shipped = {**rows[0], "sha256": "ab" * 32, "step": 6000, "wall_s": 1200.0}
    (tmp_path / "shipped").mkdir()
    (tmp_path / "shipped" / "score.json").write_text(json.dumps(shipped))
    r = CliRunner().invoke(sdn_search.main, args)
    assert r.exit_code == 0, r.output
    line = next(x for x in out.read_text().splitlines() if x.startswith("| shipped"))
    assert line.startswith("| shipped sdn-shapes-cpu32.pt (abababababab) | 6000 | 20 | 0.20 | 6000 | 0.250 ")
    # Run folders do not outlive a machine: the committed records keep every row, byte for byte.
    text = out.read_text()
    elsewhere = tmp_path / "new-machine"
    elsewhere.mkdir()
    args = ["report", "--work", str(elsewhere), "--out", str(out), "--records", str(records)]
    r = CliRunner().invoke(sdn_search.main, args)
    assert r.exit_code == 0, r.output
    assert out.read_text() == text


def test_checkpoint_objects_agree_with_the_trainers_validation(tiny_shapes, tmp_path):
    """The single-view per-object IoUs behind the paired comparison average to the trainer's
    eval.csv figure (same objects, same thresholds); 4 pooled views are scored beside them."""
    from occnet_multiview.config import occnet_preset
    from occnet_multiview.trainer import train_occnet
    from sdn.config import apply_overrides

    overrides = ["train.steps=3", "train.eval_every=3", "train.checkpoint_every=3", "train.precision=fp32",
                 "train.val_objects=0", f"train.thresholds={occnet_study.THRESHOLDS}"]  # fmt: skip
    cfg = apply_overrides(occnet_preset("tiny"), overrides)
    train_occnet(tiny_shapes, cfg, tmp_path / "run", progress=False, cache_dir=tmp_path / "c")
    last = pd.read_csv(tmp_path / "run" / "eval.csv").iloc[-1]
    e = occnet_study.checkpoint_objects(tmp_path / "run" / "checkpoint.pt", str(tiny_shapes))
    one, four = e["views"]["1"], e["views"]["4"]
    assert e["step"] == 3 and one["threshold"] == last.best_threshold
    assert len(one["iou"]) == len(four["iou"]) == len(e["objects"]) == len(e["categories"]) > 0
    assert abs(sum(one["iou"]) / len(one["iou"]) - last.best_iou) < 1e-5


def test_pooled_validation_views_extend_the_single_view(tiny_shapes, tmp_path):
    from occnet_multiview.config import occnet_preset
    from occnet_multiview.trainer import validation_dataset

    cfg = occnet_preset("tiny")
    one = validation_dataset(tiny_shapes, cfg, tmp_path, progress=False)
    four = validation_dataset(tiny_shapes, cfg, tmp_path, progress=False, views=4)
    for i in range(len(one)):
        v1, v4 = one.view_choice(i), four.view_choice(i)
        assert len(v4) == len(set(v4.tolist())) == 4 and v4[0] == v1[0]


def _entry(step, ious, categories, views="1"):
    objects = [f"{c}/{i}" for i, c in enumerate(categories)]
    return {"step": step, "objects": objects, "categories": categories,
            "views": {views: {"threshold": 0.2, "iou": ious}}}  # fmt: skip


CATS = ["a"] * 4 + ["b"] * 4
REF = [0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.5, 0.5]
PLUS = [x + 0.1 for x in REF[:4]] + [x + 0.3 for x in REF[4:]]  # category means +0.1 and +0.3


def test_paired_rows_against_a_hand_worked_difference():
    other_objects = {**_entry(100, PLUS, CATS), "objects": [f"x/{i}" for i in range(8)]}
    rows = occnet_study.paired_rows(
        [
            ("n2600", _entry(100, PLUS, CATS)),
            ("elsewhere", other_objects),
            ("k4", _entry(100, PLUS, CATS, "4")),
        ],
        ("n455", _entry(100, REF, CATS)),
    )
    assert [r["variant"] for r in rows] == ["n2600"]  # other objects, or views the reference lacks: left out
    r = rows[0]
    assert r["reference"] == "n455" and r["views"] == "1" and r["n"] == 8 and abs(r["diff"] - 0.2) < 1e-12
    assert abs(r["ci_low"] - 0.2) < 1e-9 and abs(r["ci_high"] - 0.2) < 1e-9  # constant within categories
    few = occnet_study.paired_difference(_entry(1, PLUS[:4], ["a", "a", "b", "b"]),
                                         _entry(1, REF[:4], ["a", "a", "b", "b"]), "1")  # fmt: skip
    assert abs(few["diff"] - 0.1) < 1e-12 and few["ci_low"] != few["ci_low"]  # NaN: n too small


def test_pooling_gain_is_the_paired_difference_of_4_views_and_1():
    e = _entry(100, REF, CATS)
    e["views"]["4"] = {"threshold": 0.3, "iou": PLUS}
    g = occnet_study.pooling_gain(e)
    assert g["n"] == 8 and abs(g["diff"] - 0.2) < 1e-12
    assert occnet_study.pooling_gain(_entry(100, REF, CATS)) is None


def test_records_keep_the_per_object_figures_of_earlier_steps(tmp_path):
    records = tmp_path / "records.json"
    for step, ious in ((100, REF), (200, PLUS)):
        occnet_study.store_record(records, {"variant": "n455", "steps": step,
                                            "objects": {str(step): _entry(step, ious, CATS)}})  # fmt: skip
    stored = occnet_study.load_records(records)["n455"]
    assert stored["steps"] == 200 and sorted(stored["objects"]) == ["100", "200"]
    lines = "\n".join(occnet_study.comparison_lines(
        [stored, {"variant": "n2600", "objects": {"200": _entry(200, REF, CATS)}}],
        {"variant": "shipped", "sha256": "c45c92713829abcd", "objects": {"6000": _entry(6000, REF, CATS)}},
    ))  # fmt: skip
    assert "Paired differences at step 200:" in lines and "Paired differences at step 100:" not in lines
    assert "| n2600 | n455 | 200 | 1 | 8 | -0.200 | [-0.200, -0.200] |" in lines
    # the last scored step against the shipped OccNet, named by its sha256 (the file is replaced)
    assert "| n455 | shipped c45c92713829 | 200 | 1 | 8 | +0.200 |" in lines
    assert "| n455 | 100 | 0.375 (0.2) | - | - |" in lines


def _selection_report(folder, ious):
    """A selection report's objects.csv: Table 1(a) IoU per object at k = 1 and 16."""
    folder.mkdir(parents=True)
    rows = [{"category": f"c{i // 3}", "synset": f"0{i // 3}", "object_id": f"o{i}", "table": "table1a",
             "k": k, "iou": iou + (0.05 if k == 16 else 0.0)}
            for i, iou in enumerate(ious) for k in (1, 16)]  # fmt: skip
    pd.DataFrame(rows).to_csv(folder / "objects.csv", index=False)


def test_sdn_search_pairs_the_best_step_with_the_shipped_sdn(tmp_path):
    """A run restarted from the shipped SDN: its best step's Table 1(a) IoU minus the shipped
    one's on the same objects (+0.1 on every object: interval [+0.1, +0.1]), and its label
    names the restart, the lowered rates and the changed precision."""
    base = [0.3, 0.4, 0.5, 0.2, 0.6, 0.4, 0.5, 0.5, 0.3]
    _selection_report(tmp_path / "shipped" / "selection" / "step_0012943", base)
    folder = tmp_path / "final-lr4-s0"
    changes = {"train.lr_g": [1e-4, 2.5e-5], "train.precision": ["bf16", "fp32"]}
    restart = {"step": 12943, "from": "/x/checkpoints/sdn-shapes-cpu32.pt", "sha256": "cd" * 32,
               "config_changes": changes}  # fmt: skip
    _run(folder, [{"start_step": 12943, "end_step": 14000, "wall_s": 1000.0}], restarts=[restart])
    _selection_report(folder / "selection" / "step_0014000", [v + 0.1 for v in base])
    tag1, tag16 = sdn_search.SELECTION_FIELDS
    row = {"step": 14000, tag1: 0.5, f"{tag1}_norm": 0.4, tag16: 0.6, f"{tag16}_norm": 0.5,
           "selection_score": 0.45}  # fmt: skip
    pd.DataFrame([row]).to_csv(folder / "eval.csv", index=False)
    shipped = {**row, "sha256": "ab" * 32, "step": 12943, "wall_s": 1200.0}
    (tmp_path / "shipped" / "score.json").write_text(json.dumps(shipped))
    out, records = tmp_path / "doc.md", tmp_path / "records.json"
    args = ["report", "--work", str(tmp_path), "--out", str(out), "--records", str(records)]
    r = CliRunner().invoke(sdn_search.main, args)
    assert r.exit_code == 0, r.output
    line = next(x for x in out.read_text().splitlines() if x.startswith("| final-lr4-s0"))
    label = "of sdn-shapes-cpu32.pt (cdcdcdcdcdcd); train.lr_g 0.0001→2.5e-05, train.precision "
    assert f"{label}bf16→fp32 |" in line
    assert line.endswith("| +0.100 [+0.100, +0.100] | +0.100 [+0.100, +0.100] |")
    other = tmp_path / "elsewhere"
    _selection_report(other, base[:6])  # other objects: no pairing
    assert sdn_search.paired_vs(folder / "selection" / "step_0014000", other) is None
    assert sdn_search.paired_vs(tmp_path / "missing", other) is None
    args = [
        "paired",
        str(folder / "selection" / "step_0014000"),
        str(tmp_path / "shipped" / "selection" / "step_0012943"),
    ]
    r = CliRunner().invoke(sdn_search.main, args)
    assert r.exit_code == 0 and "Table 1(a) IoU k16: +0.100 [+0.100, +0.100] (n = 9)" in r.output, r.output
    r = CliRunner().invoke(
        sdn_search.main, ["paired", str(folder / "selection" / "step_0014000"), str(other)]
    )
    assert r.exit_code == 2 and "other objects scored" in r.output
