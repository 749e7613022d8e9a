"""Model specs and the set-model contract (benchmarks.models): every way of naming a model
resolves in one place, and every model's outputs are checked before a harness sees them."""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import pytest
import torch

from benchmarks.disclosure import model_disclosure, model_sentence
from benchmarks.manifest import sha256_file
from benchmarks.models import (
    LoadedModel,
    ModelContext,
    load_model,
    model_spec_from,
    parse_model_args,
    wrap_model,
)
from benchmarks.models.base import folder_sha256
from benchmarks.models.contract import RANGE_TOLERANCE, CheckedSetModel, quantise
from sdn.model import SDN
from sdn.set_model import SetModel

SDN_CKPT = Path(__file__).resolve().parents[1] / "benchmarks/baselines/fixtures/models/sdn-shapes.pt"
RES = 8


def _context(resolution: int | None = RES, benchmark: str = "shapenet") -> ModelContext:
    return ModelContext(
        benchmark=benchmark,
        data=Path("data/none"),
        split="test",
        resolution=resolution,
        seed=0,
        cache_dir=None,
        categories=None,
        set_size=None,
    )


class GoodModel:
    """Constant images of ``value``: (B, n_out, 3, R, R); records the last call's arguments."""

    name = "good"

    def __init__(self, resolution: int = RES, value: float = 0.5, tag: str = "", context=None):
        self.resolution = resolution
        self.value = value
        self.tag = tag
        self.context = context
        self.calls = []

    def reconstruct(self, sets, n_out, seed):
        self.calls.append((sets, n_out, seed))
        return torch.full((sets.shape[0], n_out, 3, self.resolution, self.resolution), self.value)

    def sample(self, num_sets, set_size, prior, seed):
        self.calls.append((num_sets, set_size, prior, seed))
        return torch.full((num_sets, set_size, 3, self.resolution, self.resolution), self.value)

    def describe(self) -> dict:
        return {"name": self.name, "tag": self.tag}


class ReconstructOnly:
    """A set model without ``sample``, ``name`` or ``describe``."""

    resolution = RES

    def reconstruct(self, sets, n_out, seed):
        return torch.zeros(sets.shape[0], n_out, 3, RES, RES)


class Returns:
    """A model whose reconstruct and sample return ``make(B, n)``."""

    resolution = RES

    def __init__(self, make):
        self.make = make

    def reconstruct(self, sets, n_out, seed):
        return self.make(sets.shape[0], n_out)

    def sample(self, num_sets, set_size, prior, seed):
        return self.make(num_sets, set_size)


# Factories for python: specs (this module is importable as tests.test_model_registry).
def make_good(value: str = "0.5", tag: str = ""):
    return GoodModel(value=float(value), tag=tag)


def make_with_context(context, tag: str = ""):
    return GoodModel(resolution=context.resolution, tag=tag, context=context)


def make_reconstruct_only():
    return ReconstructOnly()


def make_not_a_model():
    return object()


NOT_CALLABLE = 3


def _sets(b: int = 2, n: int = 3) -> torch.Tensor:
    return torch.rand(b, n, 3, RES, RES)


def _checked(make) -> CheckedSetModel:
    return CheckedSetModel(Returns(make), "python:tests.fake:make", RES)


