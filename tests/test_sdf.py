"""Signed-distance primitives against closed-form distances, and the operators' semantics."""

import numpy as np
import pytest

from sdn.data.synthetic_shapes.sdf import (
    Box,
    Capsule,
    Cone,
    Cylinder,
    Ellipsoid,
    Sphere,
    Subtract,
    Torus,
    Union,
    rotation,
)


def pts(*rows):
    return np.array(rows, dtype=np.float32)


def test_sphere_exact():
    d = Sphere(r=0.5, t=np.array([1.0, 0, 0])).sdf(pts([1, 0, 0], [2, 0, 0], [1, 0.25, 0]))
    np.testing.assert_allclose(d, [-0.5, 0.5, -0.25], atol=1e-6)


def test_box_exact_faces_edges_corners():
    b = Box(b=(1.0, 0.5, 0.25))
    d = b.sdf(pts([2, 0, 0], [0, 1, 0], [2, 1.5, 0], [2, 1.5, 1.25], [0, 0, 0]))
    np.testing.assert_allclose(d, [1.0, 0.5, np.sqrt(2), np.sqrt(3), -0.25], atol=1e-6)


def test_rounded_box_keeps_outer_size():
    b = Box(b=(1.0, 1.0, 1.0), r=0.2)
    np.testing.assert_allclose(b.sdf(pts([1.0, 0, 0], [0, 1.0, 0])), [0.0, 0.0], atol=1e-6)
    # The corner is rounded: distance from the corner point to the rounded surface.
    expected = np.sqrt(3) * 0.2 - 0.2
    np.testing.assert_allclose(b.sdf(pts([1, 1, 1])), [expected], atol=1e-6)


def test_cylinder_capsule_torus_cone():
    c = Cylinder(r=0.5, h=1.0)
    np.testing.assert_allclose(
        c.sdf(pts([1, 0, 0], [0, 2, 0], [1, 2, 0], [0, 0, 0])),
        [0.5, 1.0, np.sqrt(1.25), -0.5],
        atol=1e-6,
    )
    cap = Capsule(a=(0, 0, 0), b=(1, 0, 0), r=0.1)
    np.testing.assert_allclose(cap.sdf(pts([0.5, 1, 0], [2, 0, 0], [-1, 0, 0])), [0.9, 0.9, 0.9], atol=1e-6)
    tor = Torus(R0=1.0, r=0.25)
    np.testing.assert_allclose(tor.sdf(pts([1, 0, 0], [0, 0, 0], [2, 0, 0])), [-0.25, 0.75, 0.75], atol=1e-6)
    cone = Cone(r1=1.0, r2=0.0, h=1.0)  # apex at y = +1, base radius 1 at y = -1
    np.testing.assert_allclose(cone.sdf(pts([0, 2, 0], [0, -2, 0])), [1.0, 1.0], atol=1e-6)
    assert cone.sdf(pts([0, 0, 0]))[0] < 0


def test_ellipsoid_zero_set_exact():
    e = Ellipsoid(radii=(2.0, 1.0, 0.5))
    np.testing.assert_allclose(e.sdf(pts([2, 0, 0], [0, 1, 0], [0, 0, 0.5])), 0.0, atol=1e-6)
    assert e.sdf(pts([0, 0, 0]))[0] < 0 and e.sdf(pts([0, 0, 1]))[0] > 0


def test_placement_rotation_translation():
    b = Box(b=(1.0, 0.1, 0.1), t=np.array([0, 1.0, 0]), R=rotation(z=np.pi / 2))
    # Rotated by 90 degrees about z, the long axis now points along y.
    np.testing.assert_allclose(b.sdf(pts([0, 2.0, 0], [0, 2.5, 0])), [0.0, 0.5], atol=1e-6)


def test_union_and_subtract_semantics_and_materials():
    a = Sphere(r=1.0, material=0)
    b = Sphere(r=1.0, material=2, t=np.array([1.5, 0, 0]))
    d, m = Union([a, b]).eval(pts([-0.5, 0, 0], [2.0, 0, 0], [0.75, 0, 0]))
    np.testing.assert_allclose(d, [-0.5, -0.5, -0.25], atol=1e-6)
    assert list(m[:2]) == [0, 2]
    # Smooth union is never above the hard union (it only adds material).
    p = np.random.default_rng(0).uniform(-2, 3, (500, 3)).astype(np.float32)
    assert np.all(Union([a, b], k=0.3).sdf(p) <= Union([a, b]).sdf(p) + 1e-6)
    cut = Subtract(a, b)
    dc, mc = cut.eval(pts([-0.5, 0, 0], [0.75, 0, 0]))
    assert dc[0] < 0 and dc[1] > 0 and set(mc) == {0}
    # Smooth subtraction removes at least as much as the hard one.
    assert np.all(Subtract(a, b, k=0.3).sdf(p) >= cut.sdf(p) - 1e-6)


@pytest.mark.parametrize(
    "prim",
    [Sphere(r=0.7), Box(b=(0.5, 0.3, 0.2), r=0.05), Cylinder(r=0.4, h=0.6), Torus(R0=0.5, r=0.2)],
)
def test_exact_primitives_are_1_lipschitz(prim):
    rng = np.random.default_rng(1)
    p = rng.uniform(-1.5, 1.5, (2000, 3)).astype(np.float32)
    q = p + rng.normal(size=p.shape).astype(np.float32) * 0.05
    dd = np.abs(prim.sdf(p) - prim.sdf(q))
    assert np.all(dd <= np.linalg.norm(p - q, axis=1) + 1e-5)
