"""The offline protocol: `sdn-bench tasks` writes the requests, a model answers them in a
folder, `--model folder:DIR` scores it, and the report equals the direct score."""

import json
import shutil

import pandas as pd
import pytest
from PIL import Image

from benchmarks import regression
from benchmarks.faces import run_faces_benchmark
from benchmarks.models.folder import FolderSetModel, fill_tasks
from benchmarks.models.sdn_checkpoint import load_sdn
from benchmarks.shapenet import run_shapenet_benchmark
from benchmarks.tasks import faces_tasks, shapenet_tasks

MODELS, DATA = regression.FIXTURE_MODELS, regression.FIXTURE_DATA


def _faces_config():
    cfg = regression.faces_config()
    cfg.max_identities = 12
    return cfg


def _same(a, b, files):
    for name in files:
        pd.testing.assert_frame_equal(
            pd.read_csv(a / name), pd.read_csv(b / name), check_exact=True, obj=name
        )


@pytest.fixture(scope="module")
def faces_folder(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faces-tasks")
    sdn, _ = load_sdn(MODELS["sdn-faces"])
    doc = faces_tasks(DATA["faces"], sdn.resolution, _faces_config(), tmp / "tasks", tmp / "cache")
    assert fill_tasks(sdn, tmp / "tasks") == len(doc["tasks"])
    return tmp


def test_faces_folder_round_trip_equals_the_direct_score(faces_folder):
    tmp, cfg = faces_folder, _faces_config()
    kw = {"embedder": str(MODELS["verifier"]), "cache_dir": tmp / "cache", "progress": False}
    direct = run_faces_benchmark(str(MODELS["sdn-faces"]), DATA["faces"], tmp / "direct", cfg, **kw)
    folder = run_faces_benchmark(f"folder:{tmp / 'tasks'}", DATA["faces"], tmp / "folder", cfg, **kw)
    _same(tmp / "direct", tmp / "folder", ("curves.csv", "summary.csv", "equivalent_noise.csv"))
    assert folder["model"]["kind"] == "folder" and direct["model"]["kind"] == "sdn"
    assert folder["model"]["sha256"] and folder["model"]["can_sample"]


def test_shapenet_folder_round_trip_equals_the_direct_score(tmp_path):
    cfg = regression.shapenet_config()
    cfg.max_objects = 3
    occ = MODELS["occnet"]
    sdn, _ = load_sdn(MODELS["sdn-shapes"])
    shapenet_tasks(DATA["shapes"], sdn.resolution, cfg, tmp_path / "tasks", tmp_path / "cache")
    fill_tasks(sdn, tmp_path / "tasks")
    kw = {"cache_dir": tmp_path / "cache", "progress": False}
    run_shapenet_benchmark(str(MODELS["sdn-shapes"]), occ, DATA["shapes"], tmp_path / "direct", cfg, **kw)
    run_shapenet_benchmark(
        f"folder:{tmp_path / 'tasks'}", occ, DATA["shapes"], tmp_path / "folder", cfg, **kw
    )
    _same(
        tmp_path / "direct", tmp_path / "folder", ("objects.csv", "table1a.csv", "table1b.csv", "table2.csv")
    )


def test_folder_errors_name_the_offending_tasks(faces_folder, tmp_path):
    good = faces_folder / "tasks"
    doc = json.loads((good / "tasks.json").read_text())
    ids = [t["id"] for t in doc["tasks"]]
    for case in ("missing", "extra", "size", "unreadable"):
        bad = tmp_path / case
        shutil.copytree(good, bad)
        target = bad / ids[3] / "000.png"
        if case == "missing":
            for t in ids[:7]:
                (bad / t / "001.png").unlink()
            match = rf"7 tasks with missing images.*{ids[0]}, .*{ids[4]} and 2 more"
        elif case == "extra":
            (bad / ids[3] / "notes.txt").write_text("x")
            match = rf"1 tasks with extra files.*{ids[3]}"
        elif case == "size":
            Image.new("RGB", (5, 5)).save(target)
            match = rf"images not {doc['resolution']}x{doc['resolution']} px: {ids[3]}"
        else:
            target.write_bytes(b"not a png")
            match = rf"unreadable images: {ids[3]}"
        with pytest.raises(ValueError, match=match):
            FolderSetModel(bad)


def test_a_folder_for_other_tasks_is_refused(faces_folder, tmp_path):
    cfg = _faces_config()
    cfg.seed = 1  # other seeds: other requests
    with pytest.raises(ValueError, match="no task for"):
        run_faces_benchmark(
            f"folder:{faces_folder / 'tasks'}", DATA["faces"], tmp_path / "r", cfg,
            embedder=str(MODELS["verifier"]), cache_dir=faces_folder / "cache", progress=False,
        )  # fmt: skip
    with pytest.raises(ValueError, match="tasks of the 'faces' benchmark, not 'shapenet'"):
        FolderSetModel(faces_folder / "tasks", benchmark="shapenet")
