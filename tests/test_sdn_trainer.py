"""The SDN trainer: exact resume, checkpoints, a tiny overfit, DDP, signals, bad input."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from sdn.checkpoint import load_checkpoint, save_checkpoint
from sdn.config import apply_overrides, preset
from sdn.data.shapenet import ShapeNetViews
from sdn.model import SDN
from sdn.trainer import train_sdn
from sdn.training import batch_indices


def tiny_cfg(steps: int, recipe: str = "faithful", precision: str = "fp32", **extra):
    cfg = preset("tiny-16", "shapes", recipe)
    over = [
        f"train.steps={steps}",
        "train.set_size=3",
        "train.batch_sets=2",
        f"train.precision={precision}",
        "train.checkpoint_every=1000",
        "train.eval_every=1000",
        "train.log_every=1",
        "train.eval_sets=2",
    ]
    over += [f"{k}={v}" for k, v in extra.items()]
    return apply_overrides(cfg, over)


def run(root, cfg, out, resume=False, cache=None):
    return train_sdn(root, cfg, out, resume=resume, progress=False, cache_dir=cache)


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("recipe,precision", [("faithful", "fp32"), ("aided", "bf16")])
def test_resume_equals_uninterrupted(tiny_shapes, tmp_path, recipe, precision):
    extra = {"aids.warmup_steps": 2} if recipe == "aided" else {}
    cache = tmp_path / "cache"
    run(tiny_shapes, tiny_cfg(6, recipe, precision, **extra), tmp_path / "full", cache=cache)
    run(tiny_shapes, tiny_cfg(3, recipe, precision, **extra), tmp_path / "half", cache=cache)
    run(tiny_shapes, tiny_cfg(6, recipe, precision, **extra), tmp_path / "half", resume=True, cache=cache)
    full = load_checkpoint(tmp_path / "full" / "checkpoint.pt", "sdn")
    half = load_checkpoint(tmp_path / "half" / "checkpoint.pt", "sdn")
    assert full["step"] == half["step"] == 6
    assert states_equal(full["model"], half["model"])
    with open(tmp_path / "half" / "metrics.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_checkpoint_alone_rebuilds_the_model(tiny_shapes, tmp_path):
    run(tiny_shapes, tiny_cfg(2), tmp_path / "r", cache=tmp_path / "c")
    ckpt = load_checkpoint(tmp_path / "r" / "checkpoint.pt", "sdn")
    for key in (
        "format_version",
        "kind",
        "config",
        "model",
        "optim",
        "step",
        "rng",
        "package_version",
        "data_fingerprint",
    ):
        assert key in ckpt
    model = SDN.from_checkpoint(tmp_path / "r" / "checkpoint.pt")
    fresh = SDN.from_checkpoint(tmp_path / "r" / "checkpoint.pt")
    x = torch.rand(2, 3, 3, 16, 16)
    assert torch.equal(model.encode(x), fresh.encode(x))
    assert torch.equal(model.sample(2, 2, seed=1), fresh.sample(2, 2, seed=1))
    # weights_only loading: the file holds tensors and plain data only.
    torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    for name in ("run.json", "metrics.csv", "eval.csv"):
        assert (tmp_path / "r" / name).is_file()
    assert list((tmp_path / "r" / "samples").glob("step_*.png"))


def test_wrong_checkpoint_kind_and_resume_errors(tiny_shapes, tmp_path):
    save_checkpoint(tmp_path / "occ.pt", "occnet", {}, {"model": {}}, 0, "x")
    with pytest.raises(ValueError, match="kind is 'occnet', expected 'sdn'"):
        SDN.from_checkpoint(tmp_path / "occ.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.pt: not a readable sdn-bench checkpoint"):
        SDN.from_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="no checkpoint at"):
        run(tiny_shapes, tiny_cfg(2), tmp_path / "none", resume=True)
    run(tiny_shapes, tiny_cfg(1), tmp_path / "r", cache=tmp_path / "c")
    with pytest.raises(ValueError, match="exists: pass --resume"):
        run(tiny_shapes, tiny_cfg(2), tmp_path / "r", cache=tmp_path / "c")
    with pytest.raises(ValueError, match=r"differs in model.d_z"):
        run(tiny_shapes, tiny_cfg(2, **{"model.d_z": 8}), tmp_path / "r", resume=True, cache=tmp_path / "c")


def test_batch_indices_disjoint_across_ranks_and_reproducible():
    a = batch_indices(5, 20, 4, 0, 2, seed=1)
    b = batch_indices(5, 20, 4, 1, 2, seed=1)
    assert a[0] == b[0] == 2  # 20 items / 8 per global step = 2 steps per epoch
    assert not set(a[1]) & set(b[1])
    assert np.array_equal(batch_indices(5, 20, 4, 0, 2, seed=1)[1], a[1])
    with pytest.raises(ValueError, match="fewer than batch x world size"):
        batch_indices(0, 3, 2, 0, 2, seed=0)


def test_tiny_overfit(tmp_path, tiny_shapes):
    """A few hundred steps on two sets: the energy separates real from generated images
    and generated sets map to their own code more often than chance (0.5 with two sets).
    Agreement is not asserted to rise over the run: on two sets it saturates within the first
    10 steps (0.78 at the first log row on an AMX-bf16 machine of 2026-12-02) and then moves
    by 1/32 steps, so "last > first" failed on that machine with no code change."""
    cfg = tiny_cfg(300, "faithful", "bf16", **{"train.log_every": 10})
    run(tiny_shapes, cfg, tmp_path / "o", cache=tmp_path / "c")
    with open(tmp_path / "o" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    last = rows[-5:]
    e_real = np.mean([float(r["e_real"]) for r in last])
    e_fake = np.mean([float(r["e_fake"]) for r in last])
    assert e_real < e_fake
    last_agree = np.mean([float(r["g_code_agree"]) for r in rows[-10:]])
    assert last_agree > 0.6


def _cli(*args):
    return [sys.executable, "-m", "benchmarks.cli", "train", "sdn", *args]


def _tiny_args(root, out, steps, cache):
    return [
        "--data",
        str(root),
        "--preset",
        "tiny-16",
        "--steps",
        str(steps),
        "--set-size",
        "3",
        "--batch-sets",
        "1",
        "--precision",
        "fp32",
        "--out",
        str(out),
        "--cache-dir",
        str(cache),
        "--set",
        "train.eval_sets=2",
        "--set",
        "train.checkpoint_every=2",
        "--set",
        "train.eval_every=2",
    ]


def test_ddp_two_gloo_processes(tiny_shapes, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "benchmarks.cli",
        "train",
        "sdn",
        *_tiny_args(tiny_shapes, out, 4, tmp_path / "c"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    ckpt = load_checkpoint(out / "checkpoint.pt", "sdn")
    assert ckpt["step"] == 4 and len(ckpt["rng_ranks"]) == 2
    import json

    assert json.loads((out / "run.json").read_text())["world_size"] == 2


def test_sigterm_writes_a_checkpoint_and_exits_cleanly(tiny_shapes, tmp_path):
    out = tmp_path / "sig"
    proc = subprocess.Popen(
        _cli(*_tiny_args(tiny_shapes, out, 100_000, tmp_path / "c")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not (out / "metrics.csv").exists() or (out / "metrics.csv").stat().st_size < 200:
        assert time.time() < deadline and proc.poll() is None, (
            proc.stderr.read() if proc.poll() is not None else "timeout"
        )
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    ckpt = load_checkpoint(out / "checkpoint.pt", "sdn")
    assert 0 < ckpt["step"] < 100_000
    import json

    run_record = json.loads((out / "run.json").read_text())
    assert run_record["sessions"][-1]["status"] == "interrupted"
    assert run_record["sessions"][-1]["end_step"] == ckpt["step"]


def test_export_fp16_with_manifest_rebuilds_the_model(tiny_shapes, tmp_path):
    import json

    from benchmarks.manifest import export_with_manifest

    run(tiny_shapes, tiny_cfg(2), tmp_path / "r", cache=tmp_path / "c")
    manifest = export_with_manifest(
        tmp_path / "r" / "checkpoint.pt", tmp_path / "w.pt", half=True, note="test"
    )
    on_disk = json.loads((tmp_path / "w.pt.json").read_text())
    assert (
        on_disk["sha256"] == manifest["sha256"]
        and on_disk["step"] == 2
        and on_disk["weights_dtype"] == "float16"
    )
    assert on_disk["training_sessions"] and on_disk["held_out"]["step"] == 2
    exported = torch.load(tmp_path / "w.pt", weights_only=True)
    assert "optim" not in exported and all(
        v.dtype != torch.float32 for v in exported["model"].values() if v.is_floating_point()
    )
    full, half = SDN.from_checkpoint(tmp_path / "r" / "checkpoint.pt"), SDN.from_checkpoint(tmp_path / "w.pt")
    x = torch.rand(2, 3, 3, 16, 16)
    assert (full.encode(x) == half.encode(x)).float().mean() > 0.9  # fp16 rounding may flip near-zero bits


def test_a_sitting_without_the_run_folder_continues_from_exported_weights(tiny_shapes, tmp_path):
    """init_from: the exported weights (float32 here, so exactly), the step count continued, the
    restart recorded; another configuration is refused by name."""
    import json

    from benchmarks.manifest import export_with_manifest
    from sdn.trainer import Trainer, restart_from_export
    from sdn.training import Dist

    def run_fingerprint(folder):
        return json.loads((folder / "run.json").read_text())["data_fingerprint"]

    run(tiny_shapes, tiny_cfg(2), tmp_path / "r", cache=tmp_path / "c")
    export_with_manifest(tmp_path / "r" / "checkpoint.pt", tmp_path / "w.pt", half=False)
    trainer = Trainer(tiny_cfg(3), Dist())
    restart_from_export(trainer, tmp_path / "w.pt", tiny_cfg(3).to_dict(), run_fingerprint(tmp_path / "r"))
    a = load_checkpoint(tmp_path / "r" / "checkpoint.pt", "sdn")["model"]
    loaded = trainer.model.state_dict()
    assert trainer.step_count == 2 and all(torch.equal(a[k], v) for k, v in loaded.items())
    record = train_sdn(tiny_shapes, tiny_cfg(3), tmp_path / "s", progress=False, cache_dir=tmp_path / "c",
                       init_from=tmp_path / "w.pt")  # fmt: skip
    assert (record["sessions"][0]["start_step"], record["steps_done"]) == (2, 3)
    (restart,) = record["restarts"]
    assert restart["step"] == 2 and restart["weights_dtype"] == "float32" and len(restart["sha256"]) == 64
    assert restart["data_check"] == "content"
    record = train_sdn(tiny_shapes, tiny_cfg(4), tmp_path / "s", resume=True, progress=False,
                       cache_dir=tmp_path / "c")  # fmt: skip
    assert record["steps_done"] == 4 and json.loads((tmp_path / "s" / "run.json").read_text())["restarts"]
    with pytest.raises(ValueError, match=r"w\.pt was trained with another configuration \(differs in model"):
        train_sdn(tiny_shapes, tiny_cfg(2, **{"model.g_ch": 8}), tmp_path / "t", progress=False,
                  cache_dir=tmp_path / "c", init_from=tmp_path / "w.pt")  # fmt: skip


def test_never_reads_the_test_split(tiny_shapes, tmp_path):
    """Training, its held-out evaluation and validation_quality use val.lst: a test split of
    missing objects does not matter, and the re-evaluated checkpoint matches eval.csv."""
    import json
    import shutil

    from sdn.trainer import validation_quality

    root = tmp_path / "shapes"
    shutil.copytree(tiny_shapes, root)
    for lst in root.glob("*/test.lst"):
        lst.write_text("no_such_object\n")
    cfg = tiny_cfg(2, **{"train.channels_last": "false"})
    run(root, cfg, tmp_path / "r", cache=tmp_path / "c")
    last = json.loads((tmp_path / "r" / "run.json").read_text())["last_eval"]
    assert last["num_sets"] == 2  # the two val objects
    q = validation_quality(tmp_path / "r" / "checkpoint.pt", root, cache_dir=tmp_path / "c", progress=False)
    assert q == pytest.approx(last)


def test_faces_validation_holds_out_train_identities(tmp_path):
    from sdn.data.synthetic_faces.generate import FacesConfig, generate_faces
    from sdn.trainer import open_training_data

    root, cache = tmp_path / "faces", tmp_path / "c"
    fcfg = FacesConfig(identities=10, images_per_identity=10, resolution=32, test_fraction=0.5, seed=3)
    generate_faces(root, fcfg, progress=False)
    for img in (root / "test").rglob("*.jpg"):
        img.write_bytes(b"not a jpeg")  # never read
    cfg = apply_overrides(preset("tiny-16", "faces"), ["train.set_size=3", "train.eval_sets=2"])
    sets = open_training_data("faces", root, cfg.train, 16, cache, progress=False)
    trained = {sets.train.identities[int(i)].class_id for i in sets.train_items}
    held = {sets.val.identities[int(i)].class_id for i in sets.val_items}
    assert len(trained) == 3 and len(held) == 2 and not trained & held
    over = ["train.steps=2", "train.batch_sets=2", "train.precision=fp32"]
    rec = train_sdn(root, apply_overrides(cfg, over), tmp_path / "r", dataset="faces", progress=False,
                    cache_dir=cache)  # fmt: skip
    assert rec["last_eval"]["num_sets"] == 2


def test_config_discloses_the_memory_format():
    """train.channels_last is recorded; a config written before the field existed reads back
    as it trained (channels-last with every precision but fp32)."""
    from sdn.config import SDNConfig

    cfg = preset("tiny-16")
    assert cfg.train.precision == "bf16" and cfg.to_dict()["train"]["channels_last"] is True
    old = cfg.to_dict()
    del old["train"]["channels_last"]
    assert SDNConfig.from_dict(old).train.channels_last
    old["train"]["precision"] = "fp32"
    assert not SDNConfig.from_dict(old).train.channels_last


def test_a_final_phase_at_a_lower_learning_rate(tiny_shapes, tmp_path):
    """The learning rates are resumable: a resume (or a restart from exported weights) runs its
    optimisers at the configured, lowered rates, not at the checkpoint's, and records the change;
    a restart may also change the precision; a file saved before a config key existed restarts
    under that key's default."""
    import json

    from benchmarks.manifest import export_with_manifest

    low = {"train.lr_g": 2.5e-5, "train.lr_theta": 1e-4}
    cache = tmp_path / "c"
    run(tiny_shapes, tiny_cfg(2), tmp_path / "r", cache=cache)
    run(tiny_shapes, tiny_cfg(3, **low), tmp_path / "r", resume=True, cache=cache)
    ckpt = load_checkpoint(tmp_path / "r" / "checkpoint.pt", "sdn")
    assert [g["lr"] for g in ckpt["optim"]["g"]["param_groups"]] == [2.5e-5]
    assert {g["lr"] for g in ckpt["optim"]["theta"]["param_groups"]} == {1e-4}
    (change,) = json.loads((tmp_path / "r" / "run.json").read_text())["config_changes"]
    assert (
        change["step"] == 2
        and change["train.lr_g"] == [1e-4, 2.5e-5]
        and change["train.lr_theta"] == [4e-4, 1e-4]
    )
    export_with_manifest(tmp_path / "r" / "checkpoint.pt", tmp_path / "w.pt", half=False)
    older = torch.load(tmp_path / "w.pt", weights_only=False)  # a file from before train.channels_last
    del older["config"]["train"]["channels_last"]  # and before content fingerprints: names only
    resolution = older["config"]["model"]["resolution"]
    names = ShapeNetViews(tiny_shapes, "train", set_size=3, resolution=resolution, progress=False)
    older["data_fingerprint"] = names.names_fingerprint()
    torch.save(older, tmp_path / "w.pt")
    fp32_default = {"train.lr_g": 1e-5, "train.channels_last": False}  # what an old fp32 file ran
    record = train_sdn(tiny_shapes, tiny_cfg(4, "faithful", "bf16", **fp32_default), tmp_path / "s",
                       progress=False, cache_dir=cache, init_from=tmp_path / "w.pt")  # fmt: skip
    (restart,) = record["restarts"]  # a restart may change the arithmetic; the missing key is no change
    assert restart["config_changes"] == {
        "train.lr_g": [2.5e-5, 1e-5], "train.lr_theta": [1e-4, 4e-4], "train.precision": ["fp32", "bf16"],
        "train.steps": [3, 4],
    }  # fmt: skip
    assert restart["data_check"].startswith("names only")
    older["data_fingerprint"] = "0123456789abcdef"  # neither scheme
    torch.save(older, tmp_path / "w.pt")
    with pytest.raises(ValueError, match=r"w\.pt was trained on other data \(0123456789abcdef != "):
        train_sdn(tiny_shapes, tiny_cfg(4, "faithful", "bf16", **fp32_default), tmp_path / "u",
                  progress=False, cache_dir=cache, init_from=tmp_path / "w.pt")  # fmt: skip
    ckpt = load_checkpoint(tmp_path / "s" / "checkpoint.pt", "sdn")
    assert [g["lr"] for g in ckpt["optim"]["g"]["param_groups"]] == [1e-5]
