"""The calibration ladder: normalised scores against hand-worked values, the paired bootstrap,
and the ladder's order on tiny data."""

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks import regression
from benchmarks.faces import run_calibrated_faces
from benchmarks.ladder import check_single_process, normalise, reference_key, shapes_calibration


def test_normalise_hand_worked_both_directions():
    assert normalise(0.6, 0.8, 0.4) == pytest.approx(0.5)  # IoU: higher is better
    assert normalise(10.0, 2.0, 20.0) == pytest.approx(10 / 18)  # CD: lower is better, same formula
    assert normalise(0.9, 0.8, 0.4) == pytest.approx(1.25)  # better than the ceiling: > 1
    assert np.isnan(normalise(0.5, 0.5, 0.5))


def _objects(path, values: dict, categories=("a", "b"), per_category=3):
    """An objects.csv with table1a k=1 rows: values[category] -> per-object iou list."""
    rows = []
    for c in categories:
        for j, v in enumerate(values[c][:per_category]):
            rows.append({"category": c, "synset": c, "object_id": f"o{j}", "table": "table1a", "k": 1,
                         "iou": v, "cd": 10 * (1 - v)})  # fmt: skip
    path.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(path / "objects.csv", index=False)
    return path


def test_shapes_calibration_equals_a_naive_computation(tmp_path):
    rng = np.random.default_rng(0)
    vals = {n: {c: list(rng.uniform(lo, lo + 0.1, 3)) for c in "ab"} for n, lo in
            (("m", 0.5), ("c", 0.8), ("f", 0.2))}  # fmt: skip
    m, c, f = (_objects(tmp_path / n, vals[n]) for n in ("m", "c", "f"))
    cal = shapes_calibration(m, c, f, 500, 0).set_index(["table", "metric", "k"])
    mean = {n: np.mean([np.mean(vals[n][cat]) for cat in "ab"]) for n in vals}
    row = cal.loc[("table1a", "iou", 1)]
    assert row["normalised"] == pytest.approx((mean["m"] - mean["f"]) / (mean["c"] - mean["f"]))
    assert row.ci_low < row["normalised"] < row.ci_high and row.n == 6
    cd = cal.loc[("table1a", "cd", 1)]  # cd = 10 (1 - iou): the same normalised score
    assert cd["normalised"] == pytest.approx(row["normalised"])
    # Two objects per category: no interval.
    m2, c2, f2 = (_objects(tmp_path / f"{n}2", vals[n], per_category=2) for n in ("m", "c", "f"))
    small = shapes_calibration(m2, c2, f2, 500, 0)
    assert small.ci_low.isna().all() and small.normalised.notna().all()


def test_a_floor_as_high_as_the_ceiling_gives_no_scale(tmp_path):
    """A metric on which real sets of something else score within 10% of the ceiling gets no
    normalised score (it would divide by noise), and the row says why."""
    vals = {"m": {c: [0.5, 0.52, 0.54] for c in "ab"}, "c": {c: [0.90, 0.91, 0.92] for c in "ab"},
            "f": {c: [0.86, 0.87, 0.88] for c in "ab"}}  # fmt: skip
    m, c, f = (_objects(tmp_path / n, vals[n]) for n in ("m", "c", "f"))
    row = shapes_calibration(m, c, f, 200, 0).set_index(["table", "metric", "k"]).loc[("table1a", "iou", 1)]
    assert np.isnan(row.normalised) and np.isnan(row.ci_low) and row.note.startswith("no scale")
    cd = shapes_calibration(m, c, f, 200, 0).set_index(["table", "metric", "k"]).loc[("table1a", "cd", 1)]
    assert np.isfinite(cd.normalised) and cd.note == ""  # cd = 10 (1 - iou): 0.9 vs 1.3, a real span


