"""sdn-bench installed as a user installs it: a built wheel, not the editable checkout, run
from a folder of the user's own, scoring the user's model with the shipped reference weights."""

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import tomllib

from benchmarks import regression

ROOT = Path(__file__).resolve().parent.parent
USER_MODEL = '''
import torch
class Blur:
    name, resolution = "blur", 32
    def reconstruct(self, sets, n_out, seed):
        mean = sets.mean(dim=1, keepdim=True)
        return mean.expand(-1, n_out, -1, -1, -1).clone()
def make(strength="1"):
    return Blur()
'''


def test_every_package_of_the_tree_is_installed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    tree = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("sdn", "evaluation", "occnet_multiview", "benchmarks")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert listed == tree | {"sdn_bench_checkpoints"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv holding only the built wheel; its dependencies come from this venv's
    site-packages through a .pth file (site-packages of a path named in a .pth are not
    scanned, so this venv's editable install of sdn-bench is not seen)."""
    tmp = tmp_path_factory.mktemp("install")
    run = dict(check=True, capture_output=True, text=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp / "wheel"), str(ROOT)], **run)  # fmt: skip
    wheel = next((tmp / "wheel").glob("sdn_bench-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")], **run)
    python = tmp / "venv" / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([str(python), "-c", purelib], **run).stdout.strip())
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)]
    subprocess.run(pip, **run)
    (site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    user = tmp / "user"
    user.mkdir()
    (user / "mymodel.py").write_text(USER_MODEL)
    return python, user


def _cli(installed, *args):
    python, user = installed
    r = subprocess.run([str(python), "-m", "benchmarks.cli", *args], cwd=user, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return user


def test_the_wheel_is_what_runs(installed):
    python, user = installed
    r = subprocess.run(
        [str(python), "-c", "import benchmarks, benchmarks.shipped as s; print(benchmarks.__file__); "
         "print(s.shipped_checkpoint(s.OCCNET)); print(s.shipped_checkpoint(s.VERIFIER))"],
        cwd=user, capture_output=True, text=True, check=True,
    )  # fmt: skip
    where = r.stdout.split()
    assert all(str(python.parent.parent) in w for w in where) and str(ROOT) not in r.stdout


def test_a_user_model_is_scored_by_both_benchmarks_from_any_folder(installed):
    faces = _cli(
        installed, "faces", "--model", "python:mymodel:make", "--data", str(regression.FIXTURE_DATA["faces"]),
        "--set-size", "4", "--context-sizes", "1,4", "--noise-levels", "0,0.5", "--max-identities", "6",
        "--out", "faces-report",
    )  # fmt: skip
    manifest = json.loads((faces / "faces-report" / "manifest.json").read_text())
    assert manifest["model"]["spec"] == "python:mymodel:make"
    assert manifest["embedder"]["name"] == "verifier:verifier-faces64.pt"
    assert str(installed[0].parent.parent) in manifest["embedder"]["weights"]  # the shipped verifier
    shapes = _cli(
        installed, "shapenet", "--model", "python:mymodel:make",
        "--data", str(regression.FIXTURE_DATA["shapes"]),
        "--max-objects", "1", "--recon-views", "1", "--input-views", "1", "--out", "shapes-report",
    )  # fmt: skip
    manifest = json.loads((shapes / "shapes-report" / "manifest.json").read_text())
    assert str(installed[0].parent.parent) in manifest["occnet_checkpoint"]["path"]  # the shipped OccNet
    assert (shapes / "shapes-report" / "table1a.csv").is_file()
