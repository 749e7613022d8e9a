"""One Markdown page per report folder, and one for a folder of reports.

``write_index(report_dir)`` writes ``<report_dir>/index.md``: a title and facts from
``manifest.json`` (benchmark, command, wall time, checkpoints, data), the headline
Markdown tables (the contents of ``tables.md`` or ``summary.md``, headings demoted
under the page title), the calibration ladder (``calibration.md``) when there is one,
every PNG figure in the folder as a relative image link, and
links to the other files.

``write_combined_index(root_dir)`` writes ``<root_dir>/index.md`` for a folder whose
sub-folders are reports (``reports/latest/`` with ``shapes/`` and ``faces/``): a
table of the runs, then per report its facts, headline tables (up to the first
"Per ..." breakdown heading, e.g. "## Per category") and figures, with links
rebased onto the sub-folder. It (re)writes each sub-report's ``index.md``
too, so the links to them resolve. Every write is atomic.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import quote

from sdn.io import atomic_write_text

HEADLINE_FILES = ("tables.md", "summary.md")
CALIBRATION = "calibration.md"
INDEX = "index.md"
_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)((?:\s+\"[^\"]*\")?\))")


def _manifest(report_dir: Path) -> dict:
    path = report_dir / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{report_dir}: not a report folder (no manifest.json)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON: {e}") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return manifest


def _url(path: str) -> str:
    return quote(path, safe="/._-~@")


def _wall(seconds) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "unknown"
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(round(s)), 60)
    h, m = divmod(m, 60)
    return f"{s:.1f} s ({h} h {m} min)" if h else f"{s:.1f} s ({m} min {sec} s)"


def _checkpoints(manifest: dict) -> list[str]:
    """``name: `path` (sha256 abcdef123456)`` for every checkpoint the manifest names."""
    out = []

    def one(name: str, v) -> None:
        if isinstance(v, str):
            out.append(f"{name}: `{v}`")
        elif isinstance(v, dict) and ("path" in v or "sha256" in v):
            sha = str(v.get("sha256") or "")[:12]
            extra = ", ".join(
                f"{k} {v[k]}" for k in ("kind", "preset", "recipe", "threshold") if v.get(k) not in (None, "")
            )
            details = ", ".join(x for x in (f"sha256 {sha}" if sha else "", extra) if x)
            where = v.get("path", v.get("spec", "?"))
            out.append(f"{name}: `{where}`" + (f" ({details})" if details else ""))
        elif isinstance(v, dict):
            for k, sub in v.items():
                one(f"{name}.{k}" if name else str(k), sub)
        elif isinstance(v, list):
            for i, sub in enumerate(v):
                one(f"{name}[{i}]", sub)

    for key, value in manifest.items():
        if "checkpoint" in key or key == "model":
            one(key, value)
    return out


def _data(manifest: dict) -> str:
    data = manifest.get("data")
    if isinstance(data, dict):
        return ", ".join(f"{k} `{v}`" for k, v in data.items() if isinstance(v, (str, int, float, bool)))
    return f"`{data}`" if data is not None else "unknown"


def _facts(manifest: dict) -> list[str]:
    lines = []
    if manifest.get("command"):
        lines.append(f"- command: `{manifest['command']}`")
    lines.append(f"- wall time: {_wall(manifest.get('wall_s'))}")
    ckpts = _checkpoints(manifest)
    if ckpts:
        lines.append("- checkpoints: " + ("; ".join(ckpts)))
    lines.append(f"- data: {_data(manifest)}")
    machine = manifest.get("machine")
    if isinstance(machine, dict):
        parts = [f"{k} {machine[k]}" for k in ("platform", "cpus", "torch", "cuda") if machine.get(k)]
        if parts:
            lines.append("- machine: " + ", ".join(parts))
    return lines


def _demote(markdown: str, levels: int) -> str:
    """Push every ATX heading down ``levels`` levels (``#`` -> ``###``), outside code fences."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6}\s", line):
            hashes = len(line) - len(line.lstrip("#"))
            line = "#" * min(6, hashes + levels) + line[hashes:]
        out.append(line)
    return "\n".join(out)


def _rebase(markdown: str, prefix: str) -> str:
    """Prefix relative link targets with ``prefix/`` (absolute URLs, anchors and root paths stay)."""

    def fix(m: re.Match) -> str:
        target = m.group(2)
        if re.match(r"^([a-z][a-z0-9+.-]*:|/|#)", target, re.I):
            return m.group(0)
        return f"{m.group(1)}{_url(prefix)}/{target}{m.group(3)}"

    return _LINK.sub(fix, markdown)


def _headline(report_dir: Path) -> tuple[str, str] | None:
    for name in HEADLINE_FILES:
        path = report_dir / name
        if path.is_file():
            return name, path.read_text()
    return None


def _headline_only(markdown: str) -> tuple[str, bool]:
    """The text before the first breakdown heading (one starting "Per ...", e.g. "## Per category")."""
    lines = markdown.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"#{1,6}\s+per\b", line, re.I):
            return "\n".join(lines[:i]), True
    return markdown, False


