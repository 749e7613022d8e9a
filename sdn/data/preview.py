"""PNG contact sheets: of an OccNet-layout dataset (a few objects per category, and
several views of one object) and of a VGGFace2-layout dataset (a few identities, several
images each)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..io import atomic_write_bytes
from .image_cache import decode_image
from .shapenet import IMAGE_DIR, IMAGE_SUFFIXES, list_categories, read_list, read_metadata


def _views(obj_dir: Path) -> list[Path]:
    return sorted(p for p in (obj_dir / IMAGE_DIR).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def shapes_grid(
    root: str | os.PathLike,
    out: str | os.PathLike,
    split: str = "train",
    per_category: int = 6,
    views_of_one: int = 8,
    tile: int = 64,
) -> Path:
    """Write a grid PNG: one labelled row per category (view 0 of its first
    ``per_category`` objects), then ``views_of_one`` views of the first object."""
    root = Path(root)
    meta = read_metadata(root)
    label_w = 90
    rows, labels, first = [], [], None
    for synset in list_categories(root):
        ids = read_list(root / synset / f"{split}.lst")[:per_category]
        if not ids:
            continue
        first = first or root / synset / ids[0]
        tiles = [decode_image(_views(root / synset / i)[0], tile) for i in ids]
        tiles += [np.full((tile, tile, 3), 255, np.uint8)] * (per_category - len(tiles))
        rows.append(np.concatenate(tiles, axis=1))
        labels.append(str(meta.get(synset, {}).get("name", synset)))
    if first is None:
        raise ValueError(f"{root}: no objects in split {split!r}")
    one = [decode_image(p, tile) for p in _views(first)[:views_of_one]]
    rows.append(np.concatenate(one, axis=1))
    labels.append("one object")
    return _labelled_sheet(rows, labels, label_w, tile, out)


def faces_grid(
    root: str | os.PathLike,
    out: str | os.PathLike,
    split: str = "train",
    identities: int = 6,
    per_identity: int = 8,
    tile: int = 64,
) -> Path:
    """Write a grid PNG: one row per identity (the first ``identities`` in the list file,
    labelled with their class id), its first ``per_identity`` images, uncropped."""
    from .vggface2 import read_image_list

    root = Path(root)
    groups: dict[str, list[str]] = {}
    for rel in read_image_list(root / f"{split}_list.txt"):
        groups.setdefault(rel.partition("/")[0], []).append(rel)
    if not groups:
        raise ValueError(f"{root}: no images in split {split!r}")
    rows, labels = [], []
    for ident in sorted(groups)[:identities]:
        tiles = [decode_image(root / split / rel, tile) for rel in sorted(groups[ident])[:per_identity]]
        tiles += [np.full((tile, tile, 3), 255, np.uint8)] * (per_identity - len(tiles))
        rows.append(np.concatenate(tiles, axis=1))
        labels.append(ident)
    return _labelled_sheet(rows, labels, 70, tile, out)


def _labelled_sheet(rows: list[np.ndarray], labels: list[str], label_w: int, tile: int, out) -> Path:
    """Paste rows (tile, w_i, 3) uint8 under each other with a text label on the left; write PNG."""
    import io

    width = max(r.shape[1] for r in rows)
    canvas = Image.new("RGB", (label_w + width, tile * len(rows)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for r, (row, label) in enumerate(zip(rows, labels, strict=True)):
        canvas.paste(Image.fromarray(row), (label_w, r * tile))
        draw.text((4, r * tile + tile // 2 - 6), label, fill=(0, 0, 0))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    atomic_write_bytes(out, buf.getvalue())
    return Path(out)