# --- the contract ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda b, n: [[0.5]], "returned a list, expected a torch.Tensor"),
        (
            lambda b, n: torch.zeros(b, n, 3, RES, RES, dtype=torch.uint8),
            "dtype torch.uint8, expected a floating",
        ),
        (lambda b, n: torch.zeros(b * n, 3, RES, RES), "4-d tensor"),
        (lambda b, n: torch.zeros(b + 1, n, 3, RES, RES), "returned 3 sets, expected 2"),
        (lambda b, n: torch.zeros(b, n - 1, 3, RES, RES), "returned 4 images per set, expected 5"),
        (lambda b, n: torch.zeros(b, n, 1, RES, RES), "returned 1 channels, expected 3"),
        (lambda b, n: torch.zeros(b, n, 3, RES * 2, RES * 2), f"16x16 px images, expected {RES}x{RES}"),
        (lambda b, n: torch.zeros(b, n, 3, RES, RES * 2), f"8x16 px images, expected {RES}x{RES}"),
        (
            lambda b, n: torch.full((b, n, 3, RES, RES), math.nan),
            f"{2 * 5 * 3 * RES * RES} NaN and 0 infinite",
        ),
        (lambda b, n: torch.full((b, n, 3, RES, RES), math.inf), "0 NaN and"),
        (lambda b, n: torch.full((b, n, 3, RES, RES), 1.01), "values in [1.01, 1.01], expected [0, 1]"),
        (lambda b, n: torch.full((b, n, 3, RES, RES), -0.5), "values in [-0.5, -0.5], expected [0, 1]"),
    ],
)
def test_contract_rejects_bad_reconstructions(make, message):
    with pytest.raises(ValueError) as e:
        _checked(make).reconstruct(_sets(2, 3), 5, [1, 2])
    assert "python:tests.fake:make" in str(e.value) and "reconstruct(" in str(e.value)
    assert message in str(e.value)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda b, n: torch.zeros(b - 1, n, 3, RES, RES), "returned 3 sets, expected 4"),
        (lambda b, n: torch.zeros(b, n + 2, 3, RES, RES), "returned 8 images per set, expected 6"),
        (lambda b, n: torch.zeros(b, n, 3, RES + 1, RES + 1), "9x9 px images"),
        (lambda b, n: torch.full((b, n, 3, RES, RES), 2.0), "expected [0, 1]"),
    ],
)
def test_contract_rejects_bad_samples(make, message):
    with pytest.raises(ValueError) as e:
        _checked(make).sample(4, 6, "learned", [0, 1, 2, 3])
    assert "python:tests.fake:make" in str(e.value) and "sample(num_sets=4, set_size=6" in str(e.value)
    assert message in str(e.value)


def test_contract_returns_float32_on_cpu_and_allows_the_tolerance():
    checked = _checked(
        lambda b, n: torch.full((b, n, 3, RES, RES), 1 + RANGE_TOLERANCE / 2, dtype=torch.float64)
    )
    out = checked.reconstruct(_sets(2, 3), 4, [0, 1])
    assert out.dtype == torch.float32 and out.device.type == "cpu" and out.shape == (2, 4, 3, RES, RES)
    low = _checked(lambda b, n: torch.full((b, n, 3, RES, RES), -RANGE_TOLERANCE / 2, dtype=torch.bfloat16))
    assert low.sample(1, 2, "uniform", [7]).dtype == torch.float32


def test_contract_passes_inputs_and_seeds_unchanged():
    model = GoodModel()
    checked = CheckedSetModel(model, "obj", RES)
    sets, seeds = _sets(2, 3), [11, 12]
    checked.reconstruct(sets, 4, seeds)
    assert model.calls[-1][0] is sets and model.calls[-1][1] == 4 and model.calls[-1][2] is seeds
    checked.sample(3, 2, "uniform", [1, 2, 3])
    assert model.calls[-1] == (3, 2, "uniform", [1, 2, 3])


def test_contract_checks_the_model_at_construction():
    with pytest.raises(ValueError, match=r"'spec-a'.*no callable reconstruct"):
        CheckedSetModel(object(), "spec-a")
    no_res = types.SimpleNamespace(reconstruct=lambda *a: None)
    with pytest.raises(ValueError, match=r"'spec-b'.*no `resolution` attribute"):
        CheckedSetModel(no_res, "spec-b")
    for bad in (0, -3, 16.0, True, "16", None):
        with pytest.raises(ValueError, match=r"'spec-c'.*resolution must be a positive int"):
            CheckedSetModel(types.SimpleNamespace(resolution=bad, reconstruct=lambda *a: None), "spec-c")
    with pytest.raises(ValueError, match=r"'spec-d' works at 8 px, but this benchmark needs 32 px"):
        CheckedSetModel(GoodModel(), "spec-d", 32)
    assert CheckedSetModel(GoodModel(), "spec-e", None).resolution == RES
    unnamed = GoodModel()
    unnamed.name = ""
    with pytest.raises(ValueError, match=r"'spec-f'.*`name` must be a non-empty str"):
        CheckedSetModel(unnamed, "spec-f")


