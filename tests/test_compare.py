"""`sdn-bench compare` (benchmarks/compare.py) and the report indexes (benchmarks/report_index.py)."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from benchmarks.cli import main
from benchmarks.compare import (
    DEFAULT_TOLERANCES,
    IncompatibleReports,
    InvalidReport,
    Tolerance,
    compare_main,
    compare_markdown,
    compare_reports,
    load_report,
    load_tolerances,
    resolve_tolerance,
    write_compare,
)
from benchmarks.faces import run_faces_benchmark
from benchmarks.report_index import write_combined_index, write_index
from benchmarks.shapenet import run_shapenet_benchmark
from evaluation.intervals import N_TOO_SMALL
from tests.test_faces_benchmark import tiny_config, tiny_faces_run  # noqa: F401 (tiny_faces_run: a fixture)
from tests.test_shapenet_benchmark import tiny_bench_config, tiny_checkpoints  # noqa: F401 (a fixture)

# The make bench subset's reference (39 objects, 3 per category): its intervals exist.
REFERENCE = Path(__file__).resolve().parents[1] / "reports" / "reference" / "shapes"
COMPARE_COLUMNS = {
    "file",
    "metric",
    "direction",
    "baseline_mean",
    "baseline_ci_low",
    "baseline_ci_high",
    "baseline_n",
    "current_mean",
    "current_ci_low",
    "current_ci_high",
    "current_n",
    "delta",
    "rel_delta",
    "tolerance",
    "tolerance_rule",
    "status",
}
# A tiny PNG (1x1), enough for the index tests.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def _rows() -> list[dict]:
    rows = []
    for curve in ("real", "recon"):
        for size in (1, 4):
            for metric, mean, half in (("auc", 0.9, 0.02), ("tpr@1e-2", 0.6, 0.05), ("eer", 0.1, 0.02)):
                rows.append(dict(curve=curve, context_size=size, metric=metric, mean=mean, n=50))
                rows[-1].update(ci_low=mean - half, ci_high=mean + half)
            rows.append(
                dict(curve=curve, context_size=size, metric="n_pos", mean=100, ci_low=100, ci_high=100, n=1)
            )
    return rows


def make_report(
    path: Path, benchmark="faces", fingerprint="fp1", rows=None, config=None, subset="s1", **manifest_entries
) -> Path:
    """A faces-like report: tidy summary.csv, raw curves.csv, summary.md, one figure, manifest
    (``subset=None``: an old-format manifest without data.subset_sha256)."""
    path.mkdir(parents=True)
    cols = ["curve", "context_size", "metric", "mean", "ci_low", "ci_high", "n"]
    pd.DataFrame(rows if rows is not None else _rows(), columns=cols).to_csv(
        path / "summary.csv", index=False
    )
    pd.DataFrame({"curve": ["real"] * 3, "fpr": [0, 0.5, 1], "tpr": [0, 0.9, 1]}).to_csv(
        path / "curves.csv", index=False
    )
    (path / "summary.md").write_text("# Faces benchmark\n\n| curve | auc |\n|---|---:|\n| real | 0.900 |\n")
    (path / "fig8a roc.png").write_bytes(PNG)
    manifest = {
        "benchmark": benchmark,
        "command": "sdn-bench faces --out x",
        "config": config or {"seed": 0},
        "data": {"fingerprint": fingerprint, "root": "data/faces"},
        "model": {"spec": "checkpoints/sdn-faces.pt", "kind": "sdn", "sha256": "ab" * 32},
        "files": ["curves.csv", "fig8a roc.png", "summary.csv", "summary.md", "manifest.json"],
        "wall_s": 12.5,
        **manifest_entries,
    }
    if subset is not None:
        manifest["data"]["subset_sha256"] = subset
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def edit(path: Path, file: str, where: dict, **values) -> None:
    """Set ``values`` (mean / ci_low / ci_high ...) on the rows of ``file`` matching ``where``."""
    df = pd.read_csv(path / file, dtype=str, keep_default_na=False)
    sel = pd.Series(True, index=df.index)
    for col, v in where.items():
        sel &= df[col] == str(v)
    assert sel.sum() >= 1
    for col, v in values.items():
        df.loc[sel, col] = str(v)
    df.to_csv(path / file, index=False)


def status_of(result, **where) -> list[str]:
    t = result.table
    sel = pd.Series(True, index=t.index)
    for col, v in where.items():
        sel &= t[col].astype(str) == str(v)
    return t[sel].status.tolist()


@pytest.fixture
def pair(tmp_path):
    return make_report(tmp_path / "current"), make_report(tmp_path / "baseline")


# ----------------------------------------------------------------------------- synthetic reports


def test_identical_reports_exit_0_and_outputs(pair, tmp_path, capsys):
    cur, base = pair
    out = tmp_path / "cmp"
    assert compare_main(cur, base, None, out) == 0
    assert "0 regressed" in capsys.readouterr().out
    df = pd.read_csv(out / "compare.csv")
    assert COMPARE_COLUMNS | {"curve", "context_size"} <= set(df.columns)
    assert len(df) == 16  # summary.csv only: curves.csv is raw data, not a summary
    assert set(df.status) == {"ok", "untracked"}
    assert set(df[df.status == "untracked"].metric) == {"n_pos"}
    assert (df.delta == 0).all()
    md = (out / "compare.md").read_text()
    assert md.index("## Regressions") < md.index("## summary.csv")
    assert "None." in md
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["compare_auc.png", "compare_eer.png", "compare_n_pos.png", "compare_tpr@1e-2.png"]


def test_regression_beyond_tolerance_with_disjoint_cis(pair, tmp_path, capsys):
    cur, base = pair
    edit(
        cur,
        "summary.csv",
        dict(curve="recon", context_size=4, metric="auc"),
        mean=0.8,
        ci_low=0.78,
        ci_high=0.82,
    )
    assert compare_main(cur, base, None, tmp_path / "cmp") == 1
    printed = capsys.readouterr().out
    assert re.search(r"REGRESSED auc .*curve=recon, context_size=4.*0\.9 -> 0\.8 \(-0\.1", printed)
    result = compare_reports(cur, base)
    assert result.exit_code == 1
    reg = result.regressions
    assert len(reg) == 1 and reg.iloc[0].metric == "auc" and reg.iloc[0].delta == pytest.approx(-0.1)
    assert reg.iloc[0].tolerance == pytest.approx(0.01)
    md = (tmp_path / "cmp" / "compare.md").read_text()
    regressions = md[md.index("## Regressions") : md.index("## summary.csv")]
    assert "| recon | 4 | auc |" in regressions and "**regressed**" in regressions


def test_lower_is_better_regresses_upwards(pair):
    cur, base = pair
    edit(
        cur,
        "summary.csv",
        dict(curve="real", context_size=1, metric="eer"),
        mean=0.2,
        ci_low=0.18,
        ci_high=0.22,
    )
    assert status_of(compare_reports(cur, base), curve="real", context_size=1, metric="eer") == ["regressed"]


def test_overlapping_cis_or_small_change_is_not_a_regression(pair):
    cur, base = pair
    # 0.03 below (3x the 0.01 tolerance) but [0.85, 0.89] overlaps the baseline's [0.88, 0.92].
    edit(
        cur,
        "summary.csv",
        dict(curve="real", context_size=1, metric="auc"),
        mean=0.87,
        ci_low=0.85,
        ci_high=0.89,
    )
    # Disjoint intervals but within tolerance (0.005 < 0.01).
    edit(base, "summary.csv", dict(curve="real", context_size=4, metric="auc"), ci_low=0.899, ci_high=0.901)
    edit(
        cur,
        "summary.csv",
        dict(curve="real", context_size=4, metric="auc"),
        mean=0.895,
        ci_low=0.894,
        ci_high=0.896,
    )
    result = compare_reports(cur, base)
    assert result.exit_code == 0
    assert status_of(result, curve="real", metric="auc") == ["ok", "ok"]


def test_improvement_is_reported_and_exits_0(pair, tmp_path, capsys):
    cur, base = pair
    edit(cur, "summary.csv", dict(curve="recon", metric="eer"), mean=0.05, ci_low=0.04, ci_high=0.06)
    assert compare_main(cur, base, None, tmp_path / "cmp") == 0
    assert "improved eer" in capsys.readouterr().out
    result = compare_reports(cur, base)
    assert status_of(result, curve="recon", metric="eer") == ["improved", "improved"]
    assert "## Improvements" in (tmp_path / "cmp" / "compare.md").read_text()


def test_untracked_metric_never_regresses_and_nan_does(pair):
    cur, base = pair
    edit(cur, "summary.csv", dict(metric="n_pos"), mean=1, ci_low=1, ci_high=1)
    edit(
        cur,
        "summary.csv",
        dict(curve="real", context_size=1, metric="tpr@1e-2"),
        mean="",
        ci_low="",
        ci_high="",
    )
    result = compare_reports(cur, base)
    assert set(status_of(result, metric="n_pos")) == {"untracked"}
    row = result.regressions
    assert len(row) == 1 and row.iloc[0].metric == "tpr@1e-2" and row.iloc[0].note == "current mean is NaN"


def test_extra_conditions_in_current_are_reported_not_errors(pair, tmp_path, capsys):
    cur, base = pair
    rows = [r for r in _rows() if r["context_size"] == 1]
    shutil.rmtree(base)
    make_report(base, rows=rows, config={"seed": 0, "workers": 4})  # workers: execution only
    assert compare_main(cur, base, None, tmp_path / "cmp") == 0
    result = compare_reports(cur, base)
    assert len(result.table) == 8 and len(result.extra) == 8
    assert any("context_size=4" in e for e in result.extra)
    assert "config.workers differs (execution only): baseline 4, current (absent)" in result.notes
    assert "only in current" in capsys.readouterr().out


def test_subset_keys_are_notes_when_the_subset_agrees(tmp_path):
    """max_objects 13 of a 13-object split and no max_objects score the same subset."""
    base = make_report(tmp_path / "baseline", config={"seed": 0, "max_objects": 13})
    cur = make_report(tmp_path / "current")
    result = compare_reports(cur, base)
    assert result.exit_code == 0
    assert "config.max_objects differs (subset): baseline 13, current (absent)" in result.notes


@pytest.mark.parametrize(
    "change, reason",
    [
        (dict(benchmark="shapenet"), "benchmark differs: baseline 'faces', current 'shapenet'"),
        (dict(fingerprint="fp2"), "data.fingerprint differs: baseline 'fp1', current 'fp2'"),
        (dict(subset="s2"), "data.subset_sha256 differs: baseline 's1', current 's2'"),
        (dict(subset=None), "report {cur} has no data.subset_sha256: it is an old-format report"),
        (dict(config={"seed": 1}), "config.seed differs: baseline 0, current 1"),
        (
            dict(config={"seed": 0, "neg_per_pos": 5}),
            "config.neg_per_pos differs: baseline (absent), current 5",
        ),
        (
            dict(
                embedder={"name": "verifier", "sha256": "ef" * 32},
                baseline_embedder={"name": "verifier", "sha256": "12" * 32},
            ),
            "embedder.sha256 differs: baseline '" + "12" * 32 + "', current '" + "ef" * 32 + "'",
        ),
        (dict(rows=[r for r in _rows() if r["curve"] == "real"]), "8 condition(s) of the baseline missing"),
    ],
)
def test_incompatible_reports_exit_2_with_reason(tmp_path, capsys, change, reason):
    change = dict(change)
    embedder = change.pop("baseline_embedder", None)
    base = make_report(tmp_path / "baseline", **({"embedder": embedder} if embedder else {}))
    cur = make_report(tmp_path / "current", **change)
    reason = reason.format(cur=cur)
    assert compare_main(cur, base, None, tmp_path / "cmp") == 2
    assert reason in capsys.readouterr().err
    assert not (tmp_path / "cmp").exists()
    with pytest.raises(IncompatibleReports, match=re.escape(reason)) as e:
        compare_reports(cur, base)
    assert isinstance(e.value, ValueError)
    if "missing" in reason:
        assert "curve=recon, context_size=1, metric=auc" in str(e.value)


def test_missing_summary_file_is_incompatible(pair):
    cur, base = pair
    (cur / "summary.csv").unlink()
    manifest = json.loads((cur / "manifest.json").read_text())
    manifest["files"].remove("summary.csv")
    (cur / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IncompatibleReports, match="summary file summary.csv of the baseline is missing"):
        compare_reports(cur, base)


def test_old_format_baseline_is_incompatible_and_models_are_not_a_condition(tmp_path, capsys):
    base = make_report(tmp_path / "baseline", subset=None)
    other_model = {"spec": "checkpoints/other.pt", "kind": "sdn", "sha256": "cd" * 32}
    cur = make_report(tmp_path / "current", model=other_model)
    assert compare_main(cur, base, None, tmp_path / "cmp") == 2
    err = capsys.readouterr().err
    assert f"the baseline report {base} has no data.subset_sha256: it is an old-format report" in err
    shutil.rmtree(base)
    make_report(base)
    result = compare_reports(cur, base)  # another checkpoint on the same subset: the point of comparing
    assert result.exit_code == 0
    assert f"model.sha256 differs (models are compared, not a condition): baseline {'ab' * 32!r}," in (
        "\n".join(result.notes)
    )


# ----------------------------------------------------------------------------- no verdict without an interval


def test_missing_interval_gets_no_verdict(pair, tmp_path):
    cur, base = pair
    # Far below the baseline, but the current interval does not exist (a stratum too small).
    edit(
        cur, "summary.csv", dict(curve="real", context_size=1, metric="auc"), mean=0.5, ci_low="", ci_high=""
    )
    # Far above, but the baseline's interval does not exist.
    edit(base, "summary.csv", dict(curve="real", context_size=4, metric="eer"), ci_low="nan", ci_high="nan")
    edit(
        cur,
        "summary.csv",
        dict(curve="real", context_size=4, metric="eer"),
        mean=0.4,
        ci_low=0.39,
        ci_high=0.41,
    )
    # A baseline whose mean is NaN has nothing to compare against.
    edit(
        base, "summary.csv", dict(curve="recon", context_size=1, metric="eer"), mean="", ci_low="", ci_high=""
    )
    # A current mean that became NaN while the baseline's is finite stays a regression.
    edit(
        cur, "summary.csv", dict(curve="recon", context_size=4, metric="auc"), mean="", ci_low="", ci_high=""
    )
    result = compare_reports(cur, base)
    t = result.table.set_index(["curve", "context_size", "metric"])
    assert t.loc[("real", "1", "auc")][["status", "note"]].tolist() == [
        N_TOO_SMALL,
        "no interval in the current",
    ]
    assert t.loc[("real", "4", "eer")][["status", "note"]].tolist() == [
        N_TOO_SMALL,
        "no interval in the baseline",
    ]
    assert t.loc[("recon", "1", "eer")].status == N_TOO_SMALL
    assert t.loc[("recon", "4", "auc")][["status", "note"]].tolist() == ["regressed", "current mean is NaN"]
    assert result.counts()[N_TOO_SMALL] == 3 and len(result.regressions) == 1
    write_compare(result, tmp_path / "cmp")
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert f"1 regressed, 3 {N_TOO_SMALL}, 4 untracked" in md
    assert "| real | 1 | auc | 0.9 [0.88, 0.92] | 0.5 [nan, nan] |" in md
    assert f"{N_TOO_SMALL} (no interval in the current) |" in md


def test_flag_and_annotation_columns_are_not_conditions(pair):
    cur, base = pair
    # The current report gained a flag and an annotation column that the baseline lacks.
    df = pd.read_csv(cur / "summary.csv")
    df.insert(2, "under_resolved", df.metric.eq("tpr@1e-2") & df.curve.eq("recon"))
    df.insert(3, "applied_noise", 0.0)
    df["text"] = df["mean"].map("{:.2f}".format)
    df.to_csv(cur / "summary.csv", index=False)
    # An under-resolved TPR far below the baseline: no verdict.
    edit(cur, "summary.csv", dict(curve="recon", metric="tpr@1e-2"), mean=0.1, ci_low=0.05, ci_high=0.15)
    result = compare_reports(cur, base)
    assert result.condition_columns == ["curve", "context_size"]
    assert status_of(result, curve="recon", metric="tpr@1e-2") == [N_TOO_SMALL, N_TOO_SMALL]
    assert set(result.table[result.table.status == N_TOO_SMALL].note) == {"under-resolved in the current"}
    assert set(status_of(result, metric="auc")) == {"ok"}
    edit(cur, "summary.csv", dict(curve="real"), under_resolved="maybe")
    with pytest.raises(
        InvalidReport, match=r"flag column 'under_resolved' must be True or False, got \['maybe'\]"
    ):
        compare_reports(cur, base)


def test_realism_and_novelty_files_are_compared_with_their_tolerances(pair):
    """realism.csv / novelty.csv are summary files like any other: precision (higher, abs
    0.05) and copy_fraction (lower, abs 0.05) regress beyond tolerance with disjoint intervals;
    frechet and KID (no interval) and the novelty distances (no direction) are shown untracked;
    n_real is not a condition."""
    cur, base = pair
    free = {"source": "free samples"}
    rows = [
        dict(**free, level="image", metric="frechet", k=0, mean=0.10, ci_low=None, ci_high=None),
        dict(**free, level="set", metric="precision", k=5, mean=0.8, ci_low=0.75, ci_high=0.85),
        dict(**free, level="image", metric="kid", k=0, mean=0.01, ci_low=None, ci_high=None),
    ]
    novelty = [
        dict(**free, metric="d_train_median", set_size=8, mean=0.3, ci_low=0.2, ci_high=0.4, n=20),
        dict(**free, metric="copy_fraction", set_size=8, mean=0.1, ci_low=0.05, ci_high=0.15, n=20),
    ]
    for folder, n_real in ((cur, 40), (base, 41)):
        realism = pd.DataFrame([{**r, "n": 20, "n_real": n_real} for r in rows])
        realism.to_csv(folder / "realism.csv", index=False)
        pd.DataFrame(novelty).to_csv(folder / "novelty.csv", index=False)
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["files"] += ["realism.csv", "novelty.csv"]
        (folder / "manifest.json").write_text(json.dumps(manifest))
    edit(cur, "realism.csv", dict(metric="frechet"), mean=0.5)
    edit(cur, "novelty.csv", dict(metric="copy_fraction"), mean=0.9, ci_low=0.8, ci_high=1.0)
    edit(cur, "realism.csv", dict(metric="precision"), mean=0.6, ci_low=0.55, ci_high=0.65)
    edit(cur, "novelty.csv", dict(metric="d_train_median"), mean=0.9, ci_low=0.8, ci_high=1.0)
    result = compare_reports(cur, base)
    assert status_of(result, metric="copy_fraction") == ["regressed"]
    assert status_of(result, metric="precision") == ["regressed"]
    assert status_of(result, metric="frechet") == ["untracked"]
    assert status_of(result, metric="kid") == ["untracked"]
    assert status_of(result, metric="d_train_median") == ["untracked"]


# ----------------------------------------------------------------------------- aggregate rows only


def shapes_rows(airplane_iou: float = 0.7) -> list[dict]:
    """A ShapeNet-like table: iou and cd per category and for the mean of categories."""
    rows = []
    for category, iou in (("airplane", airplane_iou), ("chair", 0.6), ("mean of categories", 0.65)):
        for metric, mean, half in (("iou", iou, 0.02), ("cd", 5.0, 0.2)):
            rows.append(dict(table="table1a", metric=metric, k=4, category=category, mean=mean, n=3))
            rows[-1].update(ci_low=mean - half, ci_high=mean + half)
    return rows


def make_shapes_report(path: Path, rows: list[dict]) -> Path:
    """A ShapeNet-like report: table1a.csv with a category column, manifest."""
    make_report(path, benchmark="shapenet")
    (path / "summary.csv").unlink()
    cols = ["table", "metric", "k", "category", "mean", "ci_low", "ci_high", "n"]
    pd.DataFrame(rows, columns=cols).to_csv(path / "table1a.csv", index=False)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"] = ["table1a.csv", "manifest.json"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def test_aggregate_only_tracks_aggregate_rows(tmp_path, capsys):
    base = make_shapes_report(tmp_path / "baseline", shapes_rows())
    cur = make_shapes_report(tmp_path / "current", shapes_rows(airplane_iou=0.5))  # one category regressed
    assert status_of(compare_reports(cur, base), category="airplane", metric="iou") == ["regressed"]
    result = compare_reports(cur, base, aggregate_only=True)
    assert result.exit_code == 0
    aggregate = result.table.category == "mean of categories"
    assert set(result.table[aggregate].status) == {"ok"}
    assert set(result.table[~aggregate].status) == {"context"}
    assert set(result.table[~aggregate].note) == {"not an aggregate row"}
    write_compare(result, tmp_path / "cmp")
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "2 ok, 0 improved, 0 regressed, 0 n too small, 0 untracked, 4 context" in md
    assert "- aggregate only: verdicts from aggregate rows" in md
    # The CLI option; a file without a category column (faces) has only aggregate rows.
    runner = CliRunner()
    args = ["compare", str(cur), str(base), "--out", str(tmp_path / "cli")]
    assert runner.invoke(main, args).exit_code == 1
    assert runner.invoke(main, args + ["--aggregate-only"]).exit_code == 0
    faces_base, faces_cur = make_report(tmp_path / "fb"), make_report(tmp_path / "fc")
    edit(faces_cur, "summary.csv", dict(curve="real", context_size=1, metric="auc"), mean=0.5, ci_low=0.49,
         ci_high=0.51)  # fmt: skip
    assert compare_main(faces_cur, faces_base, None, tmp_path / "cmp2", aggregate_only=True) == 1
    assert "context" not in set(compare_reports(faces_cur, faces_base, aggregate_only=True).table.status)


# ----------------------------------------------------------------------------- tolerances


def test_default_table_and_lookup_order():
    assert resolve_tolerance("iou") == Tolerance("higher", abs=0.02)
    assert resolve_tolerance("cd") == Tolerance("lower", rel=0.1)
    assert resolve_tolerance("tpr@1e-3").direction == "higher"
    assert resolve_tolerance("eer").direction == "lower"
    assert resolve_tolerance("n_pos") is None
    overrides = {"tpr@*": Tolerance("higher", abs=0.5), "tpr@1e-3": Tolerance("higher", abs=0.1)}
    assert resolve_tolerance("tpr@1e-3", overrides).abs == 0.1  # exact beats a pattern
    assert resolve_tolerance("tpr@1e-1", overrides).abs == 0.5  # the file beats the defaults
    assert resolve_tolerance("iou", overrides) is DEFAULT_TOLERANCES["iou"]


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_tolerances_file_overrides_defaults(pair, tmp_path, fmt):
    cur, base = pair
    edit(cur, "summary.csv", dict(curve="recon", metric="tpr@1e-2"), mean=0.4, ci_low=0.38, ci_high=0.42)
    edit(cur, "summary.csv", dict(curve="recon", metric="n_pos"), mean=10, ci_low=10, ci_high=10)
    assert set(status_of(compare_reports(cur, base), curve="recon", metric="tpr@1e-2")) == {"regressed"}
    entries = {"tpr@*": {"direction": "higher", "abs": 0.25}, "n_*": {"direction": "higher", "rel": 0.5}}
    path = tmp_path / f"tol.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(entries))
    else:
        path.write_text('"tpr@*": {direction: higher, abs: 0.25}\nn_*:\n  direction: higher\n  rel: 5e-1\n')
    assert load_tolerances(path) == {
        "tpr@*": Tolerance("higher", abs=0.25),
        "n_*": Tolerance("higher", rel=0.5),
    }
    result = compare_reports(cur, base, path)
    assert set(status_of(result, curve="recon", metric="tpr@1e-2")) == {"ok"}
    assert set(status_of(result, curve="recon", metric="n_pos")) == {"regressed"}
    assert set(status_of(result, curve="real", metric="n_pos")) == {"ok"}
    assert compare_main(cur, base, path, tmp_path / "cmp") == 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("iou: {direction: up, abs: 0.1}", "entry 'iou': direction must be 'higher' or 'lower'"),
        ("iou: {direction: higher, abs: 0.1, rel: 0.1}", "entry 'iou': give exactly one of abs or rel"),
        ("iou: {direction: higher}", "entry 'iou': give exactly one of abs or rel"),
        ("iou: {direction: higher, abs: 0.1, tol: 1}", "entry 'iou': unknown key(s) ['tol']"),
        ("'tpr@*': {direction: higher, abs: lots}", "entry 'tpr@*', abs: expected a number, got 'lots'"),
        ("cd: {direction: lower, rel: -0.1}", "entry 'cd', rel: expected a finite number >= 0"),
        ("cd: {direction: lower, rel: true}", "entry 'cd', rel: expected a number, got True"),
        ("cd: 0.1", "entry 'cd': expected a mapping"),
        ("- cd", "expected a mapping of metric -> entry"),
        ("cd: {direction: lower", "cannot parse tolerances file"),
    ],
)
def test_bad_tolerances_file_names_file_and_entry(tmp_path, pair, text, message):
    path = tmp_path / "tol.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)) as e:
        load_tolerances(path)
    assert str(path) in str(e.value)
    cur, base = pair
    assert compare_main(cur, base, path, tmp_path / "cmp") == 2


def test_bad_json_tolerances(tmp_path):
    path = tmp_path / "tol.json"
    path.write_text(json.dumps({"auc": {"direction": "higher", "abs": "0.1x"}}))
    with pytest.raises(ValueError, match=re.escape(f"{path}: entry 'auc', abs: expected a number")):
        load_tolerances(path)


# ----------------------------------------------------------------------------- the reference report


def test_reference_shapenet_report(tmp_path, capsys):
    """compare on a real report against itself (its format: test_reference_report_has_current_format)."""
    base = shutil.copytree(REFERENCE, tmp_path / "baseline")
    cur = shutil.copytree(REFERENCE, tmp_path / "current")
    for path in (base, cur):  # the same subset on both sides, whatever the reference's manifest holds
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["data"]["subset_sha256"] = "reference subset"
        (path / "manifest.json").write_text(json.dumps(manifest))
    result = compare_reports(cur, base)
    assert result.exit_code == 0 and result.regressions.empty and not result.extra
    summaries = {"table1a.csv", "table1b.csv", "table2.csv", "ground_truth.csv", "differences.csv"}
    summaries |= {"novelty.csv", "realism.csv"}
    assert set(result.table.file) == summaries
    assert (result.table[result.table.file == "differences.csv"].status == "untracked").all()
    assert set(result.table[result.table.file != "differences.csv"].status) <= {
        "ok",
        "untracked",
        N_TOO_SMALL,
    }

    where = dict(table="table1a", metric="iou", k=4, category="mean of categories")
    row = pd.read_csv(base / "table1a.csv", dtype=str).set_index(["metric", "k", "category"])
    mean, lo, hi = (
        float(row.loc[("iou", "4", "mean of categories"), c]) for c in ("mean", "ci_low", "ci_high")
    )
    edit(cur, "table1a.csv", where, mean=mean - 0.2, ci_low=lo - 0.2, ci_high=hi - 0.2)
    out = tmp_path / "cmp"
    assert compare_main(cur, base, None, out) == 1
    printed = capsys.readouterr().out
    assert "REGRESSED iou [table1a.csv: table=table1a, k=4, category=mean of categories]" in printed
    assert "1 regressed" in printed
    df = pd.read_csv(out / "compare.csv")
    assert COMPARE_COLUMNS | {"table", "k", "category"} <= set(df.columns)
    reg = df[df.status == "regressed"]
    assert len(reg) == 1 and reg.iloc[0].category == "mean of categories"
    assert math.isclose(reg.iloc[0].delta, -0.2, abs_tol=1e-9)
    metrics = {"cd", "chamfer_l1", "f_score", "iou", "normal_consistency", "occnet_iou"}
    metrics |= {f"delta_{m}" for m in metrics}  # the paired differences, untracked but plotted
    assert metrics <= set(result.table.metric)
    assert {p.name for p in out.glob("*.png")} == {f"compare_{m}.png" for m in set(result.table.metric)}

    # A CI regression that the index of the current report also picks up.
    write_compare(result, cur)
    index = write_index(cur)
    text = index.read_text()
    assert text.startswith("# shapenet report")
    for png in cur.glob("*.png"):
        assert f"]({png.name})" in text
    manifest = json.loads((cur / "manifest.json").read_text())
    assert "Table 1(a)" in text and f"sha256 {manifest['model']['sha256'][:12]}" in text
    assert manifest["data"]["fingerprint"] in text


def test_calibration_is_context_not_a_verdict(tmp_path):
    """Both reports' normalised scores appear in compare.md; a calibration that moved far
    draws no verdict and adds no measurement."""
    base = shutil.copytree(REFERENCE, tmp_path / "baseline")
    cur = shutil.copytree(REFERENCE, tmp_path / "current")
    row = {"table": "table1a", "metric": "iou", "k": 1, "model": 0.5, "ceiling": 0.7, "floor": 0.3, "n": 39}
    for path, s in ((base, 0.5), (cur, -3.0)):
        pd.DataFrame([{**row, "normalised": s, "ci_low": s - 0.1, "ci_high": s + 0.1}]).to_csv(
            path / "calibration.csv", index=False
        )
    plain_dir = shutil.copytree(REFERENCE, tmp_path / "plain")
    (plain_dir / "calibration.csv").unlink(missing_ok=True)
    plain = compare_reports(plain_dir, base)
    result = compare_reports(cur, base)
    assert result.exit_code == 0 and len(result.table) == len(plain.table)
    text = compare_markdown(result)
    assert "## Calibration (context: no verdicts)" in text
    assert "| table1a | iou | 1 | -3.000 [-3.100, -2.900] | 0.500 [0.400, 0.600] |" in text
    assert "## Calibration" not in compare_markdown(compare_reports(plain_dir, plain_dir))


def _fresh_report(request, out: Path, name: str) -> Path:
    """A tiny report written by the current code, made as the benchmark's own tests make theirs."""
    if name.startswith("shapes"):
        sdn_ckpt, occ_ckpt, cache = request.getfixturevalue("tiny_checkpoints")
        data = request.getfixturevalue("tiny_shapes")
        run_shapenet_benchmark(
            sdn_ckpt, occ_ckpt, data, out, tiny_bench_config(), cache_dir=cache, progress=False
        )
    else:
        root, sdn_ckpt, verifier, cache = request.getfixturevalue("tiny_faces_run")
        run_faces_benchmark(
            sdn_ckpt, root, out, tiny_config(), str(verifier), cache_dir=cache, progress=False
        )
    return out


