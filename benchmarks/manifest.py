"""Manifests: what a committed checkpoint or report is, and how it was made."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path

import torch

from sdn.checkpoint import export_checkpoint
from sdn.io import atomic_write_json, sha256_file

__all__ = [  # sha256_file lives in sdn.io; the benchmarks import it from here
    "sha256_file", "subset_digest", "machine", "export_with_manifest", "finish_report", "source_digest",
]


def subset_digest(ids) -> str:
    """sha256 of the evaluated subset: the ids (object ``synset/model_id`` or identity names)
    sorted and joined by newlines. Two reports scored the same subset iff their digests agree
    (``compare`` checks it)."""
    names = sorted(str(i) for i in ids)
    if not names:
        raise ValueError("subset_digest needs at least one id")
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),  # torchrun processes
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def export_with_manifest(
    src: str | os.PathLike, dst: str | os.PathLike, half: bool = True, note: str = ""
) -> dict:
    """Export a weights-only checkpoint and write ``<dst>.json`` describing it: config,
    recipe and aids, steps, data fingerprint, training sessions (from the run folder's
    run.json when present), held-out figures, machine, size and sha256."""
    ckpt = export_checkpoint(src, dst, half=half)
    run_json = Path(src).parent / "run.json"
    run = json.loads(run_json.read_text()) if run_json.exists() else {}
    cfg = ckpt["config"]
    manifest = {
        "file": Path(dst).name,
        "kind": ckpt["kind"],
        "sha256": sha256_file(dst),
        "size_mb": round(Path(dst).stat().st_size / 2**20, 3),
        "weights_dtype": "float16" if half else "float32",
        "step": ckpt["step"],
        "preset": cfg.get("preset"),
        "recipe": cfg.get("recipe"),
        "aids": {k: v for k, v in cfg.get("aids", {}).items()} if isinstance(cfg.get("aids"), dict) else None,
        "config": cfg,
        "data_fingerprint": ckpt["data_fingerprint"],
        "data": run.get("data"),
        "training_sessions": run.get("sessions"),
        "training_wall_s": round(sum(s.get("wall_s", 0.0) for s in run.get("sessions", [])), 1),
        # the evaluation of the exported step: run.json's best (for best.pt) or last one
        "held_out": next(
            (e for e in (run.get("best"), run.get("last_eval")) if e and e.get("step") == ckpt["step"]), None
        ),
        "config_changes": run.get("config_changes"),
        "restarts": run.get("restarts"),  # sittings started from exported weights (sdn.trainer)
        "git_commit": ckpt.get("git_commit"),
        "package_version": ckpt.get("package_version"),
        "machine": machine(),
        "note": note,
    }
    atomic_write_json(str(dst) + ".json", manifest)
    return manifest


def finish_report(out: Path, manifest: dict, started: float) -> dict:
    """Complete a report folder: add the file list (every file in ``out``, plus
    manifest.json and index.md), the machine and the wall time since ``started`` to
    ``manifest``, write manifest.json atomically, then index.md; returns the manifest."""
    from .report_index import write_index

    files = sorted(
        p.name for p in out.iterdir() if p.is_file() and p.name not in ("manifest.json", "index.md")
    )
    manifest.update(
        files=files + ["manifest.json", "index.md"], machine=machine(), wall_s=round(time.time() - started, 1)
    )
    atomic_write_json(out / "manifest.json", manifest)
    write_index(out)
    return manifest


SOURCE_PACKAGES = ("sdn", "evaluation", "occnet_multiview", "benchmarks")


def source_digest() -> str:
    """sha256 (16 hex) of this installation's Python source: every ``.py`` file of
    ``SOURCE_PACKAGES`` (relative path and bytes, sorted). Any edit changes it: caches keyed by
    it (:class:`benchmarks.ladder.ReferenceCache`) never serve results of other code."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for package in SOURCE_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]
