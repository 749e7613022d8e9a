"""Content fingerprints of dataset files, shared by the set loaders' ``fingerprint()``.

Each file contributes its path relative to the dataset root, its size and its bytes:
the whole file when it is at most :data:`WHOLE_FILE` bytes (every view of the
synthetic and the real preprocessed ShapeNet, and most VGGFace2 images), otherwise
:data:`SAMPLE` bytes at its start, middle and end. A ``.npz`` archive ends with its zip
directory, which holds each member's CRC-32, so a change anywhere in any member of a
large archive changes the sampled tail. A missing file contributes a marker, so a
fingerprint can be taken of a root that lacks optional files. Two roots with the same
relative paths and bytes give the same fingerprint wherever they live.
"""

from __future__ import annotations

import os
from pathlib import Path

WHOLE_FILE = 64 * 1024
SAMPLE = 4 * 1024


def update_with_file(h, path: Path, root: Path) -> None:
    """Feed ``path``'s root-relative name, size and content (see the module doc) into the
    hashlib object ``h``."""
    rel = Path(path).relative_to(root).as_posix()
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            h.update(f"{rel}|{size}\n".encode())
            if size <= WHOLE_FILE:
                h.update(f.read())
                return
            for offset in (0, (size - SAMPLE) // 2, size - SAMPLE):
                f.seek(offset)
                h.update(f.read(SAMPLE))
    except FileNotFoundError:
        h.update(f"{rel}|missing\n".encode())
