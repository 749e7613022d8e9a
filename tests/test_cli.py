from click.testing import CliRunner

from benchmarks.cli import main


def test_version_and_help():
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0 and "sdn-bench, version" in r.output
    for args in (
        ["--help"],
        ["data", "--help"],
        ["data", "shapes", "--help"],
        ["data", "preview", "--help"],
        ["bench", "--help"],
        ["data", "faces", "--help"],
        ["train", "verifier", "--help"],
        ["faces", "--help"],
        ["compare", "--help"],
        ["regress", "--help"],
        ["validate", "--help"],
    ):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 0, (args, r.output)
        assert "Usage:" in r.output


def test_data_shapes_and_preview(tmp_path):
    out = tmp_path / "d"
    r = CliRunner().invoke(
        main,
        [
            "data",
            "shapes",
            "--out",
            str(out),
            "--categories",
            "lamp",
            "--objects-per-category",
            "3",
            "--views",
            "2",
            "--resolution",
            "16",
            "--workers",
            "1",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "3 objects generated" in r.output
    assert (out / "03636649" / "test.lst").is_file()
    r = CliRunner().invoke(main, ["data", "preview", "--data", str(out), "--out", str(tmp_path / "p.png")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_data_shapes_bad_input(tmp_path):
    r = CliRunner().invoke(
        main, ["data", "shapes", "--out", str(tmp_path / "d"), "--objects-per-category", "0"]
    )
    assert r.exit_code == 2 and "objects_per_category must be >= 1" in r.output
    r = CliRunner().invoke(main, ["data", "shapes", "--out", str(tmp_path / "d"), "--categories", "spoon"])
    assert r.exit_code == 2 and "unknown category 'spoon'" in r.output


def test_compare_exit_codes(tmp_path):
    import shutil

    import pandas as pd

    ref = "reports/reference/shapes"  # 3 objects per category: intervals exist
    same = CliRunner().invoke(main, ["compare", ref, ref, "--out", str(tmp_path / "c0")])
    assert same.exit_code == 0, same.output
    worse = tmp_path / "worse"
    shutil.copytree(ref, worse)
    t = pd.read_csv(worse / "table2.csv")
    t.loc[t.metric == "occnet_iou", ["mean", "ci_low", "ci_high"]] -= 0.3
    t.to_csv(worse / "table2.csv", index=False)
    r = CliRunner().invoke(main, ["compare", str(worse), ref, "--out", str(tmp_path / "c1")])
    assert r.exit_code == 1 and "occnet_iou" in r.output
    other = tmp_path / "other"
    shutil.copytree(ref, other)
    (other / "manifest.json").write_text(
        (other / "manifest.json").read_text().replace('"benchmark": "shapenet"', '"benchmark": "faces"')
    )
    r = CliRunner().invoke(main, ["compare", str(other), ref, "--out", str(tmp_path / "c2")])
    assert r.exit_code == 2


def test_data_faces_and_preview(tmp_path):
    out = tmp_path / "faces"
    args = ["data", "faces", "--out", str(out), "--identities", "3", "--images-per-identity", "2"]
    r = CliRunner().invoke(main, [*args, "--resolution", "32", "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "3 identities generated" in r.output
    assert (out / "train_list.txt").is_file() and (out / "identity_meta.csv").is_file()
    png = tmp_path / "grid.png"
    r = CliRunner().invoke(main, ["data", "preview", "--data", str(out), "--out", str(png)])
    assert r.exit_code == 0, r.output
    assert png.stat().st_size > 0
    r = CliRunner().invoke(main, [*args, "--resolution", "48"])
    assert r.exit_code == 2 and "differs in: resolution" in r.output


def test_data_splits_option(tmp_path):
    out = tmp_path / "d"
    args = ["data", "shapes", "--out", str(out), "--categories", "lamp", "--objects-per-category", "3"]
    args += ["--views", "2", "--resolution", "16", "--workers", "1"]
    r = CliRunner().invoke(main, [*args, "--splits", "test"])
    assert r.exit_code == 0, r.output
    assert "1 objects generated" in r.output
    assert all((out / "03636649" / f"{s}.lst").is_file() for s in ("train", "val", "test"))
    r = CliRunner().invoke(main, [*args, "--splits", "val,test"])
    assert r.exit_code == 0 and "1 objects generated, 1 already there" in r.output, r.output
    r = CliRunner().invoke(main, [*args, "--splits", "dev"])
    assert r.exit_code == 2 and "splits must be a non-empty subset of train, val, test" in r.output
    faces = ["data", "faces", "--out", str(tmp_path / "f"), "--identities", "3", "--images-per-identity", "2"]
    r = CliRunner().invoke(main, [*faces, "--resolution", "32", "--workers", "1", "--splits", "test"])
    assert r.exit_code == 0 and "1 identities generated" in r.output, r.output
    assert (tmp_path / "f" / "train_list.txt").read_text().count("\n") == 4  # complete: 2 identities x 2


def test_bench_generates_the_train_and_test_splits_only(tmp_path, monkeypatch):
    from benchmarks import main_job
    from sdn.data.synthetic_faces.generate import FacesConfig
    from sdn.data.synthetic_shapes.generate import ShapesConfig

    tiny_shapes = dict(categories=["lamp"], objects_per_category=3, views=2, resolution=16)
    monkeypatch.setattr(main_job, "ShapesConfig", lambda: ShapesConfig(**tiny_shapes))
    monkeypatch.setattr(main_job, "FacesConfig", lambda: FacesConfig(identities=3, images_per_identity=2))

    def absent(name):
        raise ValueError(f"no shipped checkpoint {name!r}")

    monkeypatch.setattr(main_job, "shipped_checkpoint", absent)  # both benchmarks are skipped
    monkeypatch.setattr(main_job, "write_combined_index", lambda out: out / "index.md")  # no reports here
    shapes, faces, out = tmp_path / "s", tmp_path / "f", tmp_path / "out"
    r = CliRunner().invoke(
        main,
        ["bench", "--data", str(shapes), "--faces-data", str(faces), "--out", str(out), "--workers", "1"],
    )
    assert r.exit_code == 0, r.output
    for stage in ("data", "previews", "shapes benchmark", "faces benchmark"):
        assert f"stage {stage}: " in r.output
    # 3 objects: 1 train, 1 val, 1 test; 3 identities: 2 train, 1 test. The val split is not built.
    assert "2 objects generated" in r.output and "3 identities generated" in r.output
    lists = [(shapes / "03636649" / f"{split}.lst").read_text().strip() for split in ("train", "test")]
    assert sorted(p.name for p in (shapes / "03636649").iterdir() if p.is_dir()) == sorted(lists)
    assert len(list((faces / "train").iterdir())) == 2 and len(list((faces / "test").iterdir())) == 1
    assert (out / "shapes-preview.png").is_file() and (out / "faces-preview.png").is_file()


def test_train_sdn_passes_the_selection_score_and_the_restart(tmp_path, monkeypatch):
    """--selection builds the shapes selection with the shipped OccNet and the run's seed;
    --init-from and --selection-every reach the trainer."""
    import sdn.trainer
    from benchmarks.selection import ShapesSelection
    from benchmarks.shipped import OCCNET, shipped_checkpoint

    seen = {}
    monkeypatch.setattr(sdn.trainer, "train_sdn", lambda *a, **kw: seen.update(kw) or {})
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    args = ["train", "sdn", "--data", str(tmp_path), "--preset", "tiny-16", "--seed", "3", "--out",
            str(tmp_path / "run"), "--selection", "--selection-every", "500",
            "--init-from", str(weights)]  # fmt: skip
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    selection = seen["selection"]
    assert isinstance(selection, ShapesSelection) and selection.seed == 3
    assert selection.occnet == str(shipped_checkpoint(OCCNET)) and selection.data == str(tmp_path)
    assert seen["selection_every"] == 500 and str(seen["init_from"]) == str(weights)