def _figures(report_dir: Path) -> list[str]:
    return sorted(p.name for p in report_dir.iterdir() if p.is_file() and p.suffix.lower() == ".png")


def _other_files(report_dir: Path, manifest: dict) -> list[str]:
    listed = manifest.get("files") if isinstance(manifest.get("files"), list) else []
    names = [str(n) for n in listed if (report_dir / str(n)).is_file()]
    names += [p.name for p in sorted(report_dir.iterdir()) if p.is_file() and p.name not in names]
    return [n for n in dict.fromkeys(names) if not n.lower().endswith(".png") and n != INDEX]


def _title(manifest: dict, fallback: str) -> str:
    return str(manifest.get("benchmark") or fallback)


def _report_body(
    report_dir: Path, manifest: dict, level: int, prefix: str = "", breakdowns: bool = True
) -> list[str]:
    """Facts, headline tables and figures of one report; headings start at ``level``.

    ``breakdowns=False`` cuts the embedded tables at the first "Per ..." heading."""
    h = "#" * level
    link = (lambda name: f"{_url(prefix)}/{_url(name)}") if prefix else _url
    lines = _facts(manifest) + [""]
    head = _headline(report_dir)
    if head is not None:
        name, text = head
        cut = False
        if not breakdowns:
            text, cut = _headline_only(text)
        text = _demote(text, level)
        if prefix:
            text = _rebase(text, prefix)
        source = f"From [{name}]({link(name)})" + ("; breakdowns there." if cut else ".")
        lines += [f"{h} Headline tables", "", source, "", text.rstrip(), ""]
    calibration = report_dir / CALIBRATION
    if calibration.is_file():  # the ladder (benchmarks.ladder), when the report was calibrated
        text = _demote(calibration.read_text(), level)
        lines += [f"From [{CALIBRATION}]({link(CALIBRATION)}).", "", text.rstrip(), ""]
    figures = _figures(report_dir)
    if figures:
        lines += [f"{h} Figures", ""]
        for name in figures:
            lines += [f"{h}# {Path(name).stem}", "", f"![{Path(name).stem}]({link(name)})", ""]
    return lines


def write_index(report_dir: str | os.PathLike) -> Path:
    """Write ``<report_dir>/index.md`` (see the module docstring); returns its path."""
    report_dir = Path(report_dir)
    manifest = _manifest(report_dir)
    lines = [f"# {_title(manifest, report_dir.name)} report", ""]
    lines += _report_body(report_dir, manifest, level=2)
    files = _other_files(report_dir, manifest)
    if files:
        lines += ["## Files", ""] + [f"- [{n}]({_url(n)})" for n in files] + [""]
    path = report_dir / INDEX
    atomic_write_text(path, "\n".join(lines).rstrip() + "\n")
    return path


def write_combined_index(root_dir: str | os.PathLike) -> Path:
    """Write ``<root_dir>/index.md`` over its report sub-folders (and their own index.md)."""
    root = Path(root_dir)
    subs = sorted(p for p in root.iterdir() if p.is_dir() and (p / "manifest.json").is_file())
    if not subs:
        raise FileNotFoundError(f"{root}: no report folders (sub-folders with a manifest.json)")
    manifests = {p: _manifest(p) for p in subs}
    for p in subs:
        write_index(p)
    lines = ["# sdn-bench reports", "", "| report | benchmark | wall time | data fingerprint | command |"]
    lines.append("|---|---|---|---|---|")
    for p, m in manifests.items():
        data = m.get("data") if isinstance(m.get("data"), dict) else {}
        command = str(m.get("command") or "").replace("|", "\\|")
        lines.append(
            f"| [{p.name}]({_url(p.name)}/{INDEX}) | {m.get('benchmark', '?')} | {_wall(m.get('wall_s'))} "
            f"| `{data.get('fingerprint', '?')}` | `{command}` |"
        )
    lines.append("")
    for p, m in manifests.items():
        lines += [
            f"## {p.name}: {_title(m, p.name)}",
            "",
            f"Full report: [{p.name}/{INDEX}]({_url(p.name)}/{INDEX})",
            "",
        ]
        lines += _report_body(p, m, level=3, prefix=p.name, breakdowns=False)
    path = root / INDEX
    atomic_write_text(path, "\n".join(lines).rstrip() + "\n")
    return path