def test_contract_checks_describe():
    bad = GoodModel()
    bad.describe = lambda: ["not", "a", "dict"]
    with pytest.raises(ValueError, match=r"'spec'.*describe\(\) returned a list, expected a dict"):
        CheckedSetModel(bad, "spec").describe()
    bad.describe = lambda: {"tensor": torch.zeros(1)}
    with pytest.raises(ValueError, match=r"JSON-serialisable"):
        CheckedSetModel(bad, "spec").describe()
    assert CheckedSetModel(ReconstructOnly(), "spec").describe() == {"name": "ReconstructOnly"}


def test_a_model_without_sample_cannot_sample():
    checked = CheckedSetModel(ReconstructOnly(), "python:tests.test_model_registry:make_reconstruct_only")
    assert not hasattr(checked, "sample")
    with pytest.raises(AttributeError, match="has no sample"):
        checked.sample(1, 1, "learned", [0])
    assert isinstance(ReconstructOnly(), SetModel)  # sample is optional in the Protocol
    loaded = load_model("python:tests.test_model_registry:make_reconstruct_only", _context())
    assert not loaded.can_sample and loaded.manifest()["can_sample"] is False
    assert loaded.description == {"name": "ReconstructOnly"}
    assert hasattr(load_model("python:tests.test_model_registry:make_good", _context()).model, "sample")


# --- python: specs --------------------------------------------------------------------------


def test_python_factory_with_model_args():
    spec = "python:tests.test_model_registry:make_good"
    loaded = load_model(spec, _context(), parse_model_args(["value=0.25", "tag=a=b"]))
    assert isinstance(loaded, LoadedModel) and loaded.kind == "python" and loaded.spec == spec
    assert loaded.model.wrapped.value == 0.25 and loaded.model.wrapped.context is None
    assert loaded.description == {"name": "good", "tag": "a=b"}
    assert loaded.sha256 == sha256_file(__file__)
    assert loaded.can_sample and loaded.model.name == "good"
    assert loaded.manifest() == {
        "spec": spec,
        "kind": "python",
        "sha256": sha256_file(__file__),
        "description": {"name": "good", "tag": "a=b"},
        "can_sample": True,
    }
    assert loaded.sentence() == f"set model `{spec}` (name `good`, sha256 {sha256_file(__file__)[:12]})"
    out = loaded.model.reconstruct(_sets(1, 2), 3, [5])
    assert out.shape == (1, 3, 3, RES, RES) and torch.all(out == round(0.25 * 255) / 255)  # 8-bit levels


def test_python_factory_gets_the_context_when_it_accepts_one():
    context = _context(resolution=12)
    loaded = load_model("python:tests.test_model_registry:make_with_context", context, {"tag": "x"})
    assert loaded.model.wrapped.context is context and loaded.model.resolution == 12
    assert loaded.description["tag"] == "x"


@pytest.mark.parametrize(
    "spec, args, message",
    [
        ("python:tests.no_such_module:make", {}, "cannot import module 'tests.no_such_module'"),
        ("python:tests.test_model_registry:nope", {}, "has no attribute 'nope'"),
        ("python:tests.test_model_registry:NOT_CALLABLE", {}, "is a int, not a callable factory"),
        ("python:tests.test_model_registry", {}, "expected python:package.module:factory"),
        ("python::make_good", {}, "expected python:package.module:factory"),
        ("python:tests.test_model_registry:make_not_a_model", {}, "no callable reconstruct"),
        ("python:tests.test_model_registry:make_good", {"colour": "red"}, "cannot take the arguments"),
        ("python:tests.test_model_registry:make_with_context", {"context": "x"}, "context=... is reserved"),
    ],
)
def test_python_spec_errors_name_the_spec(spec, args, message):
    with pytest.raises(ValueError) as e:
        load_model(spec, _context(), args)
    assert repr(spec) in str(e.value) and message in str(e.value)


