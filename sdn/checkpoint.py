"""Self-describing, atomic checkpoints shared by every trainer (DESIGN.md §3.3).

A checkpoint is one ``torch.save`` file holding a dict of tensors and plain data
only, so it loads with ``torch.load(..., weights_only=True)``: opening someone
else's checkpoint never runs code.
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import torch

from .io import atomic_write_bytes

FORMAT_VERSION = 1
KINDS = ("sdn", "occnet", "verifier")


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sdn-bench")
    except PackageNotFoundError:
        return "unknown"


def git_commit() -> str | None:
    """The source tree's commit, when it is a git checkout (None otherwise)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    path: str | os.PathLike, kind: str, config: dict, state: dict, step: int, data_fingerprint: str, **extra
) -> Path:
    """Atomically write a checkpoint: ``state`` holds model/optimiser state dicts."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    payload = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": config,
        "step": int(step),
        "rng": rng_state(),
        "package_version": package_version(),
        "git_commit": git_commit(),
        "data_fingerprint": data_fingerprint,
        **state,
        **extra,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def load_checkpoint(path: str | os.PathLike, kind: str | None = None, map_location: str = "cpu") -> dict:
    """Load a checkpoint safely; raise ValueError naming the file if it is missing,
    unreadable, of another format version, or not of ``kind``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for corrupt or unsafe files
        raise ValueError(f"{path}: not a readable sdn-bench checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict) or "kind" not in ckpt or "format_version" not in ckpt:
        raise ValueError(f"{path}: not an sdn-bench checkpoint (no 'kind'/'format_version')")
    if ckpt["format_version"] != FORMAT_VERSION:
        raise ValueError(
            f"{path}: checkpoint format {ckpt['format_version']}, this version reads {FORMAT_VERSION}"
        )
    if kind is not None and ckpt["kind"] != kind:
        raise ValueError(f"{path}: checkpoint kind is {ckpt['kind']!r}, expected {kind!r}")
    return ckpt


def export_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, half: bool = True) -> dict:
    """Write a weights-only copy of a checkpoint for distribution: the model state (floating
    tensors cast to float16 when ``half``), config, step and provenance; no optimiser or RNG
    state, so it cannot be resumed. Returns the loaded source checkpoint."""
    ckpt = load_checkpoint(src)
    model = {k: (v.half() if half and v.is_floating_point() else v) for k, v in ckpt["model"].items()}
    keep = ("config", "step", "data_fingerprint", "package_version", "git_commit", "threshold", "val_iou")
    payload = {
        "format_version": FORMAT_VERSION,
        "kind": ckpt["kind"],
        "model": model,
        "exported": True,
        "weights_dtype": "float16" if half else "float32",
        **{k: ckpt[k] for k in keep if k in ckpt},
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(dst, buf.getvalue())
    return ckpt
