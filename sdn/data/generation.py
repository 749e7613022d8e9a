"""The generation record (``ROOT/generation.json``) shared by the synthetic dataset generators."""

from __future__ import annotations

import json
from pathlib import Path


def check_splits(splits, allowed: tuple[str, ...]) -> None:
    """Raise ValueError unless ``splits`` is a non-empty subset of ``allowed``."""
    if not splits or set(splits) - set(allowed):
        raise ValueError(f"splits must be a non-empty subset of {', '.join(allowed)}, got {list(splits)}")


def generation_record(root: Path, config: dict, version: int, **fields) -> dict:
    """The existing record of ``root``, or a fresh one (``config``, ``generator_version``,
    ``fields``, an empty ``runs`` list). Raises ValueError naming the differing keys when
    ``root`` was generated with another configuration or generator version, so a rerun
    only ever resumes the same dataset."""
    path = Path(root) / "generation.json"
    if not path.exists():
        return {"config": config, "generator_version": version, **fields, "runs": []}
    record = json.loads(path.read_text())
    if record.get("generator_version") != version or record.get("config") != config:
        have = record.get("config", {})
        diff = sorted(k for k in set(have) | set(config) if have.get(k) != config.get(k))
        raise ValueError(
            f"{root} already holds a dataset generated with other settings "
            f"(differs in: {', '.join(diff) or 'generator_version'}); "
            f"use another --out or the same arguments to resume"
        )
    return record
