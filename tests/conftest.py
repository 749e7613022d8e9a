"""Shared fixtures: a tiny synthetic ShapeNet generated once per test session."""

from __future__ import annotations

import pytest

from sdn.data.synthetic_shapes.generate import ShapesConfig, generate_shapes

TINY = dict(categories=["03001627", "02691156"], objects_per_category=3, views=6, resolution=32, seed=7)


@pytest.fixture(scope="session")
def tiny_shapes_config() -> ShapesConfig:
    return ShapesConfig(**TINY)


@pytest.fixture(scope="session")
def tiny_shapes(tmp_path_factory, tiny_shapes_config):
    """Root of a 2-category x 3-object synthetic dataset (6 views, 32 px, full-size point files)."""
    root = tmp_path_factory.mktemp("shapes")
    generate_shapes(root, ShapesConfig(**TINY), workers=1, progress=False)
    return root
