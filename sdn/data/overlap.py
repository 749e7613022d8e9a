"""Which objects two ShapeNet-layout splits share, identified by what the object *is*.

A synthetic object is a pure function of (seed, synset, index), and the 70/10/20 split
depends on the object count, so a larger set made with the same seed holds the default
set's validation and test objects, some of them under other split names. Names therefore
cannot tell whether a training set leaks an evaluated object; the generator's parameters
can. The signature of an object is

- synthetic (``params.json`` present): sha256 of the canonical JSON of its synset and its
  family parameters (``params``; the palette is left out, so the same geometry in other
  colours still counts as shared: it is the same shape to an OccNet);
- real ShapeNet (no ``params.json``): its synset and model id (ShapeNet's splits are by id).

An object listed in a split but not written (``sdn-bench data shapes --splits train,val``
lists the test split without writing it) is identified by the parameters its root's
``generation.json`` says the generator draws for it; a missing object folder in a root
without that record is an error, never a silent fallback to its name.

:func:`check_disjoint` is what the trainers call before training.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from .shapenet import SPLITS, list_categories, read_list


def object_signature(obj: Path) -> str:
    """The signature of the object folder ``obj`` (``<root>/<synset>/<model_id>``), as above."""
    params = obj / "params.json"
    if params.is_file():
        try:
            record = json.loads(params.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{params}: not valid JSON ({e})") from None
        return _params_signature(obj.parent.name, record.get("params"))
    return f"id:{obj.parent.name}/{obj.name}"


def _params_signature(synset: str, params) -> str:
    what = {"synset": synset, "params": params}
    return "params:" + hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def _planned_signatures(root: Path, synset: str) -> dict[str, str]:
    """model id -> signature of every object ``root``'s generation record makes in ``synset``."""
    from .synthetic_shapes.generate import ShapesConfig, planned_params

    record = root / "generation.json"
    if not record.is_file():
        raise ValueError(
            f"{root}/{synset}: objects listed in a split are missing and {record} does not exist, "
            "so they cannot be identified: write them (sdn-bench data shapes --splits ...) "
            "or restore the record"
        )
    cfg = ShapesConfig(**json.loads(record.read_text())["config"])
    return {oid: _params_signature(synset, p) for oid, p in planned_params(cfg, synset).items()}


def split_signatures(root: str | os.PathLike, splits: Iterable[str]) -> dict[str, str]:
    """signature -> ``<split>:<synset>/<model_id>`` for every object of ``splits`` under ``root``."""
    root = Path(root)
    out = {}
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        for synset in list_categories(root):
            lst = root / synset / f"{split}.lst"
            if not lst.is_file():
                continue
            planned = None
            for oid in read_list(lst):
                obj = root / synset / oid
                if obj.is_dir():
                    signature = object_signature(obj)
                else:
                    planned = planned if planned is not None else _planned_signatures(root, synset)
                    if oid not in planned:
                        raise ValueError(
                            f"{lst} lists {oid}, which is neither written nor made by {root}/generation.json"
                        )
                    signature = planned[oid]
                out[signature] = f"{split}:{synset}/{oid}"
    return out


def check_disjoint(
    train_root: str | os.PathLike,
    held_out: Sequence[str | os.PathLike],
    train_split: str = "train",
    held_out_splits: Sequence[str] = ("val", "test"),
) -> dict:
    """Refuse (ValueError naming the first shared objects and the count) to train on
    ``train_root``'s ``train_split`` when it shares an object with the ``held_out_splits`` of
    any root in ``held_out``, or with ``train_root``'s own other splits. Returns what was
    checked (recorded in the run's manifest)."""
    train = split_signatures(train_root, [train_split])
    checked = []
    roots = [(Path(train_root), [s for s in SPLITS if s != train_split])]
    roots += [(Path(r), list(held_out_splits)) for r in held_out]
    for root, splits in roots:
        other = split_signatures(root, splits)
        shared = sorted((train[s], other[s]) for s in train.keys() & other.keys())
        if shared:
            first = "; ".join(f"{a} = {root}/{b}" for a, b in shared[:3])
            raise ValueError(
                f"{train_root} ({train_split}) shares {len(shared)} objects with the {'/'.join(splits)} "
                f"split of {root} (same generator parameters), e.g. {first}: generate the training set "
                "with another seed"
            )
        checked.append({"root": str(root), "splits": splits, "objects": len(other)})
    return {"train_objects": len(train), "disjoint_from": checked}
