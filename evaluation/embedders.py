"""Face embedders behind one small interface, for the verification metrics (DESIGN.md §5).

The contract (:class:`Embedder`): ``embed(images) -> (N, D)`` float32 CPU tensor of unit
L2 norm, where ``images`` is an (N, 3, H, W) float tensor of RGB values in [0, 1], of
any side H, W (each embedder resizes to its own ``resolution`` and applies its own
normalisation) on any device. Work runs in eval mode, without gradients, in batches
of ``batch_size``, so N may be large; equal inputs give equal outputs.

Implementations:

- ``facenet-vggface2`` / ``facenet-casia``: facenet-pytorch's InceptionResnetV1 with the
  official weights (trained on VGGFace2 / CASIA-WebFace): resize to 160 px (bilinear,
  antialiased), ``fixed_image_standardization`` ((255 x - 127.5) / 128), 512-d. The
  weights are read from an explicit path or from ``$TORCH_HOME/checkpoints/<official
  file name>`` (TORCH_HOME defaulting, as torch.hub does, to
  ``$XDG_CACHE_HOME/torch`` or ``~/.cache/torch``), which is where facenet-pytorch itself
  caches them. Nothing is ever downloaded: a missing file is a ValueError naming the
  path and the URL to fetch it from on a machine with network access.
- ``verifier``: the project's own verifier checkpoint (:mod:`evaluation.verifier`).

:func:`load_embedder` picks one by name or by a path to a verifier checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

FACENET_WEIGHTS = {
    # name: (facenet-pytorch's ``pretrained`` value, official file, classes of its logits layer)
    "facenet-vggface2": ("vggface2", "20180402-114759-vggface2.pt", 8631),
    "facenet-casia": ("casia-webface", "20180408-102900-casia-webface.pt", 10575),
}
FACENET_URL = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/{file}"
NAMES = (*FACENET_WEIGHTS, "verifier")


def torch_home() -> Path:
    """``$TORCH_HOME``, else ``$XDG_CACHE_HOME/torch``, else ``~/.cache/torch`` (torch.hub's rule)."""
    default = os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(os.path.expanduser(os.getenv("TORCH_HOME", default)))


def facenet_weights_path(name: str) -> Path:
    """Where facenet-pytorch caches the official weights of ``name``."""
    if name not in FACENET_WEIGHTS:
        raise ValueError(f"unknown facenet embedder {name!r}; known: {', '.join(FACENET_WEIGHTS)}")
    return torch_home() / "checkpoints" / FACENET_WEIGHTS[name][1]


class Embedder:
    """The interface: ``name``, ``resolution`` (input side it resizes to), ``dim``,
    ``batch_size``, ``device``, and :meth:`embed`. Subclasses implement :meth:`_forward`
    on a batch already on the device, resized to ``resolution`` and still in [0, 1]."""

    name: str = "embedder"
    resolution: int = 0
    dim: int = 0

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 64):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device, self.batch_size = torch.device(device), batch_size

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) float in [0, 1] -> (N, dim) float32 on the CPU, unit L2 norm per row."""
        if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
            raise ValueError(f"{self.name}: images must be an (N, 3, H, W) tensor, got {shape}")
        if not images.is_floating_point():
            raise ValueError(f"{self.name}: images must be float in [0, 1], got {images.dtype}")
        if len(images) == 0:
            return torch.zeros(0, self.dim)
        lo, hi = float(images.min()), float(images.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(f"{self.name}: images must lie in [0, 1], got values in [{lo:.3g}, {hi:.3g}]")
        out = []
        for s in range(0, len(images), self.batch_size):
            x = images[s : s + self.batch_size].to(self.device, torch.float32)
            if x.shape[-2:] != (self.resolution, self.resolution):
                x = F.interpolate(
                    x,
                    size=(self.resolution, self.resolution),
                    mode="bilinear",
                    antialias=True,
                    align_corners=False,
                )
            out.append(F.normalize(self._forward(x).float(), dim=1).cpu())
        return torch.cat(out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, resolution={self.resolution}, dim={self.dim})"


class FacenetEmbedder(Embedder):
    """facenet-pytorch's InceptionResnetV1 (``facenet-vggface2`` or ``facenet-casia``)."""

    resolution = 160
    dim = 512

    def __init__(
        self,
        name: str = "facenet-vggface2",
        weights: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
    ):
        super().__init__(device, batch_size)
        from facenet_pytorch import InceptionResnetV1

        if name not in FACENET_WEIGHTS:
            raise ValueError(f"unknown facenet embedder {name!r}; known: {', '.join(FACENET_WEIGHTS)}")
        pretrained, file, classes = FACENET_WEIGHTS[name]
        path = Path(weights) if weights is not None else facenet_weights_path(name)
        if not path.is_file():
            raise ValueError(
                f"{name}: weights not found at {path}. Nothing is downloaded at run time: fetch "
                f"{FACENET_URL.format(file=file)} on a machine with network access and put it at "
                f"{facenet_weights_path(name)} (set TORCH_HOME to use another folder), or pass its path "
                "as weights"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises several types for corrupt or unsafe files
            raise ValueError(f"{path}: not a readable state dict ({type(e).__name__}: {e})") from e
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise ValueError(f"{path}: expected an InceptionResnetV1 state dict, got {type(state).__name__}")
        if "logits.weight" in state:
            classes = int(state["logits.weight"].shape[0])
        model = InceptionResnetV1(pretrained=None, classify=False, num_classes=classes)
        if "logits.weight" in state:  # the official files hold the classifier too; unused here
            model.logits = torch.nn.Linear(512, classes)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(f"{path}: not {name} InceptionResnetV1 weights ({e})") from e
        self.name, self.weights, self.pretrained = name, path, pretrained
        self.model = model.eval().to(self.device)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x * 255.0 - 127.5) / 128.0)  # facenet_pytorch.fixed_image_standardization


class VerifierEmbedder(Embedder):
    """The project's verifier from its checkpoint (``checkpoint.pt``, ``best.pt`` or an export).
    ``crop`` is the face crop it was trained on: score it on images cut the same way."""

    def __init__(self, path: str | os.PathLike, device: str | torch.device = "cpu", batch_size: int = 256):
        super().__init__(device, batch_size)
        from .verifier import VerifierNet

        path = Path(path)
        if path.is_dir():
            path = path / "best.pt" if (path / "best.pt").is_file() else path / "checkpoint.pt"
        self.model = VerifierNet.from_checkpoint(path).to(self.device).eval()
        self.weights = path
        self.name = f"verifier:{path.name}"  # the file (its sha256 is in the manifest), not where it lies
        self.resolution = self.model.resolution
        self.dim = self.model.cfg.model.embed_dim
        self.crop = self.model.crop

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.embed(x)


def load_embedder(
    name_or_path: str | os.PathLike,
    weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> Embedder:
    """An embedder by name (``facenet-vggface2``, ``facenet-casia``; ``verifier`` with
    ``weights`` = its checkpoint) or by the path of a verifier checkpoint or run folder."""
    key = os.fspath(name_or_path)
    if key in FACENET_WEIGHTS:
        return FacenetEmbedder(key, weights, device)
    if key == "verifier":
        if weights is None:
            raise ValueError("the verifier embedder needs weights=<verifier checkpoint or run folder>")
        return VerifierEmbedder(weights, device)
    if Path(key).exists():
        if weights is not None:
            raise ValueError(f"give the verifier checkpoint once: {key!r} and weights={weights!r}")
        return VerifierEmbedder(key, device)
    raise ValueError(
        f"unknown embedder {key!r}: expected one of {', '.join(NAMES)} or a verifier checkpoint path"
    )
