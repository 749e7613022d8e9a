"""What a model is loaded with (:class:`ModelContext`) and what loading gives a harness
(:class:`LoadedModel`): the contract-checked model plus what its report says about it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from benchmarks.disclosure import model_sentence
from benchmarks.manifest import sha256_file

from .contract import CheckedSetModel

BENCHMARKS = ("shapenet", "faces")
KINDS = ("sdn", "python", "ref", "folder")
_KIND_WORDS = {"python": "set model", "ref": "reference model", "folder": "generated-image folder"}


@dataclass
class ModelContext:
    """What the harness tells a model loader about the run. Factories that accept a
    ``context`` parameter, reference models and folder models receive it."""

    benchmark: str
    """Which harness runs: "shapenet" or "faces"."""
    data: Path
    """The dataset root the harness reads (real sets come from here)."""
    split: str
    """The split evaluated, e.g. "test"."""
    resolution: int | None
    """The working resolution in pixels the harness needs (on shapes: the OccNet's, e.g. 32);
    the model's ``resolution`` must equal it. None if the model decides."""
    seed: int
    """The run's seed (per-set seeds are derived from it, :mod:`sdn.seeding`)."""
    cache_dir: Path | None
    """Where a model may cache derived artefacts between runs; None for no cache."""
    categories: list[str] | None
    """Shapes: the synset ids evaluated; None for all of the split's (and for faces)."""
    set_size: int | None
    """Faces: the set size n of real and generated sets; None on shapes."""
    crop: str | None = None
    """Faces: the benchmark's crop (``FacesBenchConfig.crop``); None on shapes."""
    train_split: str = "train"
    """The split the scored model was trained on (the novelty section's training sets;
    ``ref:copy-train`` samples it)."""

    def __post_init__(self):
        if self.benchmark not in BENCHMARKS:
            raise ValueError(f"ModelContext.benchmark must be one of {BENCHMARKS}, got {self.benchmark!r}")
        self.data = Path(self.data)
        if self.cache_dir is not None:
            self.cache_dir = Path(self.cache_dir)


@dataclass
class LoadedModel:
    """A resolved ``--model SPEC``: the model a harness scores and what its report says about it."""

    model: CheckedSetModel
    """The contract-checked set model (the only thing a harness calls)."""
    spec: str
    """The spec it was loaded from (a checkpoint path, ``python:...``, ``ref:...``, ``folder:...``,
    or "object" for :func:`benchmarks.models.registry.wrap_model`)."""
    kind: str
    """"sdn", "python", "ref" or "folder"."""
    sha256: str | None
    """Identity of what was loaded: an SDN checkpoint file's sha256; a folder's
    :func:`folder_sha256`; for ``python:`` the sha256 of the factory's module source file;
    None for references and where no file defines the model."""
    description: dict
    """The model's own description (JSON-serialisable): for an SDN
    :func:`benchmarks.disclosure.model_disclosure`; otherwise its ``describe()``, or
    ``{"name": name}`` when it has none."""
    checkpoint: Path | None = None
    """The SDN checkpoint file, when the model was loaded from one."""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"LoadedModel.kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def can_sample(self) -> bool:
        """Whether the model has ``sample`` (free and uniform-prior sample rows are reported)."""
        return hasattr(self.model, "sample")

    def manifest(self) -> dict:
        """The report manifest's record of the model."""
        return {
            "spec": self.spec,
            "kind": self.kind,
            "sha256": self.sha256,
            "description": self.description,
            "can_sample": self.can_sample,
        }

    def sentence(self) -> str:
        """One line for a report header naming the scored model."""
        if self.kind == "sdn":
            return model_sentence(self.model.wrapped, self.checkpoint)
        digest = f", sha256 {self.sha256[:12]}" if self.sha256 else ""
        return f"{_KIND_WORDS[self.kind]} `{self.spec}` (name `{self.model.name}`{digest})"

    def heading(self) -> str:
        """:meth:`sentence` capitalised, to open a report header."""
        text = self.sentence()
        return text[:1].upper() + text[1:]


def folder_sha256(path: str | Path) -> str:
    """sha256 identifying a folder's content: over every file below it (recursively, sorted by
    relative POSIX path), its relative path, a NUL byte and the sha256 of its bytes. Renaming,
    adding, removing or editing a file changes it; the folder's own name and the files'
    timestamps do not."""
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"not a folder: {root}")
    files = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file())
    if not files:
        raise ValueError(f"folder {root} holds no files")
    h = hashlib.sha256()
    for rel, p in files:
        h.update(rel.encode() + b"\0" + bytes.fromhex(sha256_file(p)))
    return h.hexdigest()
