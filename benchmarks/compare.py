"""Compare a benchmark report against a baseline report: the CI regression check.

Works for any benchmark whose report folder follows DESIGN.md §3.4. The *summary*
files of a report are the CSVs named in ``manifest.json["files"]`` whose columns
include ``metric, mean, ci_low, ci_high, n``. Raw per-object / per-pair files
(``objects.csv``, ``curves.csv``) have no ``mean`` column and are skipped.

Columns of a summary. ``mean, ci_low, ci_high, n`` are the *values*. Two kinds of
column are neither values nor conditions, so that a report that gains one can still
be joined with a baseline that lacks it:

- *flags* (``FLAG_COLUMNS``: ``under_resolved``): a boolean per row (``True`` /
  ``False``, an empty cell is false). A row flagged in either report gets no verdict
  (status ``n too small``, see below);
- *annotations* (``ANNOTATION_COLUMNS``: ``text``, ``applied_noise``, ``n_real``): derived from the
  conditions, the values and the settings (a printed form of the mean, the applied
  label-noise fraction round(p·n)/n, realism.csv's ``n_real``: the real images or sets a
  realism figure was measured against); ignored.

Every other column is a *condition* column (``table, k, category`` for ShapeNet;
``curve, context_size, noise`` for faces). Rows of current and baseline are joined on
(file, condition columns); condition values are compared as the strings written in
the CSV.

Regression rule. For a tracked metric with direction *higher* (or *lower*) is
better, let ``delta = current mean - baseline mean`` and let the allowed change be
``abs`` or ``rel x |baseline mean|``. The row is

- ``regressed`` when the mean moves the wrong way by more than the allowed change
  AND the two 95% confidence intervals do not overlap (the current interval lies
  entirely on the wrong side of the baseline interval); also when the current mean
  is NaN while the baseline's is finite (the number became undefined);
- ``improved`` in the mirror case (right way, beyond tolerance, disjoint CIs);
- ``n too small`` when the current or the baseline interval does not exist (a NaN
  mean or bound: the report printed "n too small", ``evaluation.intervals``) or the
  row is flagged ``under_resolved`` in either report, and the row is not a regression
  by the NaN rule above: no verdict is drawn, never regressed or improved;
- ``ok`` otherwise;
- ``untracked`` when the metric has no direction in either tolerance table: it is
  shown, never a regression;
- ``context`` with ``aggregate_only`` (CLI ``--aggregate-only``, what the CI
  regression job uses) for every row that is not an aggregate: shown, never a
  verdict. In a summary file with a ``category`` column the aggregates are the rows
  with ``category == "mean of categories"``; in a file without one every row is an
  aggregate (faces' curves are already pooled over identities).

Default tolerances (``DEFAULT_TOLERANCES``; glob patterns allowed):

==========================  =========  ===============
metric                      direction  tolerance
==========================  =========  ===============
iou, occnet_iou             higher     abs 0.02
f_score                     higher     abs 0.02
normal_consistency          higher     abs 0.02
cd (x10^3)                  lower      rel 0.10
chamfer_l1                  lower      rel 0.10
auc                         higher     abs 0.01
tpr@*, tar@*                higher     abs 0.02
eer                         lower      abs 0.01
fpr@*, far@*                lower      abs 0.02
*label_noise*               lower      abs 0.05
precision, recall           higher     abs 0.05
coverage                    higher     abs 0.05
authenticity                higher     abs 0.05
copy_fraction               lower      abs 0.05
==========================  =========  ===============

Anything else (pair counts, ``n_pos``, ...) is untracked unless a tolerances file
gives it a direction. Untracked on purpose: the novelty distances ``d_train_median`` and
``d_test_median`` (farther from the training sets is more novel, but a worse model is
farther too: no direction), ``density`` (1 for samples of the real distribution, not
bounded: higher is not better), and ``frechet``, ``kid`` and ``kid_std`` (no interval,
benchmarks/distribution.py: a tracked row without one could never get a verdict).

Tolerances file (``--tolerances FILE``, YAML or JSON): a mapping from metric name
or glob pattern to an entry with a ``direction`` (``higher`` or ``lower``) and
exactly one of ``abs`` (metric units) or ``rel`` (fraction of the baseline mean),
non-negative numbers::

    iou: {direction: higher, abs: 0.05}
    cd: {direction: lower, rel: 0.2}
    "tpr@*": {direction: higher, abs: 0.03}

Entries of the file take precedence over the defaults; within one table an exact
name beats a pattern, and patterns are tried in the order written. A number given
as a string that parses as one (YAML reads ``1e-2`` as a string) is accepted.
Anything else — an unknown key, a bad direction, both or neither of abs/rel, a
non-numeric or negative value — is a ``ValueError`` naming the file and the entry.

Compatibility. Two reports are comparable only when they

- have the same ``benchmark``;
- scored the same data: the same ``data.fingerprint`` AND the same
  ``data.subset_sha256`` (the sha256 of the sorted ids of the scored objects /
  identities, ``benchmarks.manifest.subset_digest``). A report missing either is an
  old-format report and is not comparable (regenerate it with the current code);
- used the same settings: every ``config`` entry agrees, except the execution-only
  keys in ``EXECUTION_KEYS`` (``workers``), which by DESIGN.md §6 cannot change a
  number, and the subset keys in ``SUBSET_KEYS`` (``max_objects``, ``categories``,
  ``max_identities``), which ``data.subset_sha256`` already decides; both are listed
  as notes. A key present in one config only is a difference;
- measured with the same instrument: the OccNet (``occnet_checkpoint.sha256`` and its
  ``threshold``) or the embedder's weights (``embedder.sha256``; not its name or path), compared
  where both manifests have the entry (``INSTRUMENT_FIELDS``);
- and every summary file of the baseline is a summary file of the current report with
  the same condition columns, and every (file, condition) row of the baseline is
  present in the current report.

Otherwise ``IncompatibleReports`` lists every difference found, each naming the
entry and both values. The scored model is not a condition (comparing two checkpoints
on the same subset is the point): differences of ``MODEL_KEYS`` entries are listed as
notes. Rows or summary files only in the current report are reported
(``CompareResult.extra``), not an error.

Outputs (``write_compare``): ``compare.csv`` (tidy, one row per joined
measurement), ``compare.md`` (regressions first, the calibration ladder's normalised scores
of both reports when they have a ``calibration.csv`` (context: the reference models are not
tracked, and calibration.csv has no ``mean`` column), then a table per file) and
``compare_<metric>.png`` (baseline vs current with CI error bars; only aggregate
rows such as ``category == "mean of categories"`` when the report has them).

Exit codes (``compare_main``): 0 nothing regressed, 1 something regressed,
2 reports incompatible or invalid (or a bad tolerances file).
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.intervals import N_TOO_SMALL, format_interval, has_interval
from sdn.io import atomic_write_bytes, atomic_write_text

from .figures import plot_png

VALUE_COLUMNS = ("mean", "ci_low", "ci_high", "n")
FLAG_COLUMNS = ("under_resolved",)  # boolean per row; flagged -> no verdict
# Derived from the conditions, values and settings; ignored.
ANNOTATION_COLUMNS = ("text", "applied_noise", "n_real")
NOT_CONDITIONS = VALUE_COLUMNS + FLAG_COLUMNS + ANNOTATION_COLUMNS
# Config keys that cannot change a number (DESIGN.md §6); every other config difference is incompatible.
EXECUTION_KEYS = frozenset({"workers"})
# Config keys that choose the evaluated subset: data.subset_sha256 decides compatibility instead.
SUBSET_KEYS = frozenset({"max_objects", "categories", "max_identities"})
# The measuring instruments: these manifest fields must agree where both reports have them.
INSTRUMENT_FIELDS = {"occnet_checkpoint": ("sha256", "threshold"), "embedder": ("sha256",)}
# Manifest entries naming the scored model and the instruments: their other differences are notes.
MODEL_KEYS = ("model", "occnet_checkpoint", "embedder")
# data.* entries that must agree (a report without them is an old-format report).
DATA_KEYS = ("fingerprint", "subset_sha256")
AGGREGATE_CATEGORY = "mean of categories"  # the aggregate rows of a file with a category column
STATUSES = ("ok", "improved", "regressed", N_TOO_SMALL, "untracked", "context")
_FLAG_VALUES = {"": False, "false": False, "0": False, "true": True, "1": True}
# Condition values that mark an aggregate row (plots keep only those when present).
AGGREGATE_VALUES = ("mean of categories", "mean", "all", "overall")
MAX_PLOT_CONDITIONS = 40


class IncompatibleReports(ValueError):
    """The two reports cannot be compared; ``reasons`` lists every difference found."""

    def __init__(self, reasons: list[str]):
        self.reasons = list(reasons)
        super().__init__("reports are incompatible:\n" + "\n".join(f"- {r}" for r in self.reasons))


class InvalidReport(ValueError):
    """A folder is not a readable report (no manifest, unreadable or malformed summary CSV)."""


@dataclass(frozen=True)
class Tolerance:
    """How far a metric may move the wrong way: ``abs`` in metric units or ``rel`` x |baseline|."""

    direction: str  # "higher" or "lower" is better
    abs: float | None = None
    rel: float | None = None

    def allowed(self, baseline_mean: float) -> float:
        if self.abs is not None:
            return float(self.abs)
        return float(self.rel) * abs(baseline_mean) if math.isfinite(baseline_mean) else math.nan

    def describe(self) -> str:
        return f"abs {self.abs:g}" if self.abs is not None else f"rel {self.rel:g}"


DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "iou": Tolerance("higher", abs=0.02),
    "occnet_iou": Tolerance("higher", abs=0.02),
    "f_score": Tolerance("higher", abs=0.02),
    "normal_consistency": Tolerance("higher", abs=0.02),
    "cd": Tolerance("lower", rel=0.10),
    "chamfer_l1": Tolerance("lower", rel=0.10),
    "auc": Tolerance("higher", abs=0.01),
    "tpr@*": Tolerance("higher", abs=0.02),
    "tar@*": Tolerance("higher", abs=0.02),
    "eer": Tolerance("lower", abs=0.01),
    "fpr@*": Tolerance("lower", abs=0.02),
    "far@*": Tolerance("lower", abs=0.02),
    "*label_noise*": Tolerance("lower", abs=0.05),
    # The novelty / realism section (benchmarks/distribution.py).
    "precision": Tolerance("higher", abs=0.05),
    "recall": Tolerance("higher", abs=0.05),
    "coverage": Tolerance("higher", abs=0.05),
    "authenticity": Tolerance("higher", abs=0.05),
    "copy_fraction": Tolerance("lower", abs=0.05),
}

_ENTRY_KEYS = {"direction", "abs", "rel"}


def _number(value, where: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{where}: expected a number, got {value!r}") from None
    if not isinstance(value, (int, float)):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: expected a finite number >= 0, got {value!r}")
    return value


def parse_tolerances(raw, source: str = "<tolerances>") -> dict[str, Tolerance]:
    """Validate a mapping ``{metric or glob: {direction, abs | rel}}``; ``source`` names it in errors."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: expected a mapping of metric -> entry, got {type(raw).__name__}")
    out: dict[str, Tolerance] = {}
    for name, entry in raw.items():
        where = f"{source}: entry {name!r}"
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: metric names must be non-empty strings")
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a mapping with direction and abs or rel, got {entry!r}")
        unknown = sorted(set(map(str, entry)) - _ENTRY_KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: direction, abs, rel")
        direction = entry.get("direction")
        if direction not in ("higher", "lower"):
            raise ValueError(f"{where}: direction must be 'higher' or 'lower', got {direction!r}")
        has_abs, has_rel = "abs" in entry, "rel" in entry
        if has_abs == has_rel:
            raise ValueError(f"{where}: give exactly one of abs or rel")
        if has_abs:
            out[name] = Tolerance(direction, abs=_number(entry["abs"], f"{where}, abs"))
        else:
            out[name] = Tolerance(direction, rel=_number(entry["rel"], f"{where}, rel"))
    return out


def load_tolerances(path: str | os.PathLike) -> dict[str, Tolerance]:
    """Read and validate a YAML (``.yaml``/``.yml``/other) or JSON (``.json``) tolerances file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"{path}: cannot read tolerances file: {e}") from None
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(text)
        else:
            import yaml

            raw = yaml.safe_load(text)
    except Exception as e:  # any parse error becomes a ValueError naming the file
        raise ValueError(f"{path}: cannot parse tolerances file: {e}") from None
    return parse_tolerances(raw if raw is not None else {}, str(path))


def _lookup(metric: str, table: dict[str, Tolerance]) -> Tolerance | None:
    if metric in table:
        return table[metric]
    for pattern, tol in table.items():
        if fnmatch.fnmatchcase(metric, pattern):
            return tol
    return None


def resolve_tolerance(metric: str, overrides: dict[str, Tolerance] | None = None) -> Tolerance | None:
    """The tolerance of ``metric``: the overrides first, then the defaults; None = untracked."""
    return _lookup(metric, overrides or {}) or _lookup(metric, DEFAULT_TOLERANCES)


# ----------------------------------------------------------------------------- reading reports


@dataclass
class _Report:
    path: Path
    manifest: dict
    tables: dict[str, pd.DataFrame]  # file name -> tidy summary (conditions as str, values as float)
    conditions: dict[str, list[str]]  # file name -> condition columns (metric included)


def _read_summary(path: Path) -> tuple[pd.DataFrame, list[str]] | None:
    """The tidy summary in ``path``, or None when the CSV is not a summary (raw data)."""
    try:
        header = pd.read_csv(path, nrows=0).columns.tolist()
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError):
        return None
    if not set(VALUE_COLUMNS) <= set(header) or "metric" not in header:
        return None
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise InvalidReport(f"{path}: unreadable CSV: {e}") from None
    conds = [c for c in header if c not in NOT_CONDITIONS]
    for col in VALUE_COLUMNS:  # an empty cell is NaN; "nan" / "inf" parse as floats
        try:
            df[col] = np.array([float(v) if v.strip() else math.nan for v in df[col]], dtype=float)
        except ValueError:
            raise InvalidReport(f"{path}: column {col!r} has non-numeric values") from None
    for col in (c for c in FLAG_COLUMNS if c in header):
        bad = sorted({v for v in df[col] if v.strip().lower() not in _FLAG_VALUES})
        if bad:
            raise InvalidReport(f"{path}: flag column {col!r} must be True or False, got {bad[:3]}")
        df[col] = [_FLAG_VALUES[v.strip().lower()] for v in df[col]]
    dup = df.duplicated(subset=conds, keep=False)
    if dup.any():
        first = df.loc[dup, conds].iloc[0]
        raise InvalidReport(
            f"{path}: {int(dup.sum())} rows share their conditions, e.g. {_cond_text(first, conds)}"
        )
    return df, conds


def load_report(path: str | os.PathLike) -> _Report:
    """The manifest and the tidy summaries of the report folder ``path`` (``InvalidReport`` if unreadable)."""
    path = Path(path)
    mpath = path / "manifest.json"
    if not mpath.is_file():
        raise InvalidReport(f"{path}: not a report folder (no manifest.json)")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidReport(f"{mpath}: invalid JSON: {e}") from None
    if not isinstance(manifest, dict):
        raise InvalidReport(f"{mpath}: expected a JSON object")
    files = manifest.get("files")
    if files is None:
        names = sorted(p.name for p in path.glob("*.csv"))
    elif isinstance(files, list):
        names = [str(f) for f in files if str(f).lower().endswith(".csv")]
    else:
        raise InvalidReport(f"{mpath}: 'files' must be a list")
    tables, conditions = {}, {}
    for name in names:
        fpath = path / name
        if not fpath.is_file():
            raise InvalidReport(f"{path}: {name} is listed in manifest.json but missing")
        read = _read_summary(fpath)
        if read is not None:
            tables[name], conditions[name] = read
    return _Report(path, manifest, tables, conditions)


def _cond_text(row, conds: list[str]) -> str:
    return ", ".join(f"{c}={row[c]}" for c in conds)


def _data_entry(manifest: dict, key: str):
    data = manifest.get("data")
    return data.get(key) if isinstance(data, dict) else None


def _flatten(obj, prefix: str = "") -> dict[str, object]:
    if isinstance(obj, dict):
        out: dict[str, object] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


_ABSENT = object()


def _differences(base, cur, prefix: str) -> list[tuple[str, str]]:
    """(flattened key, "baseline X, current Y") for every leaf of two nested mappings that differs."""
    b, c = _flatten(base or {}, f"{prefix}."), _flatten(cur or {}, f"{prefix}.")

    def show(v):
        return "(absent)" if v is _ABSENT else repr(v)

    return [
        (k, f"baseline {show(b.get(k, _ABSENT))}, current {show(c.get(k, _ABSENT))}")
        for k in sorted(set(b) | set(c))
        if b.get(k, _ABSENT) != c.get(k, _ABSENT)
    ]


def _notes(base: dict, cur: dict, limit: int = 8) -> list[str]:
    """The differences that do not affect compatibility: execution-only config keys, the models."""
    notes = [
        f"{k} differs ({'execution only' if k.removeprefix('config.') in EXECUTION_KEYS else 'subset'}): {d}"
        for k, d in _differences(base.get("config"), cur.get("config"), "config")
        if k.removeprefix("config.") in EXECUTION_KEYS | SUBSET_KEYS
    ]
    for key in MODEL_KEYS:
        diffs = _differences(base.get(key), cur.get(key), key)
        notes += [f"{k} differs (models are compared, not a condition): {d}" for k, d in diffs[:limit]]
        if len(diffs) > limit:
            notes.append(f"... and {len(diffs) - limit} more {key} differences")
    return notes


def _keys(df: pd.DataFrame, conds: list[str]) -> list[tuple]:
    return list(df[conds].itertuples(index=False, name=None))


def _check_compatible(base: _Report, cur: _Report, few: int = 5) -> list[str]:
    reasons = []
    bb, cb = base.manifest.get("benchmark"), cur.manifest.get("benchmark")
    if bb != cb:
        reasons.append(f"benchmark differs: baseline {bb!r}, current {cb!r}")
    for key in DATA_KEYS:
        bv, cv = _data_entry(base.manifest, key), _data_entry(cur.manifest, key)
        for side, report, value in (("baseline", base, bv), ("current", cur, cv)):
            if value is None:
                reasons.append(
                    f"the {side} report {report.path} has no data.{key}: it is an old-format report"
                    " (regenerate it with the current code)"
                )
        if bv is not None and cv is not None and bv != cv:
            reasons.append(f"data.{key} differs: baseline {bv!r}, current {cv!r}")
    for key, diff in _differences(base.manifest.get("config"), cur.manifest.get("config"), "config"):
        if key.removeprefix("config.") not in EXECUTION_KEYS | SUBSET_KEYS:
            reasons.append(f"{key} differs: {diff} (a setting that defines the numbers)")
    for entry, fields in INSTRUMENT_FIELDS.items():
        b, c = base.manifest.get(entry), cur.manifest.get(entry)
        for f in fields if isinstance(b, dict) and isinstance(c, dict) else ():
            if f in b and f in c and b[f] != c[f]:
                reasons.append(
                    f"{entry}.{f} differs: baseline {b[f]!r}, current {c[f]!r} (another measuring instrument)"
                )
    if not base.tables:
        reasons.append(f"the baseline {base.path} has no tidy summary CSV to compare")
    for name, bdf in base.tables.items():
        if name not in cur.tables:
            reasons.append(f"summary file {name} of the baseline is missing from the current report")
            continue
        bcols, ccols = base.conditions[name], cur.conditions[name]
        if set(bcols) != set(ccols):
            reasons.append(
                f"{name}: condition columns differ: baseline {bcols}, current {ccols}"
                f" (current has no {sorted(set(bcols) - set(ccols))}, baseline has no"
                f" {sorted(set(ccols) - set(bcols))})"
            )
            continue
        missing = sorted(set(_keys(bdf, bcols)) - set(_keys(cur.tables[name], bcols)), key=str)
        if missing:
            shown = "; ".join(_cond_text(dict(zip(bcols, m, strict=True)), bcols) for m in missing[:few])
            more = f" (and {len(missing) - few} more)" if len(missing) > few else ""
            reasons.append(
                f"{name}: {len(missing)} condition(s) of the baseline missing from the current report:"
                f" {shown}{more}"
            )
    return reasons


# ----------------------------------------------------------------------------- comparing


@dataclass
class CompareResult:
    """A joined comparison. ``table`` is what ``compare.csv`` holds (one row per measurement)."""

    current: Path
    baseline: Path
    benchmark: str | None
    table: pd.DataFrame
    condition_columns: list[str]  # union over files, metric excluded
    extra: list[str] = field(default_factory=list)  # rows / files present only in the current report
    notes: list[str] = field(default_factory=list)
    current_manifest: dict = field(default_factory=dict)
    baseline_manifest: dict = field(default_factory=dict)
    aggregate_only: bool = False  # only aggregate rows tracked; the others are ``context``

    @property
    def regressions(self) -> pd.DataFrame:
        return self.table[self.table.status == "regressed"]

    @property
    def improvements(self) -> pd.DataFrame:
        return self.table[self.table.status == "improved"]

    @property
    def exit_code(self) -> int:
        return 1 if len(self.regressions) else 0

    def counts(self) -> dict[str, int]:
        return {s: int((self.table.status == s).sum()) for s in STATUSES}

    def describe_row(self, row) -> str:
        conds = [f"{c}={row[c]}" for c in self.condition_columns if isinstance(row[c], str) and row[c] != ""]
        rel = f", {row.rel_delta:+.1%}" if math.isfinite(row.rel_delta) else ""
        tol = f"; tolerance {row.tolerance_rule}" if row.tolerance_rule else ""
        return (
            f"{row.metric} [{row.file}: {', '.join(conds)}]: {_fmt(row.baseline_mean)} -> "
            f"{_fmt(row.current_mean)} ({_fmt(row.delta, sign=True)}{rel}{tol})"
        )

    def summary_lines(self, limit: int = 20) -> list[str]:
        c = self.counts()
        lines = [
            f"compare {self.benchmark}: {len(self.table)} measurements: "
            + ", ".join(f"{c[s]} {s}" for s in STATUSES)
            + (f"; {len(self.extra)} only in current" if self.extra else "")
        ]
        for label, df in (("REGRESSED", self.regressions), ("improved", self.improvements)):
            for i, (_, row) in enumerate(df.iterrows()):
                if i == limit:
                    lines.append(f"  ... and {len(df) - limit} more {label.lower()} (see compare.md)")
                    break
                lines.append(f"  {label} {self.describe_row(row)}")
        return lines


def _interval(d: dict) -> tuple[float, float] | None:
    """The (low, high) interval of one side of a row, None when it does not exist (a NaN mean or bound)."""
    if math.isfinite(d["mean"]) and has_interval(d["ci_low"], d["ci_high"]):
        return d["ci_low"], d["ci_high"]
    return None


def _sides(which: list[str]) -> str:
    return "both reports" if len(which) == 2 else f"the {which[0]}"


def _status(tol: Tolerance | None, b: dict, c: dict, tracked: bool) -> tuple[str, float, str]:
    """(status, allowed absolute change, note) for one joined row; ``tracked`` False -> ``context``."""
    if not tracked:
        return "context", math.nan, "not an aggregate row"
    if tol is None:
        return "untracked", math.nan, ""
    bm, cm = b["mean"], c["mean"]
    allowed = tol.allowed(bm) if math.isfinite(bm) else math.nan
    if math.isfinite(bm) and not math.isfinite(cm):
        return "regressed", allowed, "current mean is NaN"
    intervals = {"baseline": _interval(b), "current": _interval(c)}
    missing = [side for side, ci in intervals.items() if ci is None]
    if missing:
        return N_TOO_SMALL, allowed, f"no interval in {_sides(missing)}"
    flagged = [side for side, d in (("baseline", b), ("current", c)) if d.get("under_resolved", False)]
    if flagged:
        return N_TOO_SMALL, allowed, f"under-resolved in {_sides(flagged)}"
    sign = 1.0 if tol.direction == "higher" else -1.0
    gain = sign * (cm - bm)  # > 0: moved the right way
    (bl, bh), (cl, ch) = intervals["baseline"], intervals["current"]
    # Is the current interval entirely on the better / worse side of the baseline interval?
    cur_better = cl > bh if sign > 0 else ch < bl
    cur_worse = ch < bl if sign > 0 else cl > bh
    if -gain > allowed and cur_worse:
        return "regressed", allowed, ""
    if gain > allowed and cur_better:
        return "improved", allowed, ""
    return "ok", allowed, ""


def compare_reports(
    current_dir: str | os.PathLike,
    baseline_dir: str | os.PathLike,
    tolerances: str | os.PathLike | dict | None = None,
    aggregate_only: bool = False,
) -> CompareResult:
    """Join the tidy summaries of two reports and classify every measurement.

    ``tolerances``: None (defaults only), a YAML/JSON file path, or a mapping in the
    file's format (or of ``Tolerance``), taking precedence over ``DEFAULT_TOLERANCES``.
    ``aggregate_only``: draw verdicts only from aggregate rows (``category == "mean of
    categories"`` in a file with a category column, every row otherwise); the other rows
    get status ``context``.
    Raises ``IncompatibleReports`` (see the module docstring), ``InvalidReport``, or
    ``ValueError`` for a bad tolerances file.
    """
    if tolerances is None:
        overrides: dict[str, Tolerance] = {}
    elif isinstance(tolerances, dict):
        if all(isinstance(v, Tolerance) for v in tolerances.values()):
            overrides = dict(tolerances)
        else:
            overrides = parse_tolerances(tolerances)
    else:
        overrides = load_tolerances(tolerances)
    base, cur = load_report(baseline_dir), load_report(current_dir)
    reasons = _check_compatible(base, cur)
    if reasons:
        raise IncompatibleReports(reasons)

    all_conds: list[str] = []
    for name in base.tables:
        all_conds += [c for c in base.conditions[name] if c != "metric" and c not in all_conds]
    rows = []
    extra = []
    for name, bdf in base.tables.items():
        conds = base.conditions[name]
        cdf = cur.tables[name]
        by_category = aggregate_only and "category" in conds
        cur_by_key = {k: r for k, r in zip(_keys(cdf, conds), cdf.to_dict("records"), strict=True)}
        base_keys = set()
        for key, b in zip(_keys(bdf, conds), bdf.to_dict("records"), strict=True):
            base_keys.add(key)
            c = cur_by_key[key]
            metric = b["metric"]
            tol = resolve_tolerance(metric, overrides)
            tracked = not by_category or b["category"] == AGGREGATE_CATEGORY
            status, allowed, note = _status(tol, b, c, tracked)
            delta = c["mean"] - b["mean"]
            rel = delta / abs(b["mean"]) if math.isfinite(b["mean"]) and b["mean"] != 0 else math.nan
            row = {"file": name, "metric": metric}
            row.update({col: b.get(col, "") for col in all_conds})
            row.update(
                {
                    "direction": tol.direction if tol else "",
                    "baseline_mean": b["mean"],
                    "baseline_ci_low": b["ci_low"],
                    "baseline_ci_high": b["ci_high"],
                    "baseline_n": b["n"],
                    "current_mean": c["mean"],
                    "current_ci_low": c["ci_low"],
                    "current_ci_high": c["ci_high"],
                    "current_n": c["n"],
                    "delta": delta,
                    "rel_delta": rel,
                    "tolerance": allowed,
                    "tolerance_rule": tol.describe() if tol else "",
                    "status": status,
                    "note": note,
                }
            )
            rows.append(row)
        for key in _keys(cdf, conds):
            if key not in base_keys:
                extra.append(f"{name}: {_cond_text(dict(zip(conds, key, strict=True)), conds)}")
    for name in cur.tables:
        if name not in base.tables:
            extra.append(f"{name}: summary file only in the current report ({len(cur.tables[name])} rows)")
    columns = (
        ["file", "metric"]
        + all_conds
        + [
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
            "note",
        ]
    )
    table = pd.DataFrame(rows, columns=columns)
    for col in ("baseline_n", "current_n"):  # counts print as integers when they are
        values = table[col].to_numpy(float)
        if np.isfinite(values).all() and (values == np.round(values)).all():
            table[col] = table[col].astype("int64")
    return CompareResult(
        current=cur.path,
        baseline=base.path,
        benchmark=base.manifest.get("benchmark"),
        table=table,
        condition_columns=all_conds,
        extra=extra,
        notes=_notes(base.manifest, cur.manifest),
        aggregate_only=aggregate_only,
        current_manifest=cur.manifest,
        baseline_manifest=base.manifest,
    )


# ----------------------------------------------------------------------------- writing


def _fmt(x, sign: bool = False) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(x):
        return "nan" if math.isnan(x) else str(x)
    return f"{x:+.4g}" if sign else f"{x:.4g}"


def _ci(mean, lo, hi) -> str:
    return f"{_fmt(mean)} [{_fmt(lo)}, {_fmt(hi)}]"


def _md_cell(s) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list], align: list[str] | None = None) -> list[str]:
    align = align or ["---"] * len(header)
    out = ["| " + " | ".join(map(_md_cell, header)) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in rows]
    return out


def _row_cells(result: CompareResult, row, conds: list[str], with_file: bool = False) -> list:
    rel = f"{row.rel_delta:+.1%}" if math.isfinite(row.rel_delta) else ""
    status = f"**{row.status}**" if row.status == "regressed" else row.status
    cells = [row.file] if with_file else []
    cells += [row[c] for c in conds] + [row.metric]
    cells += [
        _ci(row.baseline_mean, row.baseline_ci_low, row.baseline_ci_high),
        _ci(row.current_mean, row.current_ci_low, row.current_ci_high),
        _fmt(row.delta, sign=True),
        rel,
        f"{row.tolerance_rule} ({row.direction})" if row.tolerance_rule else "",
        status + (f" ({row.note})" if row.note else ""),
    ]
    return cells


_VALUE_HEADER = ["baseline [95% CI]", "current [95% CI]", "delta", "rel", "tolerance", "status"]


def _file_conditions(result: CompareResult, df: pd.DataFrame) -> list[str]:
    return [c for c in result.condition_columns if (df[c].astype(str) != "").any()]


def compare_markdown(result: CompareResult) -> str:
    c = result.counts()
    bm, cm = result.baseline_manifest, result.current_manifest
    lines = [
        f"# Compare: {result.benchmark}",
        "",
        f"- current: `{result.current}` (wall {cm.get('wall_s')} s)",
        f"- baseline: `{result.baseline}` (wall {bm.get('wall_s')} s)",
        f"- data fingerprint: `{_data_entry(bm, 'fingerprint')}`",
        f"- subset sha256: `{_data_entry(bm, 'subset_sha256')}`",
        f"- {len(result.table)} measurements: " + ", ".join(f"{c[s]} {s}" for s in STATUSES),
        "- rule: regressed = moved the wrong way by more than the tolerance AND the 95% CIs do not overlap"
        " (or the current mean became NaN)",
        f"- {N_TOO_SMALL}: the current or baseline interval does not exist (or is under-resolved);"
        " no verdict is drawn",
    ]
    if result.aggregate_only:
        lines.append(
            f"- aggregate only: verdicts from aggregate rows (category = {AGGREGATE_CATEGORY} where a file"
            " has a category column); the other rows are context"
        )
    lines.append("")
    if result.notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in result.notes] + [""]
    lines += ["## Regressions", ""]
    reg = result.regressions
    if reg.empty:
        lines += ["None.", ""]
    else:
        conds = _file_conditions(result, reg)
        lines += _md_table(
            ["file"] + conds + ["metric"] + _VALUE_HEADER,
            [_row_cells(result, r, conds, with_file=True) for _, r in reg.iterrows()],
        )
        lines.append("")
    imp = result.improvements
    if not imp.empty:
        conds = _file_conditions(result, imp)
        lines += ["## Improvements", ""]
        lines += _md_table(
            ["file"] + conds + ["metric"] + _VALUE_HEADER,
            [_row_cells(result, r, conds, with_file=True) for _, r in imp.iterrows()],
        )
        lines.append("")
    if result.extra:
        lines += ["## Only in the current report", ""] + [f"- {e}" for e in result.extra] + [""]
    lines += _calibration_lines(result)
    for name, df in result.table.groupby("file", sort=False):
        conds = _file_conditions(result, df)
        lines += [f"## {name}", ""]
        lines += _md_table(
            conds + ["metric"] + _VALUE_HEADER, [_row_cells(result, r, conds) for _, r in df.iterrows()]
        )
        lines.append("")
    return "\n".join(lines)


def _calibration_lines(result: CompareResult) -> list[str]:
    """The normalised scores of both reports' ``calibration.csv`` (benchmarks.ladder), side
    by side: context, never a verdict (the references are not the scored model)."""
    found = {
        side: pd.read_csv(path / "calibration.csv").set_index(["table", "metric", "k"])
        for side, path in (("current", result.current), ("baseline", result.baseline))
        if (path / "calibration.csv").is_file()
    }
    if not found:
        return []
    keys = list(dict.fromkeys(k for df in found.values() for k in df.index))

    def cell(side: str, key) -> str:
        df = found.get(side)
        if df is None or key not in df.index:
            return "-"
        r = df.loc[key]
        if isinstance(r.get("note"), str) and r.note:
            return "no scale"
        return f"{r.normalised:.3f} {format_interval(r.ci_low, r.ci_high)}"

    lines = ["## Calibration (context: no verdicts)", ""]
    lines += _md_table(
        ["table", "metric", "k", "current normalised", "baseline normalised"],
        [[*key, cell("current", key), cell("baseline", key)] for key in keys],
    )
    return lines + [""]


def _safe_name(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", metric).strip("_") or "metric"


def _plot_rows(df: pd.DataFrame, conds: list[str]) -> tuple[pd.DataFrame, str]:
    """Aggregate rows only, when some condition column has an aggregate value; returns (rows, note)."""
    notes = []
    for col in conds:
        values = df[col].astype(str)
        agg = values.str.lower().isin(AGGREGATE_VALUES)
        if agg.any() and not agg.all():
            kept = sorted(set(values[agg]))
            df = df[agg]
            notes.append(f"{col} = {', '.join(kept)}")
    return df, "; ".join(notes)


def _label(column: str, value) -> str:
    """``k=4`` for a numeric condition, the value itself for a named one (``airplane``)."""
    try:
        float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{column}={value}"


def plot_metric(result: CompareResult, metric: str) -> bytes | None:
    """PNG bytes: baseline vs current mean with CI error bars over the conditions of one metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = result.table[result.table.metric == metric]
    if df.empty:
        return None
    conds = [c for c in result.condition_columns if (df[c].astype(str) != "").any()]
    df, note = _plot_rows(df, conds)
    total = len(df)
    if total > MAX_PLOT_CONDITIONS:  # keep the flagged rows, then fill in report order
        flagged = df[df.status.isin(("regressed", "improved"))]
        rest = df[~df.index.isin(flagged.index)]
        df = pd.concat([flagged, rest]).iloc[:MAX_PLOT_CONDITIONS].sort_index()
    varying = [c for c in conds if df[c].astype(str).nunique() > 1]
    labels = [", ".join(_label(c, r[c]) for c in varying) for _, r in df.iterrows()]
    if len(set(labels)) < len(labels) or not varying:
        labels = [
            f"{Path(f).stem}: {lab}" if lab else Path(f).stem for f, lab in zip(df.file, labels, strict=True)
        ]
    x = np.arange(len(df))
    width = max(5.0, min(24.0, 1.2 + 0.45 * len(df)))
    fig, ax = plt.subplots(figsize=(width, 4.2))
    for side, offset, color in (("baseline", -0.15, "tab:gray"), ("current", 0.15, "tab:blue")):
        m = df[f"{side}_mean"].to_numpy(float)
        lo = np.where(np.isfinite(df[f"{side}_ci_low"]), df[f"{side}_ci_low"], m)
        hi = np.where(np.isfinite(df[f"{side}_ci_high"]), df[f"{side}_ci_high"], m)
        ax.errorbar(
            x + offset,
            m,
            yerr=[np.clip(m - lo, 0, None), np.clip(hi - m, 0, None)],
            fmt="o",
            capsize=3,
            color=color,
            label=side,
        )
    for status, color, marker in (("regressed", "tab:red", "v"), ("improved", "tab:green", "^")):
        sel = (df.status == status).to_numpy()
        if sel.any():
            ax.scatter(
                x[sel] + 0.15,
                df.current_mean[sel],
                s=80,
                facecolors="none",
                edgecolors=color,
                marker=marker,
                zorder=5,
                label=status,
            )
    direction = df.direction.iloc[0]
    ax.set_ylabel(metric + (f" ({direction} is better)" if direction else " (untracked)"))
    title = f"{result.benchmark}: {metric}, baseline vs current (95% CI)"
    if note:
        title += f"\n{note}"
    if len(df) < total:
        title += f"\n{len(df)} of {total} conditions shown"
    ax.set_title(title, fontsize=9)
    ax.set_xticks(x)
    # Upright labels only when they are short enough to sit side by side.
    rotate = len(df) * max(len(lab) for lab in labels) > 12 * width
    ax.set_xticklabels(labels, rotation=35 if rotate else 0, ha="right" if rotate else "center", fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return plot_png(fig, dpi=110)


def write_compare(result: CompareResult, out_dir: str | os.PathLike) -> list[Path]:
    """Write compare.csv, compare.md and compare_<metric>.png into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "compare.csv", out / "compare.md"]
    atomic_write_text(paths[0], result.table.to_csv(index=False))
    atomic_write_text(paths[1], compare_markdown(result))
    for metric in dict.fromkeys(result.table.metric):
        png = plot_metric(result, metric)
        if png is not None:
            path = out / f"compare_{_safe_name(metric)}.png"
            atomic_write_bytes(path, png)
            paths.append(path)
    return paths


def compare_main(
    current: str | os.PathLike,
    baseline: str | os.PathLike,
    tolerances_path: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    aggregate_only: bool = False,
) -> int:
    """Compare, write the outputs (into ``out``, default ``<current>/compare``), print a summary.
    ``aggregate_only``: see ``compare_reports``.

    Returns 0 when nothing regressed, 1 when something regressed, 2 when the reports are
    incompatible or invalid or the tolerances file is bad (the reason goes to stderr).
    """
    try:
        result = compare_reports(current, baseline, tolerances_path, aggregate_only)
    except (IncompatibleReports, InvalidReport, ValueError) as e:
        print(f"sdn-bench compare: {e}", file=sys.stderr)
        return 2
    out = Path(out) if out is not None else Path(current) / "compare"
    write_compare(result, out)
    for line in result.summary_lines():
        print(line)
    for e in result.extra[:5]:
        print(f"  only in current: {e}")
    if len(result.extra) > 5:
        print(f"  ... and {len(result.extra) - 5} more only in current")
    print(f"wrote {out / 'compare.md'}, {out / 'compare.csv'}")
    return result.exit_code
