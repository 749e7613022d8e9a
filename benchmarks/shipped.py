"""The reference checkpoints shipped with sdn-bench, found from the installed package.

The repository's ``checkpoints/`` folder is installed as the package ``sdn_bench_checkpoints``
(pyproject.toml maps it; an editable install points at the folder itself), so the defaults of
``sdn-bench shapenet`` (the reference OccNet), ``sdn-bench faces`` (the verifier) and
``sdn-bench bench`` (the reference SDNs too) work from any directory, with a wheel as with a
checkout. Nothing is downloaded.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

PACKAGE = "sdn_bench_checkpoints"
SHAPES_SDN = "sdn-shapes-cpu32.pt"
OCCNET = "occnet-shapes-cpu32.pt"
FACES_SDN = "sdn-faces-cpu32.pt"
VERIFIER = "verifier-faces64.pt"


def shipped_checkpoint(name: str) -> Path:
    """The installed path of the shipped checkpoint ``name`` (e.g. ``OCCNET``); ValueError
    naming the path when this installation lacks it."""
    path = Path(str(files(PACKAGE) / name))
    if not path.is_file():
        raise ValueError(
            f"no shipped checkpoint {name!r}: expected it at {path} (package {PACKAGE}, the "
            "repository's checkpoints/ folder); reinstall sdn-bench or pass the file's path"
        )
    return path


def resolve_checkpoint(value: str | None, default: str) -> str:
    """A checkpoint option's value as a path: None gives the shipped ``default``; an existing
    file is kept as given; ``<name>`` or ``checkpoints/<name>`` of a shipped checkpoint that is
    not a file here gives the shipped file (so the repository's paths work from any
    directory); anything else is returned unchanged for its loader to reject by name."""
    if value is None:
        return str(shipped_checkpoint(default))
    path = Path(value)
    if path.is_file() or str(path.parent) not in (".", "checkpoints"):
        return value
    candidate = Path(str(files(PACKAGE) / path.name))
    return str(candidate) if candidate.is_file() else value
