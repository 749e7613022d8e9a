"""Typed configuration of a Set Distribution Network and its training, with named presets.

Three dataclasses, all plain data so they round-trip through a checkpoint:

- :class:`ModelConfig`: architecture sizes (DESIGN.md §4);
- :class:`Aids`: training aids beyond the paper's recipe. Every field's default is
  *off*, so ``Aids()`` is the faithful recipe; any aid that is on is recorded in
  the checkpoint and printed by every report that scores it;
- :class:`TrainConfig`: optimisation and bookkeeping.

``from_dict`` rejects unknown keys, so a typo in a config never passes silently.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import ClassVar


def require_positive(obj, names) -> None:
    """Raise ValueError naming the first of ``names`` whose value on ``obj`` is below 1."""
    for name in names:
        if getattr(obj, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(obj, name)}")


def strict_from_dict(cls, data: dict, where: str):
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys with a ValueError."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {where} keys {unknown}; known keys: {sorted(known)}")
    return cls(**data)


class ModelTrainConfig:
    """Mixin of the dataclass configs made of a ``model`` and a ``train`` section and a
    ``preset`` name (the OccNet's, the verifier's). Subclasses set ``NAME`` (for messages)
    and ``SECTIONS`` {"model": its dataclass, "train": its dataclass}. Lists read back from
    a checkpoint become tuples where the field's default is a tuple."""

    NAME: ClassVar[str]
    SECTIONS: ClassVar[dict]

    def validate(self) -> None:
        self.model.validate()
        self.train.validate()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        unknown = sorted(set(data) - {*cls.SECTIONS, "preset"})
        if unknown:
            raise ValueError(f"unknown {cls.NAME} config keys {unknown}")
        sections = {}
        for name, section_cls in cls.SECTIONS.items():
            values = dict(data.get(name, {}))
            for f in fields(section_cls):
                if isinstance(f.default, tuple) and isinstance(values.get(f.name), list):
                    values[f.name] = tuple(values[f.name])
            sections[name] = strict_from_dict(section_cls, values, f"{cls.NAME} {name} config")
        return cls(**sections, preset=data.get("preset", "custom"))

    @classmethod
    def from_preset(cls, presets: dict, name: str):
        """The validated config of preset ``name`` in ``presets`` {name: (model kwargs, train kwargs)}."""
        if name not in presets:
            raise ValueError(f"unknown {cls.NAME} preset {name!r}; presets: {', '.join(presets)}")
        m, t = presets[name]
        cfg = cls(cls.SECTIONS["model"](**m), cls.SECTIONS["train"](**t), preset=name)
        cfg.validate()
        return cfg


@dataclass
class ModelConfig:
    """Architecture of the four modules.

    resolution: image side (16, 32, 64 or 128). d_z: set-code bits. noise_dim: z' size.
    g_ch / d_ch: SAGAN base widths of the generator (and energy decoder) and of the
    encoder; widths double per resolution level up to 16x. attn_res: feature-map side
    at which the one self-attention block sits (0 = none). made_hidden: MADE width.
    """

    resolution: int = 32
    d_z: int = 128
    noise_dim: int = 64
    g_ch: int = 16
    d_ch: int = 16
    attn_res: int = 16
    made_hidden: int = 256

    def validate(self) -> None:
        if self.resolution not in (16, 32, 64, 128):
            raise ValueError(f"resolution must be 16, 32, 64 or 128, got {self.resolution}")
        require_positive(self, ("d_z", "noise_dim", "g_ch", "d_ch", "made_hidden"))
        if self.d_z < 2:
            raise ValueError(f"d_z must be >= 2 for an autoregressive prior, got {self.d_z}")
        if self.attn_res and (self.attn_res > self.resolution or self.attn_res < 4):
            raise ValueError(f"attn_res must be 0 or in [4, resolution], got {self.attn_res}")

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        return strict_from_dict(cls, data, "model config")


