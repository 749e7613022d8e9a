"""The offline protocol: generated sets on disk, scored with ``--model folder:DIR``.

``sdn-bench tasks shapenet|faces ... --out DIR`` (:func:`write_tasks`) writes every request
the benchmark will make of a set model: ``DIR/tasks.json`` and, for each reconstruction
task, its input images as ``DIR/inputs/<task_id>/000.png ...``. A user's model, in any
language and any process, writes ``n_out`` images per task to ``DIR/<task_id>/000.png,
001.png, ...`` (RGB PNG at the task's resolution). ``--model folder:DIR`` then scores them:
:class:`FolderSetModel` answers each request of the harness with the images of its task.

A request is identified by its content, never by its position: a reconstruction by the
sha256 of its input pixels (uint8), the number of images asked for and the set's seed; a
free sample by its prior, set size and seed (:func:`request_key`). So the harness may ask in
any order, batch or shard, and a folder written for other tasks (other data, selection,
seed or settings) is refused with a clear error instead of being scored.

``tasks.json``: ``{"format": 1, "benchmark", "resolution", "data", "split", "seed",
"config", "reconstruct": n, "sample": {"learned": [count, set size], "uniform": [...]},
"tasks": [{"id", "kind": "reconstruct"|"sample", "inputs": [paths] (reconstruct),
"n_out", "seed", "prior" (sample), "about": {what the benchmark uses it for}}]}``.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sdn.io import atomic_write_bytes, atomic_write_json

TASKS_FORMAT = 1
TASKS_FILE = "tasks.json"
INPUTS = "inputs"
MAX_LISTED = 5  # offending task ids named in an error; the rest are counted


@dataclass
class Request:
    """One request the benchmark makes of a set model. kind: "reconstruct" (inputs (k, 3, H, W)
    float in [0, 1], uint8-exact) or "sample" (prior "learned" | "uniform"); n_out images;
    the set's seed; ``about``: what the benchmark uses it for (object or identity, table, k)."""

    kind: str
    n_out: int
    seed: int
    inputs: torch.Tensor | None = None
    prior: str | None = None
    about: dict = field(default_factory=dict)

    def key(self) -> str:
        return request_key(self.kind, self.n_out, self.seed, self.inputs, self.prior)

    def answer(self, model) -> torch.Tensor:
        """The set model's images (n_out, 3, H, W) for this request."""
        if self.kind == "reconstruct":
            return model.reconstruct(self.inputs[None], self.n_out, [self.seed])[0]
        return model.sample(1, self.n_out, self.prior, [self.seed])[0]


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images (k, 3, H, W) float in [0, 1] -> (k, H, W, 3) uint8 (round(255 x))."""
    return (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def request_key(kind: str, n_out: int, seed: int, inputs: torch.Tensor | None, prior: str | None) -> str:
    """A request's identity (sha256 hex): its kind, n_out, seed, prior and the uint8 pixels of
    its inputs (k, 3, H, W) when it has inputs."""
    h = hashlib.sha256(f"{kind}|{int(n_out)}|{int(seed)}|{prior}".encode())
    if inputs is not None:
        pix = to_uint8(inputs)
        h.update(f"|{pix.shape}".encode())
        h.update(pix.tobytes())
    return h.hexdigest()


def _png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def write_tasks(requests: Iterable[Request], out: str | Path, header: dict, progress: bool = False) -> dict:
    """Write ``out/tasks.json`` and each reconstruction task's inputs as PNGs; returns the
    tasks.json document. Duplicate requests (same key) become one task. ``header``: the
    benchmark, resolution, data, split, seed and config entries of tasks.json."""
    out = Path(out)
    tasks, seen = [], set()
    for r in requests:
        key = r.key()
        if key in seen:
            continue
        seen.add(key)
        task_id = f"{len(tasks):06d}"
        task = {"id": task_id, "kind": r.kind, "n_out": int(r.n_out), "seed": int(r.seed), "about": r.about}
        if r.kind == "reconstruct":
            pix = to_uint8(r.inputs)
            names = [f"{INPUTS}/{task_id}/{j:03d}.png" for j in range(len(pix))]
            for name, image in zip(names, pix, strict=True):
                atomic_write_bytes(out / name, _png_bytes(image))
            task["inputs"] = names
        else:
            task["prior"] = r.prior
        tasks.append(task)
    samples: dict[str, list[int]] = {}
    for t in tasks:
        if t["kind"] == "sample":
            count, size = samples.get(t["prior"], [0, t["n_out"]])
            samples[t["prior"]] = [count + 1, size]
    doc = {
        "format": TASKS_FORMAT,
        **header,
        "reconstruct": sum(t["kind"] == "reconstruct" for t in tasks),
        "sample": samples,
        "tasks": tasks,
    }
    atomic_write_json(out / TASKS_FILE, doc)
    return doc


def read_png(path: Path) -> torch.Tensor:
    """One PNG -> (3, H, W) float32 in [0, 1]."""
    with Image.open(path) as im:
        pix = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(pix.copy()).permute(2, 0, 1).float().div_(255.0)


def fill_tasks(model, root: str | Path) -> int:
    """Answer every task of ``root/tasks.json`` with a set model in this process, writing
    ``root/<task_id>/000.png ...``: what a user's model does in its own program (README), and
    how the round trip is tested. Returns the number of tasks answered."""
    root = Path(root)
    doc = json.loads((root / TASKS_FILE).read_text())
    for t in doc["tasks"]:
        inputs = torch.stack([read_png(root / name) for name in t["inputs"]]) if "inputs" in t else None
        images = Request(t["kind"], t["n_out"], t["seed"], inputs, t.get("prior")).answer(model)
        for j, image in enumerate(to_uint8(images)):
            atomic_write_bytes(root / t["id"] / f"{j:03d}.png", _png_bytes(image))
    return len(doc["tasks"])


def _listed(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:MAX_LISTED])
    return shown + (f" and {len(ids) - MAX_LISTED} more" if len(ids) > MAX_LISTED else "")


class FolderSetModel:
    """Set model answering the benchmark's requests with the images of a tasks folder (module
    docstring). Checks every task's outputs at construction: a missing, extra, wrongly sized
    or unreadable image is a ValueError listing the first offending task ids."""

    def __init__(self, root: str | Path, benchmark: str | None = None, resolution: int | None = None):
        self.root = Path(root)
        path = self.root / TASKS_FILE
        if not path.is_file():
            raise ValueError(
                f"folder model {self.root}: no {TASKS_FILE}; write the tasks with `sdn-bench tasks ... --out "
                f"{self.root}` and the outputs into {self.root}/<task_id>/"
            )
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from e
        if doc.get("format") != TASKS_FORMAT:
            raise ValueError(f"{path}: tasks format {doc.get('format')!r}, expected {TASKS_FORMAT}")
        if benchmark is not None and doc.get("benchmark") != benchmark:
            raise ValueError(f"{path}: tasks of the {doc.get('benchmark')!r} benchmark, not {benchmark!r}")
        self.resolution = int(doc["resolution"])
        if resolution is not None and resolution != self.resolution:
            raise ValueError(
                f"{path}: tasks at {self.resolution} px, but the benchmark needs {resolution} px"
            )
        self.doc, self.name = doc, f"folder {self.root.name}"
        self._check_outputs(doc["tasks"])
        self._by_key = {}
        for t in doc["tasks"]:
            inputs = None
            if t["kind"] == "reconstruct":
                inputs = torch.stack([read_png(self.root / name) for name in t["inputs"]])
            self._by_key[request_key(t["kind"], t["n_out"], t["seed"], inputs, t.get("prior"))] = t["id"]
        if not doc.get("sample"):
            self.sample = None  # no sample tasks: the harness sees no free-sample capability

    def _check_outputs(self, tasks: list[dict]) -> None:
        missing, extra, unreadable, wrong_size = [], [], [], []
        for t in tasks:
            folder = self.root / t["id"]
            expected = {f"{j:03d}.png" for j in range(t["n_out"])}
            found = {p.name for p in folder.glob("*")} if folder.is_dir() else set()
            if expected - found:
                missing.append(t["id"])
            if found - expected:
                extra.append(t["id"])
            for name in sorted(expected & found):
                try:
                    with Image.open(folder / name) as im:
                        size = im.size
                        im.load()
                except OSError:
                    unreadable.append(t["id"])
                    break
                if size != (self.resolution, self.resolution):
                    wrong_size.append(t["id"])
                    break
        problems = [
            (missing, "missing images (expected 000.png ... for n_out images)"),
            (extra, "extra files (only 000.png ... for n_out images are allowed)"),
            (unreadable, "unreadable images"),
            (wrong_size, f"images not {self.resolution}x{self.resolution} px"),
        ]
        lines = [f"{len(ids)} tasks with {what}: {_listed(ids)}" for ids, what in problems if ids]
        if lines:
            raise ValueError(f"folder model {self.root}: " + "; ".join(lines))

    def _answer(self, key: str, what: str) -> torch.Tensor:
        task_id = self._by_key.get(key)
        if task_id is None:
            raise ValueError(
                f"folder model {self.root}: no task for {what}; the folder was written for other tasks "
                "(rerun `sdn-bench tasks` with the benchmark's data, selection, seed and settings)"
            )
        folder = self.root / task_id
        return torch.stack([read_png(p) for p in sorted(folder.glob("*.png"))])

    def reconstruct(self, sets: torch.Tensor, n_out: int, seed: Sequence[int]) -> torch.Tensor:
        """sets (B, k, 3, H, W) in [0, 1] -> (B, n_out, 3, H, W): each set's task's images."""
        return torch.stack(
            [
                self._answer(
                    request_key("reconstruct", n_out, s, x, None), f"a set of {x.shape[0]} input images"
                )
                for x, s in zip(sets, seed, strict=True)
            ]
        )

    def sample(
        self, num_sets: int, set_size: int, prior: str = "learned", seed: Sequence[int] = ()
    ) -> torch.Tensor:
        """-> (num_sets, set_size, 3, H, W): the sample tasks' images for these seeds."""
        if len(seed) != num_sets:
            raise ValueError(f"folder model {self.root}: expected {num_sets} seeds, got {len(seed)}")
        return torch.stack(
            [self._answer(request_key("sample", set_size, s, None, prior), f"a {prior} sample") for s in seed]
        )

    def describe(self) -> dict:
        return {"name": self.name, "kind": "folder", "dir": str(self.root), "tasks": len(self.doc["tasks"])}


def folder_model(root: Path, context) -> FolderSetModel:
    """The registry's entry point (``folder:DIR``)."""
    return FolderSetModel(root, getattr(context, "benchmark", None), getattr(context, "resolution", None))
