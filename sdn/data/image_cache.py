"""A decoded-image cache: every image of a dataset split, decoded once into a uint8 memmap.

The cache key is a fingerprint of the ordered file list (path, size, mtime) and the
output resolution, so editing, adding or removing an image builds a new cache
instead of serving stale pixels. The array is built in a temporary file and renamed
into place, so an interrupted build is never mistaken for a finished one. Training
then reads pixels from the page cache instead of decoding JPG/PNG every epoch.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from ..io import atomic_write_json

CACHE_FORMAT = 1
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "sdn-bench" / "images"


def decode_image(path: str | os.PathLike, resolution: int, box: tuple | None = None) -> np.ndarray:
    """Decode ``path`` to (resolution, resolution, 3) uint8 RGB.

    Transparent pixels are composited over white (the ShapeNet renders' background);
    ``box`` (left, top, right, bottom), when given, crops first; the image is then
    resized with a Lanczos (antialiased) filter. Raises ValueError naming the file
    when it is missing or cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                im = Image.new("RGB", rgba.size, (255, 255, 255))
                im.paste(rgba, mask=rgba.split()[3])
            else:
                im = im.convert("RGB")
            if box is not None:
                im = im.crop(tuple(int(round(v)) for v in box))
            if im.size != (resolution, resolution):
                im = im.resize((resolution, resolution), Image.LANCZOS)
            return np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"corrupt or unreadable image: {path} ({e})") from e


def fingerprint(paths: Sequence[str | os.PathLike], resolution: int, extra: str = "") -> str:
    """sha256 (hex, 24 chars) of the ordered paths with their sizes and mtimes, and the resolution."""
    h = hashlib.sha256(f"v{CACHE_FORMAT}|{resolution}|{extra}".encode())
    for p in paths:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise ValueError(f"image not found: {p}") from None
        h.update(f"{os.fspath(p)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def cached_images(
    paths: Sequence[str | os.PathLike],
    resolution: int,
    cache_dir: str | os.PathLike | None = None,
    boxes: Sequence[tuple] | None = None,
    progress: bool = True,
) -> np.ndarray:
    """All ``paths`` decoded to a read-only (N, resolution, resolution, 3) uint8 memmap.

    ``boxes`` (optional, one per path) are crop boxes applied before resizing; they
    are part of the cache key. The cache lives in ``cache_dir`` (default
    ``~/.cache/sdn-bench/images``).
    """
    if len(paths) == 0:
        raise ValueError("no images to cache: the file list is empty")
    if boxes is not None and len(boxes) != len(paths):
        raise ValueError(f"boxes has {len(boxes)} entries for {len(paths)} images")
    cache_dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    extra = hashlib.sha256(repr(list(boxes)).encode()).hexdigest() if boxes is not None else ""
    key = fingerprint(paths, resolution, extra)
    data = cache_dir / f"{key}.u8"
    meta = cache_dir / f"{key}.json"
    shape = (len(paths), resolution, resolution, 3)
    if data.is_file() and meta.is_file():
        info = json.loads(meta.read_text())
        if tuple(info["shape"]) == shape:
            return np.memmap(data, dtype=np.uint8, mode="r", shape=shape)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{key}.{os.getpid()}.tmp"
    try:
        arr = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=shape)
        for i, p in enumerate(tqdm(paths, desc="decoding images", unit="img", disable=not progress)):
            arr[i] = decode_image(p, resolution, None if boxes is None else boxes[i])
        arr.flush()
        del arr
        os.replace(tmp, data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    atomic_write_json(meta, {"shape": list(shape), "count": len(paths), "first": os.fspath(paths[0])})
    return np.memmap(data, dtype=np.uint8, mode="r", shape=shape)
