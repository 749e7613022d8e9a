"""Set models as the benchmarks see them: named by one spec, reached through one contract.

A run names its model with ``--model SPEC`` (``--ckpt PATH`` is kept as an alias for an SDN
checkpoint). :func:`load_model` in :mod:`.registry` is the one place a spec is resolved: an SDN
checkpoint path, ``python:package.module:factory`` (with ``--model-arg key=value``),
``ref:NAME`` or ``folder:DIR``. Whatever the spec, the harness receives a
:class:`LoadedModel` whose ``model`` is a :class:`.contract.CheckedSetModel`: every output is
checked (type, dtype, shape, finite, in [0, 1]) and a broken model fails with a message naming
its spec. Its ``manifest()`` and ``sentence()`` are what the report says about the model.

Adding a model is one file: a module with a factory returning an object with ``resolution``
and ``reconstruct`` (optionally ``sample``, ``name``, ``describe``; :mod:`sdn.set_model`),
scored with ``--model python:that.module:factory``.
"""

from .base import LoadedModel, ModelContext
from .registry import load_model, model_spec_from, parse_model_args, wrap_model

__all__ = ["LoadedModel", "ModelContext", "load_model", "model_spec_from", "parse_model_args", "wrap_model"]