@pytest.mark.parametrize("name", ["shapes", "shapes-65", "faces"])
def test_reference_report_has_current_format(request, tmp_path, name):
    """The committed reference report has the format the current code writes (not its numbers): the
    same CSV files, summary files, CSV columns (conditions, flags, annotations) and metric names, the same
    manifest and config entries, and it is comparable with itself. Regenerate the reference when
    this fails after a format change (see reports/reference/*/manifest.json for the command)."""
    reference = REFERENCE.parent / name
    fresh = _fresh_report(request, tmp_path / "fresh", name)
    ref_m, fresh_m = (json.loads((p / "manifest.json").read_text()) for p in (reference, fresh))
    assert set(ref_m) == set(fresh_m)
    assert set(ref_m["data"]) == set(fresh_m["data"]) and set(ref_m["config"]) == set(fresh_m["config"])
    assert [f for f in ref_m["files"] if not f.endswith(".png")] == [
        f for f in fresh_m["files"] if not f.endswith(".png")
    ]
    ref, new = load_report(reference), load_report(fresh)
    assert sorted(ref.tables) == sorted(new.tables)
    for file in new.tables:
        assert (
            pd.read_csv(reference / file, nrows=0).columns.tolist()
            == pd.read_csv(fresh / file, nrows=0).columns.tolist()
        ), file
        assert ref.conditions[file] == new.conditions[file], file
        assert set(ref.tables[file].metric) == set(new.tables[file].metric), file
    assert compare_reports(reference, reference).exit_code == 0