def test_python_model_at_the_wrong_resolution():
    with pytest.raises(ValueError, match=r"make_good' works at 8 px, but this benchmark needs 32 px"):
        load_model("python:tests.test_model_registry:make_good", _context(resolution=32))


# --- SDN checkpoints ------------------------------------------------------------------------


def test_sdn_checkpoint_path_resolves():
    sdn = SDN.from_checkpoint(SDN_CKPT)
    loaded = load_model(str(SDN_CKPT), _context(resolution=sdn.resolution))
    assert loaded.kind == "sdn" and loaded.checkpoint == SDN_CKPT
    assert loaded.sha256 == sha256_file(SDN_CKPT)
    assert loaded.description == model_disclosure(sdn)
    assert loaded.sentence() == model_sentence(sdn, SDN_CKPT)
    assert loaded.can_sample and isinstance(loaded.model.wrapped, SDN)
    r = sdn.resolution
    sets = torch.rand(2, 2, 3, r, r)
    out = loaded.model.reconstruct(sets, 3, [4, 5])
    assert out.shape == (2, 3, 3, r, r) and out.dtype == torch.float32
    assert torch.equal(out, quantise(sdn.reconstruct(sets, 3, [4, 5])))
    assert loaded.model.sample(2, 2, "learned", [1, 2]).shape == (2, 2, 3, r, r)
    with pytest.raises(ValueError, match=rf"works at {r} px, but this benchmark needs {2 * r} px"):
        load_model(str(SDN_CKPT), _context(resolution=2 * r))


def test_wrapping_an_sdn_object_keeps_its_disclosure():
    sdn = SDN.from_checkpoint(SDN_CKPT)
    loaded = wrap_model(sdn, _context(resolution=None))
    assert loaded.kind == "sdn" and loaded.sha256 is None and loaded.checkpoint is None
    assert loaded.description == model_disclosure(sdn) and loaded.sentence() == model_sentence(sdn)


def test_wrap_model_of_a_python_object():
    loaded = wrap_model(GoodModel(tag="t"), _context())
    assert loaded.kind == "python" and loaded.spec == "object"
    assert loaded.sha256 == sha256_file(__file__) and loaded.description == {"name": "good", "tag": "t"}


# --- spec errors, ref: and folder: ----------------------------------------------------------


def test_spec_errors(tmp_path):
    with pytest.raises(ValueError, match=r"'nonsense:x': unknown prefix 'nonsense:'; accepted forms: PATH"):
        load_model("nonsense:x", _context())
    missing = tmp_path / "missing.pt"
    with pytest.raises(ValueError, match=rf"no SDN checkpoint file at {missing}.*accepted forms"):
        load_model(str(missing), _context())
    with pytest.raises(ValueError, match=r"a folder: use folder:DIR"):
        load_model(str(tmp_path), _context())
    with pytest.raises(ValueError, match=r"--model-arg \(a, b\) is only for python: specs"):
        load_model(str(SDN_CKPT), _context(), {"a": "1", "b": "2"})
    with pytest.raises(ValueError, match=r"'ref:copy': --model-arg \(a\) is only for python: specs"):
        load_model("ref:copy", _context(), {"a": "1"})


def test_a_path_with_an_unknown_prefix_that_exists_is_a_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("weird:name.pt").write_bytes(SDN_CKPT.read_bytes())
    loaded = load_model("weird:name.pt", _context(resolution=None))
    assert loaded.kind == "sdn" and loaded.sha256 == sha256_file(SDN_CKPT)


def _fake_module(monkeypatch, name: str, **attrs) -> None:
    monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(**attrs))


def test_ref_specs_dispatch_to_the_references_module(monkeypatch):
    seen = []

    def reference_model(name, context):
        seen.append((name, context))
        return GoodModel(tag=name)

    refs = {"copy": "the input set itself", "oracle": "held-out real views"}
    _fake_module(
        monkeypatch, "benchmarks.models.references", REFERENCES=refs, reference_model=reference_model
    )
    context = _context()
    loaded = load_model("ref:copy", context)
    assert seen == [("copy", context)]
    assert (
        loaded.kind == "ref"
        and loaded.sha256 is None
        and loaded.description == {"name": "good", "tag": "copy"}
    )
    assert loaded.sentence() == "reference model `ref:copy` (name `good`)"
    with pytest.raises(
        ValueError, match=r"'ref:nope': no reference model 'nope'; known: ref:copy \(the input"
    ):
        load_model("ref:nope", context)


