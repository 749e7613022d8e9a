"""The project's own face verifier: a compact ResNet embedder trained by identity
classification on the *train* identities of a VGGFace2-layout root, for use where no
pretrained face embedder is available (DESIGN.md §2).

Images (N, 3, H, W) in [0, 1] -> mapped to [-1, 1] -> a ResNet body (a 3x3 stem, four
stages of ``depth`` basic residual blocks at widths w, 2w, 4w, 8w, each halving the
side) -> BatchNorm, flatten, linear, BatchNorm1d (ArcFace's "E" output block, which
keeps the spatial layout of an aligned face) -> an ``embed_dim`` embedding. Training
adds a classification head over the training identities (softmax, CosFace or ArcFace);
verification uses the L2-normalised embedding only.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from sdn.checkpoint import load_checkpoint
from sdn.config import ModelTrainConfig, require_positive

HEADS = ("softmax", "cosface", "arcface")
CROPS = ("auto", "loose_bb", "mtcnn", "none")


@dataclass
class VerifierModelConfig:
    """resolution: input side (a multiple of 16). width: base channels w. depth: residual
    blocks per stage. embed_dim: embedding size.

    head: the training classifier. ``arcface`` (the default): logits s * cos θ_j, with
    s * cos(θ_y + m) for the true class; ``cosface``: s * (cos θ_j - m [j = y]);
    ``softmax``: a plain linear layer on the embedding. scale s and margin m apply to the
    margin heads (ArcFace's paper uses m = 0.5, CosFace's m = 0.35; s = 30 suits a few
    hundred to a few thousand classes).

    Why ArcFace: measured on held-out *train* identities (validation, as ``best.pt`` is
    chosen; the test identities are the benchmarks' alone) of the default synthetic faces
    (``sdn-bench data faces``: procedural cartoon faces whose identity lies in face shape, eye,
    brow, nose, mouth, marks and hair colour; per image: pose, scale, in-plane rotation,
    expression, lighting, colour cast, noise, blur, background), 400 train identities x 24
    images of which 40 are held out (``val_fraction`` 0.1, seed 0), loose-box crops at 64 px;
    this model (cpu-64: width 32, depth 1, 128-d), batch 64, AdamW 2e-3, bf16, 600 steps, s = 30.
    Verification over all 1120 positive pairs of 8 images per held-out identity and 20k seeded
    negative pairs, AUC / TPR at FPR 1e-2:

    ==================  ===============
    head                600 steps
    ==================  ===============
    softmax             0.9947 / 0.880
    cosface m=0.35      0.9963 / 0.928
    arcface m=0.5       0.9980 / 0.955
    ==================  ===============

    ArcFace is best on both figures, most clearly at the strict operating point.
    """

    resolution: int = 64
    width: int = 32
    depth: int = 1
    embed_dim: int = 128
    head: str = "arcface"
    scale: float = 30.0
    margin: float = 0.5

    def validate(self) -> None:
        require_positive(self, ("resolution", "width", "depth", "embed_dim"))
        if self.resolution % 16 or self.resolution < 16:
            raise ValueError(f"resolution must be a multiple of 16 (>= 16), got {self.resolution}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.scale <= 0 or not 0 <= self.margin < 1:
            raise ValueError(f"need scale > 0 and 0 <= margin < 1, got {self.scale}, {self.margin}")


@dataclass
class VerifierTrainConfig:
    """AdamW (lr, weight_decay) with a linear warm-up over ``warmup_steps``, then constant;
    ``batch_images`` images per step drawn from every training image (each epoch a seeded
    permutation, so a resume is exact); ``flip`` mirrors each image with probability 1/2.

    crop: how faces are cut from the images (:mod:`sdn.data.vggface2`): ``auto`` = the
    loose box when ``bb_landmark/loose_bb_{train,test}.csv`` exist, else the whole image;
    the resolved choice is what the checkpoint records. images_per_identity: at most this
    many training images per identity (seeded; 0 = all).

    Validation (for ``best.pt``): ``val_fraction`` (> 0) of the train identities (at least
    2; seeded, :func:`sdn.data.vggface2.hold_out_identities`) are held out of classification
    and scored by verification AUC and TPR at FPR 1e-2, over all positive pairs of up to
    ``eval_images_per_identity`` images per identity and ``eval_negatives`` seeded negative
    pairs. Training never reads the test identities: they are the benchmarks' alone.
    """

    steps: int = 3000
    batch_images: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4
    warmup_steps: int = 100
    flip: bool = True
    crop: str = "auto"
    images_per_identity: int = 0
    val_fraction: float = 0.1
    eval_images_per_identity: int = 8
    eval_negatives: int = 20_000
    precision: str = "bf16"
    seed: int = 0
    checkpoint_every: int = 500
    eval_every: int = 250
    log_every: int = 25
    max_minutes: float = 0.0

    def validate(self) -> None:
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be fp32, bf16 or fp16, got {self.precision!r}")
        if self.crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}, got {self.crop!r}")
        require_positive(
            self,
            ("steps", "batch_images", "checkpoint_every", "eval_every", "log_every", "eval_negatives"),
        )
        if self.eval_images_per_identity < 2:
            raise ValueError(f"eval_images_per_identity must be >= 2, got {self.eval_images_per_identity}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(
                f"val_fraction must lie in (0, 1) (best.pt is chosen on held-out train identities), "
                f"got {self.val_fraction}"
            )
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_steps < 0 or self.images_per_identity < 0:
            raise ValueError("need lr > 0 and weight_decay, warmup_steps, images_per_identity >= 0")


@dataclass
class VerifierConfig(ModelTrainConfig):
    NAME: ClassVar[str] = "verifier"
    SECTIONS: ClassVar[dict] = {"model": VerifierModelConfig, "train": VerifierTrainConfig}

    model: VerifierModelConfig = field(default_factory=VerifierModelConfig)
    train: VerifierTrainConfig = field(default_factory=VerifierTrainConfig)
    preset: str = "custom"


_PRESETS = {
    # The CPU default (the measured set-up above): 64 px, about 80 M multiply-adds per image,
    # about 0.3 s a step of 64 images on one core in bf16.
    "cpu-64": (dict(), dict()),
    # A larger net for GPUs or real VGGFace2 (ArcFace-style 112 px input).
    "gpu-112": (
        dict(resolution=112, width=64, depth=2, embed_dim=256),
        dict(
            batch_images=256, steps=30_000, lr=1e-3, warmup_steps=500, checkpoint_every=1000, eval_every=1000
        ),
    ),
    # For tests: seconds on a CPU.
    "tiny": (
        dict(resolution=32, width=8, embed_dim=16),
        dict(
            batch_images=8,
            steps=20,
            warmup_steps=0,
            checkpoint_every=10,
            eval_every=10,
            log_every=5,
            eval_negatives=200,
        ),
    ),
}
PRESETS = tuple(_PRESETS)


def verifier_preset(name: str) -> VerifierConfig:
    """The named preset (``cpu-64`` is the default)."""
    return VerifierConfig.from_preset(_PRESETS, name)


# ----------------------------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus a (1x1 conv + BN when the shape changes) shortcut, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.short is None else self.short(x)))


class FaceEmbedder(nn.Module):
    """(N, 3, R, R) in [0, 1] -> (N, embed_dim) raw (not normalised) embeddings."""

    def __init__(self, m: VerifierModelConfig):
        super().__init__()
        w = m.width
        layers: list[nn.Module] = [nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
        cin = w
        for mult in (1, 2, 4, 8):
            for b in range(m.depth):
                layers.append(BasicBlock(cin, w * mult, 2 if b == 0 else 1))
                cin = w * mult
        layers.append(nn.BatchNorm2d(cin))
        self.body = nn.Sequential(*layers)
        side = m.resolution // 16
        self.fc = nn.Linear(cin * side * side, m.embed_dim)
        self.bn = nn.BatchNorm1d(m.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x * 2.0 - 1.0)
        return self.bn(self.fc(torch.flatten(h, 1)))


class ClassifierHead(nn.Module):
    """Identity logits from embeddings, in float32. ``labels`` (training) applies the margin;
    without labels the margin-free logits are returned (for accuracy)."""

    def __init__(self, m: VerifierModelConfig, num_classes: int):
        super().__init__()
        self.kind, self.s, self.m = m.head, m.scale, m.margin
        self.weight = nn.Parameter(torch.randn(num_classes, m.embed_dim) * 0.01)
        self.bias = nn.Parameter(torch.zeros(num_classes)) if m.head == "softmax" else None

    def forward(self, emb: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        emb = emb.float()
        if self.kind == "softmax":
            return F.linear(emb, self.weight, self.bias)
        cos = F.linear(F.normalize(emb, dim=1), F.normalize(self.weight, dim=1)).clamp(-1.0, 1.0)
        if labels is None or self.m == 0:
            return self.s * cos
        onehot = F.one_hot(labels, cos.shape[1]).bool()
        if self.kind == "cosface":
            target = cos - self.m
        else:  # arcface: cos(θ + m), kept monotonic in θ past π - m (InsightFace's fallback)
            sin = (1.0 - cos.square()).clamp_min(1e-7).sqrt()
            shifted = cos * math.cos(self.m) - sin * math.sin(self.m)
            target = torch.where(
                cos > math.cos(math.pi - self.m), shifted, cos - math.sin(math.pi - self.m) * self.m
            )
        return self.s * torch.where(onehot, target, cos)


class VerifierNet(nn.Module):
    """The embedder plus its training head. ``forward(x, labels)`` -> (margin logits, plain
    logits); :meth:`embed` -> L2-normalised embeddings."""

    def __init__(self, cfg: VerifierConfig, num_classes: int):
        super().__init__()
        cfg.model.validate()
        if num_classes < 2:
            raise ValueError(f"a verifier needs at least 2 training identities, got {num_classes}")
        self.cfg, self.num_classes = cfg, num_classes
        self.backbone = FaceEmbedder(cfg.model)
        self.head = ClassifierHead(cfg.model, num_classes)

    @property
    def resolution(self) -> int:
        return self.cfg.model.resolution

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.backbone(x)
        return self.head(emb, labels), self.head(emb)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, R, R) in [0, 1] -> (N, embed_dim) float32, unit L2 norm."""
        return F.normalize(self.backbone(x).float(), dim=1)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, map_location: str = "cpu") -> VerifierNet:
        """Rebuild a verifier from a checkpoint (kind "verifier"), in eval mode. The number of
        classes is read from the head's weights; ``crop`` is the crop it was trained on."""
        ckpt = load_checkpoint(path, kind="verifier", map_location=map_location)
        cfg = VerifierConfig.from_dict(ckpt["config"])
        state = ckpt["model"]
        if "head.weight" not in state:
            raise ValueError(f"{path}: verifier checkpoint without head weights")
        model = cls(cfg, int(state["head.weight"].shape[0]))
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        model.crop = cfg.train.crop
        model.step = int(ckpt.get("step", 0))
        return model.eval()