@dataclass
class Aids:
    """Training aids, each off by default (the faithful recipe is ``Aids()``).

    warmup_steps: steps of set-autoencoder warm-up before adversarial training: only
        the real-set terms of the θ loss (reconstruction, prior), with the generator idle.
    decoder_code_dropout: probability of zeroing the whole c(x) vector at the energy
        decoder's input, per image, so that reconstruction must use the set code z.
    code_standardise: standardise the pre-binarisation mean code per dimension with
        the real batch's statistics (running statistics at inference), so that bits
        split sets evenly instead of collapsing to one code.
    code_margin: γ_z in the generator's code term [m(X') ⊙ z - γ_z]_-; > 0 asks the
        generated set's mean code to agree with z by a margin.
    code_term_mean: average the generator's code term over the d_z bits instead of
        summing it (so it does not dominate the energy terms at large d_z).
    cond_bn: conditional BatchNorm in the generator: every BN's gain and bias are
        linear functions of z (in addition to z at the input).
    ema: decay of an exponential moving average of the generator's weights, used for
        sampling and evaluation (0 = off).
    """

    warmup_steps: int = 0
    decoder_code_dropout: float = 0.0
    code_standardise: bool = False
    code_margin: float = 0.0
    code_term_mean: bool = False
    cond_bn: bool = False
    ema: float = 0.0

    def active(self) -> dict:
        """The aids that differ from the faithful recipe, as a dict (empty = faithful)."""
        default = Aids()
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }

    def validate(self) -> None:
        if not 0.0 <= self.decoder_code_dropout < 1.0:
            raise ValueError(f"decoder_code_dropout must be in [0, 1), got {self.decoder_code_dropout}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if self.warmup_steps < 0 or self.code_margin < 0:
            raise ValueError("warmup_steps and code_margin must be >= 0")

    @classmethod
    def from_dict(cls, data: dict) -> Aids:
        return strict_from_dict(cls, data, "aids")


@dataclass
class TrainConfig:
    """Optimisation (paper §4.2), numerics and bookkeeping.

    precision: ``bf16`` (default) runs every forward pass of both steps under
        ``torch.autocast`` in bfloat16, with float32 weights, gradients and Adam state;
        ``fp16`` the same in float16 with a gradient scaler per optimiser; ``fp32`` no autocast.
        The reconstruction error and d0 are cast to float32 before the losses in every mode.
    channels_last: the model's weights and every image batch in channels-last memory format
        (``torch.channels_last``) during training; numerically a layout choice only.

    Not a switch, fixed by the code (:class:`sdn.trainer.ThetaObjective`): in the θ step the
    generated set X' = G(z(X), z') is drawn without gradient from the generator in *training*
    mode, so its BatchNorm layers normalise with the statistics of that generated batch (as in
    the ψ step) and update their running statistics; evaluation and sampling
    (:meth:`sdn.model.SDN.reconstruct`, :meth:`~sdn.model.SDN.sample`) use the running statistics.

    eval_sets: the number of validation sets of the held-out quality; for faces also the number
    of train identities held out of training to provide them (:func:`sdn.trainer.open_training_data`).
    """

    steps: int = 10_000
    batch_sets: int = 4
    set_size: int = 8
    lr_g: float = 1e-4
    lr_theta: float = 4e-4
    betas: tuple = (0.0, 0.999)
    gamma0: float = 1.0
    gamma1: float = 0.1
    precision: str = "bf16"
    channels_last: bool = True
    seed: int = 0
    checkpoint_every: int = 500
    eval_every: int = 500
    eval_sets: int = 64
    log_every: int = 25
    max_minutes: float = 0.0  # stop (with a checkpoint) after this much wall time; 0 = no limit

    def validate(self) -> None:
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be fp32, bf16 or fp16, got {self.precision!r}")
        require_positive(
            self, ("steps", "batch_sets", "set_size", "checkpoint_every", "eval_every", "log_every")
        )
        if self.eval_sets < 2:
            raise ValueError(f"eval_sets must be >= 2 (retrieval needs other sets), got {self.eval_sets}")

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        if "betas" in data:
            data["betas"] = tuple(data["betas"])
        # Configs written before the field existed: channels-last went with every precision but fp32.
        data.setdefault("channels_last", data.get("precision", cls.precision) != "fp32")
        return strict_from_dict(cls, data, "train config")


@dataclass
class SDNConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    aids: Aids = field(default_factory=Aids)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str = "custom"
    recipe: str = "faithful"

    def validate(self) -> None:
        self.model.validate()
        self.aids.validate()
        self.train.validate()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SDNConfig:
        data = dict(data)
        unknown = sorted(set(data) - {"model", "aids", "train", "preset", "recipe"})
        if unknown:
            raise ValueError(f"unknown SDN config keys {unknown}")
        return cls(
            model=ModelConfig.from_dict(data.get("model", {})),
            aids=Aids.from_dict(data.get("aids", {})),
            train=TrainConfig.from_dict(data.get("train", {})),
            preset=data.get("preset", "custom"),
            recipe=data.get("recipe", "faithful"),
        )


# Model sizes by preset name. paper-128 follows SAGAN's widths (ch = 64) and the
# paper's d_z (2048 for shapes, 256 for faces).
_MODEL_PRESETS = {
    "paper-128": dict(resolution=128, g_ch=64, d_ch=64, noise_dim=128, attn_res=64, made_hidden=2048),
    "gpu-64": dict(resolution=64, g_ch=32, d_ch=32, noise_dim=128, attn_res=32, made_hidden=1024),
    "cpu-32": dict(resolution=32, g_ch=16, d_ch=16, noise_dim=64, attn_res=16, made_hidden=256),
    "tiny-16": dict(resolution=16, g_ch=4, d_ch=4, noise_dim=8, attn_res=8, made_hidden=32),
}
_D_Z = {
    "paper-128": {"shapes": 2048, "faces": 256},
    "gpu-64": {"shapes": 512, "faces": 256},
    "cpu-32": {"shapes": 128, "faces": 128},
    "tiny-16": {"shapes": 16, "faces": 16},
}
_TRAIN_PRESETS = {
    "paper-128": dict(batch_sets=32, steps=600_000, checkpoint_every=5000, eval_every=5000),
    "gpu-64": dict(batch_sets=16, steps=100_000, checkpoint_every=2000, eval_every=2000),
    "cpu-32": dict(batch_sets=4, steps=20_000, checkpoint_every=500, eval_every=500),
    "tiny-16": dict(batch_sets=2, steps=200, checkpoint_every=100, eval_every=100, eval_sets=4, log_every=10),
}
# Named recipes: the faithful one, and the aids measured by the CPU ablation.
RECIPES = {
    "faithful": {},
    "aided": dict(
        warmup_steps=500,
        decoder_code_dropout=0.5,
        code_standardise=True,
        code_margin=0.5,
        code_term_mean=True,
        cond_bn=True,
        ema=0.999,
    ),
}
PRESETS = tuple(_MODEL_PRESETS)
DATASETS = ("shapes", "faces")


def preset(name: str, dataset: str = "shapes", recipe: str = "faithful") -> SDNConfig:
    """The named preset for ``dataset`` with the named recipe of aids."""
    if name not in _MODEL_PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; recipes: {', '.join(RECIPES)}")
    model = ModelConfig(d_z=_D_Z[name][dataset], **_MODEL_PRESETS[name])
    cfg = SDNConfig(
        model=model,
        aids=Aids(**RECIPES[recipe]),
        train=TrainConfig(**_TRAIN_PRESETS[name]),
        preset=name,
        recipe=recipe,
    )
    cfg.validate()
    return cfg


def apply_overrides(cfg, overrides: list[str]):
    """Apply ``section.key=value`` overrides to a config with ``to_dict``/``from_dict``
    (sections are its nested dataclasses, e.g. model, aids, train); values are parsed
    as the field's type. Unknown sections or keys raise ValueError. An SDN config whose
    aids change gets the recipe name ``<recipe>+custom``."""
    data = cfg.to_dict()
    sections = [k for k, v in data.items() if isinstance(v, dict)]
    for item in overrides:
        key, sep, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise ValueError(f"override {item!r} is not of the form section.key=value")
        if section not in sections:
            raise ValueError(f"override {item!r}: unknown section {section!r}; expected one of {sections}")
        if name not in data[section]:
            raise ValueError(f"override {item!r}: unknown key {name!r}; known: {sorted(data[section])}")
        current = data[section][name]
        try:
            if isinstance(current, bool):
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError("expected true or false")
                value = raw.lower() in ("true", "1")
            elif isinstance(current, (tuple, list)):
                value = tuple(float(v) for v in raw.split(","))
            else:
                value = type(current)(raw)
        except ValueError as e:
            raise ValueError(
                f"override {item!r}: cannot read {raw!r} as {type(current).__name__} ({e})"
            ) from e
        data[section][name] = value
    new = type(cfg).from_dict(data)
    if hasattr(new, "aids") and new.aids != cfg.aids:
        new.recipe = f"{cfg.recipe}+custom"
    new.validate()
    return new
