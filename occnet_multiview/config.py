"""Typed configuration of the multi-view Occupancy Network and its training, with presets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from sdn.config import ModelTrainConfig, require_positive

ENCODERS = ("resnet18", "cnn")


@dataclass
class OccNetModelConfig:
    """resolution: input image side. encoder: ``resnet18`` (torchvision, random init,
    the paper preset) or ``cnn`` (a small CPU encoder). c_dim: image code size.
    hidden / n_blocks: the conditional-BatchNorm ResNet decoder (OccNet: 256 / 5).
    cnn_ch: base width of the small CNN."""

    resolution: int = 32
    encoder: str = "cnn"
    c_dim: int = 256
    hidden: int = 256
    n_blocks: int = 5
    cnn_ch: int = 32

    def validate(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        require_positive(self, ("resolution", "c_dim", "hidden", "n_blocks", "cnn_ch"))
        if self.resolution < 16:
            raise ValueError(f"resolution must be >= 16, got {self.resolution}")


@dataclass
class OccNetTrainConfig:
    """OccNet's recipe: Adam 1e-4, 2048 points per object per step, BCE with logits.

    views_per_sample: K random views per object per step (codes pooled); 1 = OccNet's
    single-view training. val_objects: validation objects for IoU (0 = all).
    thresholds: candidate probability thresholds scored on validation (0.2 is OccNet's).
    """

    steps: int = 20_000
    batch_objects: int = 32
    points_per_object: int = 2048
    views_per_sample: int = 1
    lr: float = 1e-4
    precision: str = "bf16"
    seed: int = 0
    checkpoint_every: int = 500
    eval_every: int = 500
    log_every: int = 25
    val_objects: int = 64
    # Training objects per category (the first N of train.lst; 0 = all): the training-set
    # size of a study at equal steps, on nested subsets of one set.
    train_per_category: int = 0
    thresholds: tuple = (0.2, 0.3, 0.4, 0.5)
    max_minutes: float = 0.0

    def validate(self) -> None:
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be fp32, bf16 or fp16, got {self.precision!r}")
        require_positive(
            self,
            (
                "steps",
                "batch_objects",
                "points_per_object",
                "views_per_sample",
                "checkpoint_every",
                "eval_every",
                "log_every",
            ),
        )
        if self.train_per_category < 0:
            raise ValueError(f"train_per_category must be >= 0 (0 = all), got {self.train_per_category}")
        if not all(0.0 < t < 1.0 for t in self.thresholds):
            raise ValueError(f"thresholds must lie in (0, 1), got {self.thresholds}")


@dataclass
class OccNetConfig(ModelTrainConfig):
    NAME: ClassVar[str] = "OccNet"
    SECTIONS: ClassVar[dict] = {"model": OccNetModelConfig, "train": OccNetTrainConfig}

    model: OccNetModelConfig = field(default_factory=OccNetModelConfig)
    train: OccNetTrainConfig = field(default_factory=OccNetTrainConfig)
    preset: str = "custom"


_PRESETS = {
    "paper": (dict(resolution=128, encoder="resnet18"), dict(batch_objects=64, steps=200_000)),
    # CPU presets: decoder width 128 (OccNet's is 256), 4x cheaper per point, as in the
    # calibration prototype; the encoder is a small CNN.
    "cpu-32": (
        dict(resolution=32, encoder="cnn", cnn_ch=32, hidden=128),
        dict(batch_objects=32, steps=20_000),
    ),
    "cpu-64": (
        dict(resolution=64, encoder="cnn", cnn_ch=32, hidden=128),
        dict(batch_objects=32, steps=20_000),
    ),
    "tiny": (
        dict(resolution=16, encoder="cnn", cnn_ch=8, c_dim=32, hidden=32, n_blocks=2),
        dict(
            batch_objects=2,
            points_per_object=256,
            steps=50,
            checkpoint_every=25,
            eval_every=25,
            log_every=5,
            val_objects=2,
        ),
    ),
}
PRESETS = tuple(_PRESETS)


def occnet_preset(name: str) -> OccNetConfig:
    """The named preset (``cpu-32`` is the CPU reference)."""
    return OccNetConfig.from_preset(_PRESETS, name)