def test_folder_specs_dispatch_to_the_folder_module(monkeypatch, tmp_path):
    seen = []

    def folder_model(path, context):
        seen.append((path, context))
        return ReconstructOnly()

    _fake_module(monkeypatch, "benchmarks.models.folder", folder_model=folder_model)
    (tmp_path / "a.png").write_bytes(b"png")
    context = _context()
    loaded = load_model(f"folder:{tmp_path}", context)
    assert seen == [(tmp_path, context)]
    assert loaded.kind == "folder" and loaded.sha256 == folder_sha256(tmp_path) and not loaded.can_sample
    with pytest.raises(ValueError, match=r"no folder at"):
        load_model(f"folder:{tmp_path / 'missing'}", context)
    with pytest.raises(ValueError, match=r"'folder:': no folder at ''"):
        load_model("folder:", context)


# --- helpers --------------------------------------------------------------------------------


def test_model_spec_from():
    assert model_spec_from("runs/sdn.pt", None) == "runs/sdn.pt"
    assert model_spec_from(None, "ref:copy") == "ref:copy"
    with pytest.raises(ValueError, match=r"exactly one of --model SPEC or --ckpt PATH, got both"):
        model_spec_from("a.pt", "ref:copy")
    with pytest.raises(ValueError, match=r"got neither"):
        model_spec_from(None, None)
    with pytest.raises(ValueError, match=r"--ckpt takes an SDN checkpoint path; use --model ref:copy"):
        model_spec_from("ref:copy", None)


def test_parse_model_args():
    assert parse_model_args([]) == {}
    assert parse_model_args(["a=1", "b=", "c=x=y"]) == {"a": "1", "b": "", "c": "x=y"}
    for bad in ("novalue", "=1", "1a=2", "a-b=3"):
        with pytest.raises(ValueError, match="expected key=value"):
            parse_model_args([bad])
    with pytest.raises(ValueError, match="given twice"):
        parse_model_args(["a=1", "a=2"])


def test_folder_sha256_is_deterministic_and_content_sensitive(tmp_path):
    def make(root: Path, files: dict[str, bytes]) -> Path:
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        return root

    files = {"b.png": b"bbb", "a.png": b"aaa", "sub/c.png": b"ccc"}
    one = folder_sha256(make(tmp_path / "one", files))
    assert one == folder_sha256(tmp_path / "one")
    assert one == folder_sha256(make(tmp_path / "two", dict(reversed(list(files.items())))))
    assert one != folder_sha256(make(tmp_path / "edited", {**files, "a.png": b"aab"}))
    assert one != folder_sha256(
        make(tmp_path / "renamed", {"b.png": b"bbb", "z.png": b"aaa", "sub/c.png": b"ccc"})
    )
    assert one != folder_sha256(make(tmp_path / "added", {**files, "d.png": b""}))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no files"):
        folder_sha256(tmp_path / "empty")
    with pytest.raises(ValueError, match="not a folder"):
        folder_sha256(tmp_path / "nowhere")


def test_model_context_checks_the_benchmark():
    with pytest.raises(ValueError, match=r"benchmark must be one of \('shapenet', 'faces'\)"):
        _context(benchmark="mnist")
    assert _context(benchmark="faces").data == Path("data/none")


def test_outputs_are_quantised_to_8_bit_levels():
    """Every model is scored on 8-bit images (as a PNG holds them): k/255, the nearest level."""
    x = torch.tensor([0.0, 0.31, 0.5, 1 / 510 - 1e-4, 1.0])
    q = quantise(x)
    assert torch.equal(q * 255, (q * 255).round()) and torch.allclose(
        q, torch.tensor([0, 79, 128, 0, 255]) / 255
    )
    assert float((q - x).abs().max()) <= 1 / 510 + 1e-6  # half a level, up to float32 rounding
