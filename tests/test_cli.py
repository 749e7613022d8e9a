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

    ref = "reports/reference/shapes-39"  # 3 objects per category: intervals exist
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
