"""Resolve a model spec (``--model SPEC``) into a contract-checked :class:`LoadedModel`.

SPEC forms (:data:`SPEC_FORMS`):

- ``PATH``: an SDN checkpoint file (any spec without a known ``prefix:``);
- ``python:package.module:factory``: ``factory(**args)`` from an importable module, plus
  ``context=`` when the factory has a parameter named ``context``; ``args`` come from repeated
  ``--model-arg key=value`` (strings: the factory converts them);
- ``ref:NAME``: a reference model of :mod:`benchmarks.models.references`;
- ``folder:DIR``: pre-generated images in a folder, :mod:`benchmarks.models.folder`.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterable
from pathlib import Path

from benchmarks.manifest import sha256_file

from .base import LoadedModel, ModelContext, folder_sha256
from .contract import CheckedSetModel
from .sdn_checkpoint import load_sdn, sdn_disclosure

PREFIXES = ("python", "ref", "folder")
SPEC_FORMS = (
    "PATH (an SDN checkpoint file)",
    "python:package.module:factory (a factory returning a set model; --model-arg key=value passes arguments)",
    "ref:NAME (a reference model)",
    "folder:DIR (pre-generated images)",
)
# A prefix has two or more characters, so a Windows drive ("C:\\...") reads as a path.
_PREFIX = re.compile(r"([A-Za-z][A-Za-z0-9_]+):(.*)", re.DOTALL)


def _forms() -> str:
    return "accepted forms: " + "; ".join(SPEC_FORMS)


def parse_model_args(pairs: Iterable[str]) -> dict[str, str]:
    """``["k=v", ...]`` (repeated ``--model-arg``) -> ``{"k": "v", ...}``. The value is everything
    after the first ``=`` (it may be empty or hold more ``=``). ValueError for a pair without
    ``=``, a key that is not a Python identifier, or a repeated key."""
    args: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--model-arg {pair!r}: expected key=value with key a Python identifier")
        if key in args:
            raise ValueError(f"--model-arg {key!r} given twice ({args[key]!r} and {value!r})")
        args[key] = value
    return args


def model_spec_from(ckpt: str | None, model: str | None) -> str:
    """The spec named on the command line: ``--ckpt PATH`` (an SDN checkpoint, kept as an alias)
    or ``--model SPEC``. ValueError unless exactly one is given, or when ``--ckpt`` is given a
    ``prefix:`` spec (those go to ``--model``)."""
    if (ckpt is None) == (model is None):
        raise ValueError(
            "name the model to score with exactly one of --model SPEC or --ckpt PATH, got "
            + ("both" if ckpt is not None else "neither")
            + f"; {_forms()}"
        )
    if ckpt is not None:
        m = _PREFIX.fullmatch(ckpt)
        if m and m.group(1) in PREFIXES:
            raise ValueError(f"--ckpt {ckpt!r}: --ckpt takes an SDN checkpoint path; use --model {ckpt}")
        return ckpt
    return model


def load_model(spec: str, context: ModelContext, args: dict[str, str] | None = None) -> LoadedModel:
    """Resolve ``spec`` (see the module docstring) into a contract-checked model for the run
    described by ``context``; ``args`` (from :func:`parse_model_args`) only for ``python:``.
    ValueError naming the spec for anything that cannot be resolved, and for a model whose
    resolution differs from ``context.resolution`` (when that is given)."""
    args = dict(args or {})
    m = _PREFIX.fullmatch(spec)
    prefix, target = (m.group(1), m.group(2)) if m else (None, spec)
    if prefix is not None and prefix not in PREFIXES and not Path(spec).exists():
        raise ValueError(f"model spec {spec!r}: unknown prefix {prefix + ':'!r}; {_forms()}")
    if prefix == "python":
        return _load_python(spec, target, context, args)
    if args:
        raise ValueError(
            f"model spec {spec!r}: --model-arg ({', '.join(sorted(args))}) is only for python: specs; "
            + _forms()
        )
    if prefix == "ref":
        return _load_reference(spec, target, context)
    if prefix == "folder":
        return _load_folder(spec, target, context)
    return _load_checkpoint(spec, context)


def wrap_model(obj: object, context: ModelContext, spec: str = "object") -> LoadedModel:
    """An already-constructed set model (Python API users, tests) as a :class:`LoadedModel` of
    kind "python" (sha256 of the file defining its class, when there is one). An SDN object
    keeps its disclosure: kind "sdn", no checkpoint, no sha256."""
    checked = CheckedSetModel(obj, spec, context.resolution)
    disclosure = sdn_disclosure(obj)
    if disclosure is not None:
        return LoadedModel(checked, spec, "sdn", None, disclosure)
    return LoadedModel(
        checked, spec, "python", _module_sha256(inspect.getmodule(type(obj))), checked.describe()
    )


def _load_checkpoint(spec: str, context: ModelContext) -> LoadedModel:
    path = Path(spec)
    if not path.is_file():
        hint = " (a folder: use folder:DIR for pre-generated images)" if path.is_dir() else ""
        raise ValueError(f"model spec {spec!r}: no SDN checkpoint file at {path}{hint}; {_forms()}")
    sdn, disclosure = load_sdn(path)
    checked = CheckedSetModel(sdn, spec, context.resolution)
    return LoadedModel(checked, spec, "sdn", sha256_file(path), disclosure, checkpoint=path)


def _load_python(spec: str, target: str, context: ModelContext, args: dict[str, str]) -> LoadedModel:
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"model spec {spec!r}: expected python:package.module:factory; {_forms()}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"model spec {spec!r}: cannot import module {module_name!r} ({e})") from e
    factory = module
    for part in attr.split("."):
        if not hasattr(factory, part):
            raise ValueError(f"model spec {spec!r}: module {module_name!r} has no attribute {attr!r}")
        factory = getattr(factory, part)
    if not callable(factory):
        raise ValueError(
            f"model spec {spec!r}: {module_name}.{attr} is a {type(factory).__name__}, not a callable factory"
        )
    if "context" in args:
        raise ValueError(
            f"model spec {spec!r}: --model-arg context=... is reserved (a factory with a `context` "
            "parameter receives the ModelContext)"
        )
    signature = inspect.signature(factory)
    kwargs: dict[str, object] = dict(args)
    if "context" in signature.parameters:
        kwargs["context"] = context
    try:
        signature.bind(**kwargs)
    except TypeError as e:
        raise ValueError(
            f"model spec {spec!r}: {module_name}.{attr}{signature} cannot take the arguments "
            f"{sorted(kwargs)} ({e})"
        ) from e
    checked = CheckedSetModel(factory(**kwargs), spec, context.resolution)
    source = _module_sha256(inspect.getmodule(factory) or module)
    return LoadedModel(checked, spec, "python", source, checked.describe())


def _load_reference(spec: str, name: str, context: ModelContext) -> LoadedModel:
    from benchmarks.models.references import REFERENCES, reference_model

    if name not in REFERENCES:
        known = "; ".join(f"ref:{n} ({d})" for n, d in sorted(REFERENCES.items())) or "none"
        raise ValueError(f"model spec {spec!r}: no reference model {name!r}; known: {known}")
    checked = CheckedSetModel(reference_model(name, context), spec, context.resolution)
    return LoadedModel(checked, spec, "ref", None, checked.describe())


def _load_folder(spec: str, directory: str, context: ModelContext) -> LoadedModel:
    from benchmarks.models.folder import folder_model

    path = Path(directory)
    if not directory or not path.is_dir():
        raise ValueError(f"model spec {spec!r}: no folder at {directory!r}")
    checked = CheckedSetModel(folder_model(path, context), spec, context.resolution)
    return LoadedModel(checked, spec, "folder", folder_sha256(path), checked.describe())


def _module_sha256(module) -> str | None:
    """sha256 of a module's source file, or None when it has none (built in, or defined interactively)."""
    file = getattr(module, "__file__", None)
    return sha256_file(file) if file and Path(file).is_file() else None
