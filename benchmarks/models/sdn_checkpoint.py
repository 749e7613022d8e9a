"""SDN checkpoints as set models: the one module of the benchmark harnesses that imports
:class:`sdn.model.SDN` (the harnesses see only the contract-checked model)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.disclosure import model_disclosure
from sdn.model import SDN


def load_sdn(path: str | Path) -> tuple[SDN, dict]:
    """Rebuild an SDN from its checkpoint (CPU, eval mode) -> (model, its disclosure:
    :func:`benchmarks.disclosure.model_disclosure`). ValueError naming the file if it is
    missing, unreadable or not an SDN checkpoint."""
    model = SDN.from_checkpoint(path)
    return model, model_disclosure(model)


def sdn_disclosure(obj: object) -> dict | None:
    """The disclosure of an SDN object, or None when ``obj`` is not an SDN."""
    return model_disclosure(obj) if isinstance(obj, SDN) else None
