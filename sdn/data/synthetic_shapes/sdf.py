"""Signed-distance primitives and operators for the procedural shape families.

A solid is a small tree of :class:`Node` objects. Evaluating a node at points
``p`` of shape (N, 3) returns ``(d, material)``: ``d`` (N,) float32 is the signed
distance (negative inside) and ``material`` (N,) int8 names the part that is
closest, which the renderer uses to colour each part of an object differently.

The primitive distances are the exact Euclidean ones (after Inigo Quilez's
catalogue) except :class:`Ellipsoid`, whose value is a first-order bound. The
smooth operators keep the zero level set well defined but make the value a bound
rather than an exact distance; only the *sign* (occupancy) and the zero level
(surface) are used downstream, never the distance itself.

Coordinates: y is up (as in ShapeNet), primitives are centred on their local
origin and placed with a rotation ``R`` (3, 3) and a translation ``t`` (3,):
``p_local = R^T (p - t)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Array = np.ndarray


def rotation(x: float = 0.0, y: float = 0.0, z: float = 0.0) -> Array:
    """Rotation matrix (3, 3) for intrinsic angles in radians, applied as Rz @ Ry @ Rx."""
    cx, sx, cy, sy, cz, sz = np.cos(x), np.sin(x), np.cos(y), np.sin(y), np.cos(z), np.sin(z)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


class Node:
    """A solid: ``eval(p)`` with p (N, 3) returns (distance (N,), material (N,) int8)."""

    def eval(self, p: Array) -> tuple[Array, Array]:
        raise NotImplementedError

    def sdf(self, p: Array) -> Array:
        """Signed distance only, p (N, 3) -> (N,) float32."""
        return self.eval(p)[0]


@dataclass
class Primitive(Node):
    """Base for placed primitives: subclasses implement ``local(q)`` on local coordinates q (N, 3)."""

    material: int = 0
    t: Array = field(default_factory=lambda: np.zeros(3))
    R: Array | None = None

    def eval(self, p: Array) -> tuple[Array, Array]:
        q = p - np.asarray(self.t, dtype=p.dtype)
        if self.R is not None:
            q = q @ np.asarray(self.R, dtype=p.dtype)  # row-vector form of R^T q
        d = self.local(q).astype(np.float32, copy=False)
        return d, np.full(d.shape, self.material, dtype=np.int8)

    def local(self, q: Array) -> Array:
        raise NotImplementedError


def _length(v: Array) -> Array:
    return np.sqrt(np.einsum("...i,...i->...", v, v))


@dataclass
class Sphere(Primitive):
    r: float = 0.5

    def local(self, q):
        return _length(q) - self.r


@dataclass
class Box(Primitive):
    """Axis-aligned box with half extents ``b`` (3,) and corner radius ``r`` (0 = sharp).

    The rounding is inside the half extents, so the outer size is always 2b.
    """

    b: tuple = (0.5, 0.5, 0.5)
    r: float = 0.0

    def local(self, q):
        b = np.asarray(self.b, dtype=q.dtype)
        r = min(self.r, float(b.min()) * 0.999)
        d = np.abs(q) - (b - r)
        outside = _length(np.maximum(d, 0.0))
        inside = np.minimum(d.max(axis=1), 0.0)
        return outside + inside - r


@dataclass
class Cylinder(Primitive):
    """Capped cylinder along local y: radius ``r``, half height ``h``."""

    r: float = 0.5
    h: float = 0.5

    def local(self, q):
        dx = np.sqrt(q[:, 0] ** 2 + q[:, 2] ** 2) - self.r
        dy = np.abs(q[:, 1]) - self.h
        outside = np.sqrt(np.maximum(dx, 0) ** 2 + np.maximum(dy, 0) ** 2)
        return outside + np.minimum(np.maximum(dx, dy), 0.0)


@dataclass
class Cone(Primitive):
    """Capped cone (frustum) along local y: radius ``r1`` at y = -h, ``r2`` at y = +h."""

    r1: float = 0.5
    r2: float = 0.2
    h: float = 0.5

    def local(self, q):
        qx = np.sqrt(q[:, 0] ** 2 + q[:, 2] ** 2)
        qy = q[:, 1]
        k1 = np.array([self.r2, self.h])
        k2 = np.array([self.r2 - self.r1, 2.0 * self.h])
        rr = np.where(qy < 0.0, self.r1, self.r2)
        ca_x = qx - np.minimum(qx, rr)
        ca_y = np.abs(qy) - self.h
        tt = np.clip(((k1[0] - qx) * k2[0] + (k1[1] - qy) * k2[1]) / (k2 @ k2), 0.0, 1.0)
        cb_x = qx - k1[0] + k2[0] * tt
        cb_y = qy - k1[1] + k2[1] * tt
        s = np.where((cb_x < 0.0) & (ca_y < 0.0), -1.0, 1.0)
        return s * np.sqrt(np.minimum(ca_x**2 + ca_y**2, cb_x**2 + cb_y**2))


@dataclass
class Capsule(Primitive):
    """Segment from ``a`` (3,) to ``b`` (3,) (local frame) swept by radius ``r``."""

    a: tuple = (0.0, -0.5, 0.0)
    b: tuple = (0.0, 0.5, 0.0)
    r: float = 0.1

    def local(self, q):
        a = np.asarray(self.a, dtype=q.dtype)
        ba = np.asarray(self.b, dtype=q.dtype) - a
        pa = q - a
        h = np.clip(pa @ ba / (ba @ ba), 0.0, 1.0)
        return _length(pa - h[:, None] * ba) - self.r


@dataclass
class Torus(Primitive):
    """Torus in the local xz plane: ring radius ``R0``, tube radius ``r``."""

    R0: float = 0.5
    r: float = 0.1

    def local(self, q):
        ring = np.sqrt(q[:, 0] ** 2 + q[:, 2] ** 2) - self.R0
        return np.sqrt(ring**2 + q[:, 1] ** 2) - self.r


@dataclass
class Ellipsoid(Primitive):
    """Ellipsoid with semi-axes ``radii`` (3,); the value is a bound, the zero set exact."""

    radii: tuple = (0.5, 0.3, 0.3)

    def local(self, q):
        r = np.asarray(self.radii, dtype=q.dtype)
        k0 = _length(q / r)
        k1 = _length(q / (r * r))
        safe = k1 > 1e-12
        # At the centre the bound is 0/0; the true value there is -min(radii).
        return np.where(safe, k0 * (k0 - 1.0) / np.where(safe, k1, 1.0), -float(r.min()))


@dataclass
class Union(Node):
    """Union of children; ``k`` > 0 blends them with a polynomial smooth minimum of width k."""

    children: list
    k: float = 0.0

    def eval(self, p):
        d, m = self.children[0].eval(p)
        for child in self.children[1:]:
            d2, m2 = child.eval(p)
            m = np.where(d2 < d, m2, m)
            if self.k > 0:
                h = np.clip(0.5 + 0.5 * (d2 - d) / self.k, 0.0, 1.0)
                d = d2 + (d - d2) * h - self.k * h * (1.0 - h)
            else:
                d = np.minimum(d, d2)
        return d.astype(np.float32, copy=False), m


@dataclass
class Subtract(Node):
    """``base`` minus ``cutter``; ``k`` > 0 rounds the cut edge. The material is the base's."""

    base: Node
    cutter: Node
    k: float = 0.0

    def eval(self, p):
        d, m = self.base.eval(p)
        c = -self.cutter.sdf(p)
        if self.k > 0:
            # Polynomial smooth maximum of d and c, width k.
            h = np.clip(0.5 + 0.5 * (d - c) / self.k, 0.0, 1.0)
            d = c + (d - c) * h + self.k * h * (1.0 - h)
        else:
            d = np.maximum(d, c)
        return d.astype(np.float32, copy=False), m