def test_faces_ladder_orders_oracle_above_the_floor_and_caches_the_references(tmp_path):
    """On 24 fixture identities (the regression job's weak 16-px verifier) the oracle's
    `recon and real` AUC is above the floor's: measured 0.672 vs 0.554, asserted margin 0.1.
    The normalised scores get a paired interval (24 >= 3 identities); a second calibrated run
    copies every reference from the cache and writes the same calibration."""
    cfg = regression.faces_config()
    cfg.max_identities = 24
    data, models = regression.FIXTURE_DATA["faces"], regression.FIXTURE_MODELS
    kw = {"embedder": str(models["verifier"]), "cache_dir": tmp_path / "cache", "progress": False}
    said = []
    sdn = str(models["sdn-faces"])
    run_calibrated_faces(sdn, data, tmp_path / "m", cfg, references=True, echo=said.append, **kw)
    cal = pd.read_csv(tmp_path / "m" / "calibration.csv").set_index(["table", "metric", "k"])
    row = cal.loc[("recon and real", "auc", cfg.set_size)]
    assert row.ceiling > row.floor + 0.1
    scaled = cal[cal.note.isna()]  # rows without a scale (ladder.MIN_SPAN) have no score or interval
    assert len(scaled) >= 6 and scaled.ci_low.notna().all() and (scaled.ci_low <= scaled.ci_high).all()
    assert cal[cal.note.notna()].normalised.isna().all()
    assert (tmp_path / "m" / "calibration.md").read_text().count("ref:oracle") >= 1
    assert "calibration.md" in (tmp_path / "m" / "index.md").read_text()
    ladder = json.loads((tmp_path / "m" / "references" / "ladder.json").read_text())
    assert [r["source"] for r in ladder["references"]] == ["scored"] * 3
    oracle = pd.read_csv(tmp_path / "m" / "references" / "oracle" / "summary.csv")
    assert not oracle[oracle.curve == "free samples"].empty  # the oracle samples real sets
    copy = pd.read_csv(tmp_path / "m" / "references" / "copy" / "summary.csv")
    assert copy[copy.curve == "free samples"].empty  # copy cannot sample: no free-sample curve

    run_calibrated_faces(sdn, data, tmp_path / "m2", cfg, references=True, echo=said.append, **kw)
    ladder = json.loads((tmp_path / "m2" / "references" / "ladder.json").read_text())
    assert [r["source"] for r in ladder["references"]] == ["cache"] * 3
    first, again = (tmp_path / m / "calibration.csv" for m in ("m", "m2"))
    assert again.read_text() == first.read_text()
    # Without references, a previous calibration is removed from the folder.
    run_calibrated_faces(sdn, data, tmp_path / "m2", cfg, echo=said.append, **kw)
    assert not again.exists() and not (tmp_path / "m2" / "references").exists()
    manifest = json.loads((tmp_path / "m2" / "manifest.json").read_text())
    assert not [f for f in manifest["files"] if f.startswith("calibration")]
    assert "calibration.md" not in (tmp_path / "m2" / "index.md").read_text()


def test_reference_key_ignores_where_and_how_but_not_what():
    manifest = {
        "benchmark": "faces", "command": "x", "wall_s": 3.0, "machine": {"cpus": 2}, "model": {"spec": "a"},
        "config": {"seed": 0, "workers": 2}, "data": {"root": "/a", "fingerprint": "f"},
    }  # fmt: skip
    moved = {**manifest, "command": "y", "wall_s": 9.0, "machine": {"cpus": 16}, "model": {"spec": "b"},
             "config": {"seed": 0, "workers": 1}, "data": {"root": "/b", "fingerprint": "f"}}  # fmt: skip
    assert reference_key("faces", "oracle", manifest) == reference_key("faces", "oracle", moved)
    other = {**manifest, "data": {"root": "/a", "fingerprint": "g"}}
    assert reference_key("faces", "oracle", manifest) != reference_key("faces", "oracle", other)
    assert reference_key("faces", "oracle", manifest) != reference_key("faces", "copy", manifest)
    reseeded = {**manifest, "config": {"seed": 1, "workers": 2}}
    assert reference_key("faces", "oracle", manifest) != reference_key("faces", "oracle", reseeded)


def test_references_refused_under_torchrun(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="one process"):
        check_single_process(True)
    check_single_process(False)