def test_indexes(tmp_path):
    root = tmp_path / "latest"
    shutil.copytree(REFERENCE, root / "shapes")
    make_report(root / "faces")
    (root / "notes").mkdir()  # not a report: skipped
    path = write_combined_index(root)
    assert path == root / "index.md"
    text = path.read_text()
    assert "[shapes](shapes/index.md)" in text and "[faces](faces/index.md)" in text
    for sub in ("shapes", "faces"):
        for png in (root / sub).glob("*.png"):
            assert f"]({sub}/{png.name.replace(' ', '%20')})" in text
        assert (root / sub / "index.md").is_file()
    assert "Table 1(a)" in text and "Per category" not in text  # headline only; breakdowns linked
    assert "#### Faces benchmark" in text  # summary.md embedded, headings demoted
    faces = (root / "faces" / "index.md").read_text()
    assert "![fig8a roc](fig8a%20roc.png)" in faces and "[summary.csv](summary.csv)" in faces
    assert "Per category" in (root / "shapes" / "index.md").read_text()
    with pytest.raises(FileNotFoundError):
        write_combined_index(root / "notes")


def test_many_conditions_plot_and_invalid_report(tmp_path, capsys):
    rows = [
        dict(curve="noisy", noise=f"{p / 100:g}", metric="auc", mean=0.9, ci_low=0.89, ci_high=0.91, n=20)
        for p in range(60)
    ]
    cols = ["curve", "noise", "metric", "mean", "ci_low", "ci_high", "n"]
    base = make_report(tmp_path / "baseline", rows=[{**r, "context_size": 16} for r in rows])
    cur = make_report(tmp_path / "current", rows=[{**r, "context_size": 16} for r in rows])
    for d in (base, cur):  # a different condition set: curve, noise
        pd.DataFrame(rows, columns=cols).to_csv(d / "summary.csv", index=False)
    edit(cur, "summary.csv", dict(noise="0.5"), mean=0.5, ci_low=0.49, ci_high=0.51)
    out = tmp_path / "cmp"
    assert compare_main(cur, base, None, out) == 1
    assert "REGRESSED auc [summary.csv: curve=noisy, noise=0.5]" in capsys.readouterr().out
    assert (out / "compare_auc.png").stat().st_size > 1000
    edit(cur, "summary.csv", dict(noise="0.1"), mean="high")
    assert compare_main(cur, base, None, out) == 2
    assert "column 'mean' has non-numeric values" in capsys.readouterr().err
