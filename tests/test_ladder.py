"""The calibration ladder: normalised scores against hand-worked values, the paired bootstrap,
and the ladder's order on tiny data."""

import numpy as np
import pandas as pd
import pytest

from benchmarks import regression
from benchmarks.faces import load_faces_model, run_faces_benchmark
from benchmarks.ladder import normalise, shapes_calibration, write_calibration


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


def test_faces_ladder_orders_oracle_above_the_floor(tmp_path):
    """On 24 fixture identities (the regression job's weak 16-px verifier) the oracle's
    `recon and real` AUC is above the floor's: measured 0.672 vs 0.554, asserted margin 0.1."""
    cfg = regression.faces_config()
    cfg.max_identities = 24
    data, models = regression.FIXTURE_DATA["faces"], regression.FIXTURE_MODELS
    kw = {"embedder": str(models["verifier"]), "cache_dir": tmp_path / "cache", "progress": False}
    sdn = load_faces_model(str(models["sdn-faces"]), data, cfg, tmp_path / "cache")
    run_faces_benchmark(sdn, data, tmp_path / "m", cfg, **kw)
    for name in ("oracle", "other-identity", "copy"):
        ref = load_faces_model(f"ref:{name}", data, cfg, tmp_path / "cache", resolution=sdn.model.resolution)
        run_faces_benchmark(ref, data, tmp_path / "m" / "references" / name, cfg, **kw)
    cal = write_calibration("faces", tmp_path / "m", 100, 0).set_index(["table", "metric", "k"])
    row = cal.loc[("recon and real", "auc", cfg.set_size)]
    assert row.ceiling > row.floor + 0.1
    assert (tmp_path / "m" / "calibration.md").read_text().count("ref:oracle") >= 1
    oracle = pd.read_csv(tmp_path / "m" / "references" / "oracle" / "summary.csv")
    assert not oracle[oracle.curve == "free samples"].empty  # the oracle samples real sets
    copy = pd.read_csv(tmp_path / "m" / "references" / "copy" / "summary.csv")
    assert copy[copy.curve == "free samples"].empty  # copy cannot sample: no free-sample curve
