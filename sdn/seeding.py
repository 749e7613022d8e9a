"""Seeds of generated sets: every generated image is a function of (seed, stream, set id,
image slot) only (DESIGN.md §6), never of chunk size, batch size, ``--workers``, the
number of processes or the order of evaluation.

A harness names each generated set by a *set id* (an object id, an identity name, or the
index of a free sample) and a *stream* (which kind of set it is), derives one integer
seed per set with :func:`set_seed`, and passes the seeds to the set model. The SDN draws
each set's noise from a generator of its own seeded with that integer, slot by slot, so
image slot j of a set is the same whether 1 or 16 images are generated, and whether the
set is generated alone or in a chunk of 32.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

# Streams: the kinds of generated set a benchmark asks for. Reconstructions of one real set
# share their stream across conditions (context sizes, k): common random numbers make the
# paired differences between conditions sharper.
STREAM_RECON = 0
STREAM_LEARNED = 1
STREAM_UNIFORM = 2
STREAM_FIGURE = 3


def _id_int(set_id: int | str) -> int:
    if isinstance(set_id, bool) or not isinstance(set_id, (int, np.integer, str)):
        raise ValueError(f"a set id must be a non-negative int or a string, got {set_id!r}")
    if isinstance(set_id, str):
        return int.from_bytes(hashlib.sha256(set_id.encode()).digest()[:8], "little")
    if set_id < 0:
        raise ValueError(f"a set id must be non-negative, got {set_id}")
    return int(set_id)


def set_seed(seed: int, stream: int, set_id: int | str) -> int:
    """One set's seed, a 63-bit integer determined by (seed, stream, set_id) alone.

    seed: the run's seed (>= 0); stream: one of the ``STREAM_*`` constants (or any int >= 0);
    set_id: a non-negative integer or a string (hashed with sha256: an object id
    ``synset/model_id`` or an identity name). Mixed with NumPy's ``SeedSequence``, so nearby
    inputs give unrelated seeds."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(stream, bool) or not isinstance(stream, (int, np.integer)) or stream < 0:
        raise ValueError(f"stream must be a non-negative integer, got {stream!r}")
    state = np.random.SeedSequence([int(seed), int(stream), _id_int(set_id)]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def set_seeds(seed: int, stream: int, set_ids: Sequence[int | str]) -> list[int]:
    """:func:`set_seed` for each of ``set_ids``, in order."""
    return [set_seed(seed, stream, s) for s in set_ids]
