"""The CI regression job (benchmarks/regression.py) fails on a deliberate regression.

It scores committed tiny models on committed tiny data; these tests rerun one half of it
with one thing broken and require ``compare`` to exit 1 against the committed baseline.
That it passes on unchanged code under another oneDNN ISA is checked by ``.ci/run``
(``make regress-proxy``), and on this machine by ``make regress``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks import regression
from sdn.data.vggface2 import VGGFace2Sets


def test_fixtures_are_committed():
    for path in [*regression.FIXTURE_DATA.values(), *regression.FIXTURE_MODELS.values()]:
        assert path.exists(), f"missing fixture {path}"


def test_greyscale_images_regress(tmp_path, monkeypatch):
    """A loader that drops colour (the files, hence the data fingerprint, unchanged): the
    faces verification curves must regress."""
    original = VGGFace2Sets.flat_images

    def greyscale(self, rows):
        x = original(self, rows)
        return x.mean(dim=1, keepdim=True).expand_as(x).contiguous()

    monkeypatch.setattr(VGGFace2Sets, "flat_images", greyscale)
    assert regression.run_regression(tmp_path / "job", benchmarks=("faces",)) == 1
    table = pd.read_csv(tmp_path / "job" / "compare" / "faces" / "compare.csv")
    assert "auc" in set(table[table.status == "regressed"].metric)


def test_a_broken_metric_regresses(tmp_path, monkeypatch):
    """A verification metric that scores pairs by a noisy cosine: the AUCs must regress."""
    from evaluation import verification

    cosine = verification._cosine
    rng = np.random.default_rng(0)

    def noisy(x, y, ia, ib):
        s = cosine(x, y, ia, ib)
        return s + rng.normal(0.0, 0.5, s.shape)

    monkeypatch.setattr(verification, "_cosine", noisy)
    assert regression.run_regression(tmp_path / "job", benchmarks=("faces",)) == 1


def test_a_broken_chamfer_regresses(tmp_path, monkeypatch):
    """A Chamfer kernel off by half (e.g. a mean taken over the wrong axis): CD must regress in
    the shapes half, whose intervals need every category to have >= 3 objects (4 here)."""
    from evaluation import geometry

    chamfer = geometry.chamfer

    def inflated(a, b):
        out = chamfer(a, b)
        return {**out, "cd": 1.5 * out["cd"], "chamfer_l1": 1.5 * out["chamfer_l1"]}

    monkeypatch.setattr(geometry, "chamfer", inflated)
    assert regression.run_regression(tmp_path / "job", benchmarks=("shapes",)) == 1
    table = pd.read_csv(tmp_path / "job" / "compare" / "shapes" / "compare.csv")
    regressed = table[table.status == "regressed"]
    assert {"cd", "chamfer_l1"} <= set(regressed.metric)
    assert set(regressed.category) == {"mean of categories"}  # aggregate rows only


def test_unknown_benchmark_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="non-empty subset of"):
        regression.run_reports(tmp_path, benchmarks=("cars",))


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
