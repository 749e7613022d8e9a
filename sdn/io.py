"""Atomic, deterministic file writing shared by data generators, trainers and reports.

Every file is written to a temporary name in the same folder and renamed into
place, so a crash never leaves a half-written file. ``.npz`` archives carry a
fixed timestamp, so equal arrays give byte-identical files.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_UMASK = os.umask(0)
os.umask(_UMASK)


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 (hex) of the file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def npz_bytes(arrays: dict[str, np.ndarray], compress: bool = True) -> bytes:
    """An ``np.load``-compatible .npz archive as bytes, identical for identical arrays."""
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name in arrays:
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = method
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arrays[name]), allow_pickle=False)
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray], compress: bool = True) -> None:
    """Atomically write a deterministic .npz archive."""
    atomic_write_bytes(path, npz_bytes(arrays, compress))
