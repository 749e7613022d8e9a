"""The set-model interface through which the benchmarks talk to a model (DESIGN.md §2).

A baseline or a user's own set model is scored by the same harness by implementing these
members; the SDN is the first implementation, not a special case. Images are float tensors
in [0, 1], (B, n, 3, H, W) with H = W = ``resolution``.

Required: ``resolution`` and ``reconstruct``. Optional:

- ``sample(num_sets, set_size, prior, seed) -> (num_sets, set_size, 3, H, W)`` in [0, 1]: free
  samples, ``prior`` "learned" (the model's own prior) or "uniform" (a uniform prior over its
  codes, where that means something), ``seed`` a list of ``num_sets`` per-set integers as for
  ``reconstruct``. A model without it is still scored on every reconstruction metric; its report just has no
  free (learned-prior) or uniform-prior sample rows. It is not a member of the Protocol
  (``isinstance`` does not require it); test it with ``callable(getattr(model, "sample", None))``.
- ``name: str``: a short name for report headers (default: the class name).
- ``describe() -> dict``: a JSON-serialisable description of the model stored in the report's
  manifest (default: ``{"name": name}``).

Seeds: a harness derives one integer seed per set (:mod:`sdn.seeding`, from the run's seed,
the kind of set and the set's id) and passes them as a list, one per set, in the order of the
sets. A model should make set b's images a function of ``seed[b]`` (and its inputs) alone, so
results do not depend on batch size, chunking or worker count. Outputs are checked by
:class:`benchmarks.models.contract.CheckedSetModel` before any harness sees them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class SetModel(Protocol):
    """A generative model of image sets: ``resolution`` and ``reconstruct`` (see the module
    docstring for the optional ``sample``, ``name`` and ``describe``)."""

    resolution: int
    """Side in pixels of the square images the model reads and writes."""

    def reconstruct(self, sets: torch.Tensor, n_out: int, seed: Sequence[int]) -> torch.Tensor:
        """Generate ``n_out`` new images of each input set.

        sets: (B, n, 3, H, W) in [0, 1], H = W = ``resolution``.
        n_out: images to generate per set (>= 1).
        seed: B integers, one per set (:mod:`sdn.seeding`); set b's outputs depend on
        ``seed[b]`` and ``sets[b]`` only.
        Returns (B, n_out, 3, H, W), floating, in [0, 1].
        """
        ...
