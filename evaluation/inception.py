"""Inception features with clean-fid's conventions, from a local weights file only.

The standard FID network is the TensorFlow Inception v3 of 2015-12-05 (pool3, 2048-d), as
a TorchScript file (``inception-2015-12-05.pt``, the file clean-fid and StyleGAN2-ADA use).
Nothing is downloaded: :class:`InceptionFeatures` loads the file the user names
(``--fid-weights PATH``) and a missing or unusable file is a ValueError naming the path.

Conventions of clean-fid's default ("clean") mode, followed here:

1. images (N, 3, H, W) in [0, 1] are quantised to uint8, round(255 x) (what a saved PNG
   holds);
2. each channel is resized on its own, as a float32 image, to 299 x 299 with PIL's bicubic
   filter (no quantisation after the resize: the anti-aliased "clean" resize);
3. values in [0, 255] are mapped to [-1, 1] by (x - 128) / 128 and passed to the network's
   ``layers`` (the scripted body without its own resize), giving (N, 2048) features.

The Fréchet distance of these features (:func:`evaluation.realism.frechet_distance`) is the
standard FID, comparable with published clean-fid numbers only at the same N, image source
and resolution.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

SIZE = 299  # the network's input side


def clean_resize(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) float in [0, 1] -> (N, 3, 299, 299) float32 in [0, 255]: uint8
    quantisation, then PIL bicubic per channel in float mode (module docstring)."""
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"images must be an (N, 3, H, W) tensor, got {shape}")
    u8 = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    out = np.empty((len(u8), 3, SIZE, SIZE), np.float32)
    for i, image in enumerate(u8):
        for c in range(3):
            channel = Image.fromarray(image[c].astype(np.float32), mode="F")
            out[i, c] = np.asarray(channel.resize((SIZE, SIZE), resample=Image.BICUBIC))
    return out


class InceptionFeatures:
    """The FID network from ``path`` (a TorchScript file with a ``layers`` module taking
    (N, 3, 299, 299) in [-1, 1]); :meth:`features` gives (N, D) float64 features."""

    def __init__(self, path: str | os.PathLike, batch_size: int = 32):
        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(
                f"--fid-weights: no file at {self.path}; nothing is downloaded: give the path of a local "
                "inception-2015-12-05.pt (the TorchScript FID network clean-fid uses)"
            )
        try:
            base = torch.jit.load(str(self.path), map_location="cpu").eval()
        except (RuntimeError, ValueError) as e:
            raise ValueError(f"--fid-weights: {self.path} is not a TorchScript file ({e})") from e
        if not hasattr(base, "layers"):
            raise ValueError(
                f"--fid-weights: {self.path} has no `layers` module: expected the TorchScript FID network "
                "inception-2015-12-05.pt"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.layers, self.batch_size = base.layers, batch_size

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> np.ndarray:
        """(N, 3, H, W) float in [0, 1] -> (N, D) float64 features (module docstring)."""
        x = clean_resize(images)
        out = []
        for s in range(0, len(x), self.batch_size):
            batch = (torch.from_numpy(x[s : s + self.batch_size]) - 128.0) / 128.0
            out.append(self.layers.forward(batch).reshape(len(batch), -1).double().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0))
