"""The contract every set model meets before a harness sees it (:mod:`sdn.set_model`).

:class:`CheckedSetModel` wraps any object with ``resolution`` and ``reconstruct`` (and,
optionally, ``sample``, ``name``, ``describe``) and checks each output: a floating
``torch.Tensor`` of the expected shape, finite, in [0, 1]. A model that breaks the contract
fails at once with a ``ValueError`` naming its spec and what was expected, instead of
producing a quietly wrong report. Outputs come back as float32 on the CPU, quantised to 8
bits (:func:`quantise`); inputs and seeds are passed to the model unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np
import torch

RANGE_TOLERANCE = 1e-6
"""How far outside [0, 1] an output value may lie (float rounding of a model's last
mapping); outputs are checked against it, not clamped."""


def quantise(images: torch.Tensor) -> torch.Tensor:
    """Generated images (..., 3, H, W) in [0, 1] -> the nearest of the 256 levels k/255, as an
    image written to disk (a PNG) holds them: every model is scored on 8-bit images, as the
    real ones are, and a model scored through a folder of PNGs (``folder:DIR``) gets exactly
    the score it gets in-process. The change is at most 1/510 per pixel."""
    return images.clamp(0, 1).mul(255).round().div(255)


class CheckedSetModel:
    """A set model whose outputs are checked against the contract.

    model: any object with a positive int ``resolution`` and a callable
    ``reconstruct(sets, n_out, seed)``; optional ``sample(num_sets, set_size, prior, seed)``,
    ``name: str`` and ``describe() -> dict``.
    spec: how the model was named (``--model SPEC``), quoted in every error.
    resolution: the working resolution the harness needs, or None if the model decides;
    when given, the model's ``resolution`` must equal it.

    Capability: ``hasattr(checked, "sample")`` is True exactly when the wrapped model has a
    callable ``sample`` (the attribute raises AttributeError otherwise).
    """

    def __init__(self, model: object, spec: str, resolution: int | None = None):
        self.wrapped = model
        self.spec = spec
        if not callable(getattr(model, "reconstruct", None)):
            raise ValueError(
                f"set model {spec!r}: a {type(model).__name__} object has no callable "
                "reconstruct(sets, n_out, seed), which every set model needs (sdn.set_model.SetModel)"
            )
        if not hasattr(model, "resolution"):
            raise ValueError(
                f"set model {spec!r}: a {type(model).__name__} object has no `resolution` attribute "
                "(the side in pixels of the images it reads and writes)"
            )
        r = model.resolution
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1:
            raise ValueError(f"set model {spec!r}: resolution must be a positive int, got {r!r}")
        if resolution is not None and int(r) != resolution:
            raise ValueError(
                f"set model {spec!r} works at {int(r)} px, but this benchmark needs {resolution} px "
                "images (the context's resolution)"
            )
        self.resolution = int(r)
        name = getattr(model, "name", None)
        if name is None:
            name = type(model).__name__
        elif not isinstance(name, str) or not name:
            raise ValueError(f"set model {spec!r}: `name` must be a non-empty str, got {name!r}")
        self.name: str = name
        sample = getattr(model, "sample", None)
        self._sample: Callable | None = sample if callable(sample) else None

    def reconstruct(self, sets: torch.Tensor, n_out: int, seed: Sequence[int]) -> torch.Tensor:
        """sets (B, n, 3, R, R) in [0, 1], n_out >= 1, seed: B per-set ints (sdn.seeding)
        -> (B, n_out, 3, R, R) float32 on the CPU, in [0, 1]; R = ``resolution``."""
        out = self.wrapped.reconstruct(sets, n_out, seed)
        call = f"reconstruct(sets of shape {tuple(sets.shape)}, n_out={n_out})"
        return self._check_images(out, call, sets.shape[0], n_out)

    @property
    def sample(self) -> Callable[[int, int, str, Sequence[int]], torch.Tensor]:
        """The checked ``sample(num_sets, set_size, prior, seed)`` -> (num_sets, set_size, 3, R, R)
        float32 on the CPU, in [0, 1]; prior "learned" or "uniform", seed: num_sets per-set ints.
        Raises AttributeError when the wrapped model cannot sample (so ``hasattr`` is False)."""
        if self._sample is None:
            raise AttributeError(f"set model {self.spec!r} has no sample(): it cannot draw free sets")
        return self._checked_sample

    def _checked_sample(self, num_sets: int, set_size: int, prior: str, seed: Sequence[int]) -> torch.Tensor:
        out = self._sample(num_sets, set_size, prior, seed)
        call = f"sample(num_sets={num_sets}, set_size={set_size}, prior={prior!r})"
        return self._check_images(out, call, num_sets, set_size)

    def describe(self) -> dict:
        """The wrapped model's ``describe()`` (checked: a JSON-serialisable dict), or
        ``{"name": name}`` when it has none."""
        describe = getattr(self.wrapped, "describe", None)
        if not callable(describe):
            return {"name": self.name}
        info = describe()
        if not isinstance(info, dict):
            raise ValueError(
                f"set model {self.spec!r}: describe() returned a {type(info).__name__}, expected a dict"
            )
        try:
            json.dumps(info)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"set model {self.spec!r}: describe() must return a JSON-serialisable dict ({e})"
            ) from e
        return info

    def _check_images(self, out: object, call: str, num_sets: int, set_size: int) -> torch.Tensor:
        """out: what ``call`` returned, expected (num_sets, set_size, 3, R, R) floating in [0, 1]
        -> the same values as float32 on the CPU."""
        where = f"set model {self.spec!r}: {call}"
        r = self.resolution
        expected = (num_sets, set_size, 3, r, r)
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"{where} returned a {type(out).__name__}, expected a torch.Tensor {expected}")
        shape = tuple(out.shape)
        if not out.is_floating_point():
            raise ValueError(
                f"{where} returned dtype {out.dtype}, expected a floating dtype (images in [0, 1])"
            )
        if out.dim() != 5:
            raise ValueError(f"{where} returned a {out.dim()}-d tensor {shape}, expected 5-d {expected}")
        got = f"(shape {shape}, expected {expected})"
        if shape[0] != num_sets:
            raise ValueError(f"{where} returned {shape[0]} sets, expected {num_sets} {got}")
        if shape[1] != set_size:
            raise ValueError(f"{where} returned {shape[1]} images per set, expected {set_size} {got}")
        if shape[2] != 3:
            raise ValueError(f"{where} returned {shape[2]} channels, expected 3 (RGB) {got}")
        if shape[3:] != (r, r):
            raise ValueError(
                f"{where} returned {shape[3]}x{shape[4]} px images, expected {r}x{r} (its resolution) {got}"
            )
        out = out.detach().to(device="cpu", dtype=torch.float32)
        if out.numel() == 0:
            return out
        finite = torch.isfinite(out)
        if not bool(finite.all()):
            nan = int(torch.isnan(out).sum())
            raise ValueError(f"{where} returned {nan} NaN and {int((~finite).sum()) - nan} infinite values")
        lo, hi = float(out.min()), float(out.max())
        if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
            raise ValueError(
                f"{where} returned values in [{lo:.6g}, {hi:.6g}], expected [0, 1] "
                f"(tolerance {RANGE_TOLERANCE:g}; values are checked, not clamped)"
            )
        return quantise(out)
