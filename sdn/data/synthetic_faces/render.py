"""Render a posed synthetic face: analytic ray casting of ellipsoids, deferred shading.

Camera: orthographic, looking down -Z; the camera frame has X to the image's
right, Y up and Z towards the viewer. The image side covers ``View.span`` camera
units; pixel (col j, row i) is centred at (j + 0.5, i + 0.5) in pixel coordinates
(u right, v down), which is also the convention of the landmark and box files.

The head frame (see :mod:`.face_model`) is posed by ``View.head_rotation`` about
``View.head_centre``; the neck and shoulders live in a body frame that follows the
head's yaw and roll only partly. Every surface is an ellipsoid, hit analytically per
sub-pixel ray. The skin ellipsoids (cranium, jaw, nose bridge and tip, alae) form a
smooth union: their depths are combined by a soft maximum and their normals
blended, so the nose and the jaw merge into the face without creases. Hair and
hats are ellipsoidal shells cut by a hairline; glasses are a frame in a plane in
front of the eyes with tinted lenses. Eyes, brows, lips, nostrils, facial hair,
moles and shading details are painted on the skin as functions of the head-frame
position of each hit, so they foreshorten correctly with pose.

Shading: wrapped Lambertian key light, a hemispherical ambient, a weak fill from
the opposite side and a Blinn-Phong highlight; the image is rendered at
``supersample_factor`` times the output resolution and box-filtered down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .face_model import (
    CHIN_MARGIN,
    EYE_COLOURS,
    HAIR_COLOURS,
    HEAD_TOP,
    Ellipsoid,
    Identity,
    Layout,
    Variation,
    face_outline,
    head_layout,
    pose_rotation,
)

SUPERSAMPLE_PX = 192  # render at least this many sub-pixels per side (and at least 2x)
SKIN_BLEND = 0.03  # depth scale (head units) of the skin's smooth union
BODY_FOLLOW = 0.35  # fraction of the head's yaw and roll that the shoulders follow
GLASSES_HALF = (0.175, 0.12)  # half width, half height of a lens rim (head units)

# Materials of the deferred-shading buffer.
BACKGROUND, SKIN, EAR, NECK, HAIR, HAIR_INNER, CLOTH, HAT, FRAME = range(9)
WRAP = np.array([0, 0.3, 0.3, 0.3, 0.1, 0.1, 0.15, 0.15, 0.0], np.float32)
SPEC = np.array([0, 0.07, 0.04, 0.04, 0.14, 0.0, 0.02, 0.05, 0.35], np.float32)
SHININESS = np.array([1, 14, 10, 10, 24, 1, 4, 8, 40], np.float32)

# Hair styles (bald has none): thickness of the shell around the cranium, and the hairline
# height at the sides and the back (the front uses the identity's hairline; ``_hair`` adds
# a hanging part for long hair and a bun).
HAIR_SHAPES = {
    "buzz": dict(thickness=0.015, side=0.02, back=-0.35),
    "short": dict(thickness=0.07, side=0.05, back=-0.35),
    "fringe": dict(thickness=0.08, side=-0.05, back=-0.4),
    "side_part": dict(thickness=0.08, side=0.0, back=-0.4),
    "long": dict(thickness=0.09, side=-2.5, back=-2.5),
    "bun": dict(thickness=0.05, side=0.1, back=-0.3),
    "curly": dict(thickness=0.19, side=-0.15, back=-0.55),
}


def supersample_factor(resolution: int) -> int:
    """Sub-pixels per output pixel side: at least 2, and at least SUPERSAMPLE_PX per image side."""
    return max(2, -(-SUPERSAMPLE_PX // resolution))


@dataclass(frozen=True)
class View:
    """Pose and framing of one image: head-frame point p -> camera R p + c -> pixels."""

    head_rotation: np.ndarray  # (3, 3)
    body_rotation: np.ndarray  # (3, 3)
    head_centre: np.ndarray  # (3,) camera frame
    span: float  # camera units across the image
    resolution: int

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        """Pixel coordinates (N, 2) (u right, v down) of head-frame points (N, 3)."""
        cam = self.head_centre + points @ self.head_rotation.T
        u = (cam[:, 0] / self.span + 0.5) * self.resolution
        v = (0.5 - cam[:, 1] / self.span) * self.resolution
        return np.stack([u, v], axis=1)


def make_view(var: Variation, resolution: int) -> View:
    """Camera of one image: the head (chin to crown) fills ``head_fraction`` of the height."""
    chin = -1.05 - CHIN_MARGIN
    span = (HEAD_TOP - chin) / var.head_fraction
    centre = np.array([var.offset[0] * span, var.offset[1] * span - (HEAD_TOP + chin) / 2, 0.0])
    return View(
        head_rotation=pose_rotation(var.yaw, var.pitch, var.roll),
        body_rotation=pose_rotation(BODY_FOLLOW * var.yaw, 0.0, BODY_FOLLOW * var.roll),
        head_centre=centre,
        span=span,
        resolution=resolution,
    )


@dataclass(frozen=True)
class Annotation:
    landmarks: np.ndarray  # (5, 2) pixels: left eye, right eye, nose tip, left / right mouth corner
    box: tuple[int, int, int, int]  # loose face box X, Y, W, H (pixels, inside the image)


def annotate(ident: Identity, var: Variation, resolution: int) -> Annotation:
    """Landmarks and loose box of the image that :func:`render_face` draws (no rendering)."""
    view = make_view(var, resolution)
    lay = head_layout(ident, var)
    pts = view.to_pixels(face_outline(lay))
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = 0.06 * (hi - lo)
    lo = np.clip(np.floor(lo - pad), 0, resolution - 1).astype(int)
    hi = np.clip(np.ceil(hi + pad), lo + 1, resolution).astype(int)
    box = (int(lo[0]), int(lo[1]), int(hi[0] - lo[0]), int(hi[1] - lo[1]))
    return Annotation(landmarks=view.to_pixels(lay.landmarks), box=box)


class _Grid:
    """Sub-pixel ray positions and the deferred-shading buffers, all (S, S[, 3]) float32."""

    def __init__(self, view: View, size: int):
        self.size = size
        self.span = view.span
        centres = ((np.arange(size, dtype=np.float32) + 0.5) / size - 0.5) * view.span
        self.x = centres[None, :]  # (1, S) X of each column
        self.y = -centres[:, None]  # (S, 1) Y of each row
        self.z = np.full((size, size), -np.inf, np.float32)
        self.normal = np.zeros((size, size, 3), np.float32)
        self.local = np.zeros((size, size, 3), np.float32)
        self.mat = np.zeros((size, size), np.uint8)

    def window(self, cx: float, cy: float, ex: float, ey: float) -> tuple[slice, slice] | None:
        """Rows and columns whose rays may hit a shape centred at (cx, cy) with extents (ex, ey)."""
        s, span = self.size, self.span
        j0 = max(0, int(np.floor(((cx - ex) / span + 0.5) * s - 0.5)))
        j1 = min(s, int(np.ceil(((cx + ex) / span + 0.5) * s - 0.5)) + 1)
        i0 = max(0, int(np.floor((0.5 - (cy + ey) / span) * s - 0.5)))
        i1 = min(s, int(np.ceil((0.5 - (cy - ey) / span) * s - 0.5)) + 1)
        if j0 >= j1 or i0 >= i1:
            return None
        return slice(i0, i1), slice(j0, j1)

    def put(self, win, z, normal, local, mat: int) -> None:
        """Z-buffer write of a surface over window ``win``: z (h, w), -inf where absent."""
        zb = self.z[win]
        front = z > zb
        zb[front] = z[front]
        self.normal[win][front] = normal[front]
        self.local[win][front] = local[front]
        self.mat[win][front] = mat


@dataclass
class _Hits:
    """Ray hits of one ellipsoid over a window: depth z (h, w) (-inf: none), normals (h, w, 3),
    frame-local points (h, w, 3), and the same for the far side when asked."""

    win: tuple[slice, slice]
    z: np.ndarray
    normal: np.ndarray
    local: np.ndarray
    z_back: np.ndarray | None = None
    normal_back: np.ndarray | None = None
    local_back: np.ndarray | None = None


def _ellipsoid_hits(
    grid: _Grid, e: Ellipsoid, rot: np.ndarray, origin: np.ndarray, both: bool = False
) -> _Hits | None:
    """Intersect the rays with ellipsoid ``e`` given in a frame posed by (rot, origin)."""
    a = rot @ e.rotation @ np.diag(e.radii)  # unit ball -> camera offsets
    c = origin + rot @ e.centre
    win = grid.window(c[0], c[1], float(np.linalg.norm(a[0])), float(np.linalg.norm(a[1])))
    if win is None:
        return None
    m = np.linalg.inv(a).astype(np.float32)  # camera offsets -> unit ball
    dx = grid.x[:, win[1]] - np.float32(c[0])
    dy = grid.y[win[0], :] - np.float32(c[1])
    dz = np.float32(-c[2])
    q0 = [m[k, 0] * dx + m[k, 1] * dy + m[k, 2] * dz for k in range(3)]  # each (h, w)
    md = m[:, 2]
    qa = float(md @ md)
    qb = q0[0] * md[0] + q0[1] * md[1] + q0[2] * md[2]
    qc = q0[0] * q0[0] + q0[1] * q0[1] + q0[2] * q0[2] - 1
    disc = qb * qb - qa * qc
    hit = disc > 0
    if not hit.any():
        return None
    root = np.sqrt(np.where(hit, disc, 0))
    to_local = rot.T.astype(np.float32)
    rel_xy = np.stack(np.broadcast_arrays(dx, dy), axis=-1)  # (h, w, 2)

    def side(z):
        q = np.stack([q0[k] + z * md[k] for k in range(3)], axis=-1)
        n = q @ m  # gradient direction M^T q, (h, w, 3)
        n /= np.linalg.norm(n, axis=-1, keepdims=True) + 1e-12
        p = np.concatenate([rel_xy, (z + dz)[..., None]], axis=-1) @ to_local.T
        p += e.centre.astype(np.float32)  # frame coordinates of the hit: rot^T (hit - origin)
        return np.where(hit, z, -np.inf).astype(np.float32), n, p

    z1, n1, p1 = side((-qb + root) / qa)
    out = _Hits(win, z1, n1, p1)
    if both:
        out.z_back, out.normal_back, out.local_back = side((-qb - root) / qa)
    return out


def _smooth_union(hits: list[_Hits]) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """Soft-max depth (h, w) and blended normals (h, w, 3) of several surfaces over the union
    of their windows (returned first)."""
    r0 = min(h.win[0].start for h in hits)
    c0 = min(h.win[1].start for h in hits)
    shape = (max(h.win[0].stop for h in hits) - r0, max(h.win[1].stop for h in hits) - c0)
    inner = [
        (slice(h.win[0].start - r0, h.win[0].stop - r0), slice(h.win[1].start - c0, h.win[1].stop - c0))
        for h in hits
    ]
    zmax = np.full(shape, -np.inf, np.float32)
    for h, w in zip(hits, inner, strict=True):
        np.maximum(zmax[w], h.z, out=zmax[w])
    total = np.zeros(shape, np.float32)
    normal = np.zeros((*shape, 3), np.float32)
    for h, w in zip(hits, inner, strict=True):
        zm = zmax[w]  # finite wherever h.z is
        weight = np.exp((h.z - np.where(np.isfinite(zm), zm, 0)) / SKIN_BLEND)
        total[w] += weight
        normal[w] += weight[..., None] * h.normal
    z = np.where(total > 0, zmax + SKIN_BLEND * np.log(np.maximum(total, 1e-30)), -np.inf)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True) + 1e-12
    win = (slice(r0, r0 + shape[0]), slice(c0, c0 + shape[1]))
    return win, z.astype(np.float32), normal


def _hairline(style: str, ident: Identity, lay: Layout, p: np.ndarray) -> np.ndarray:
    """Boolean mask (...) of shell points p (..., 3) that carry hair."""
    shape = HAIR_SHAPES[style]
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    phi = np.degrees(np.abs(np.arctan2(x, z - lay.cranium.centre[2])))
    front = np.full_like(y, ident.hairline)
    if style == "fringe":
        front[:] = lay.eyes[0, 1] + lay.brow_y + 0.1
    elif style == "side_part":
        front = ident.hairline - 0.12 * np.tanh(6 * (x + 0.2))
    to_side = np.clip((phi - 38) / 34, 0, 1)
    to_back = np.clip((phi - 80) / 40, 0, 1)
    line = front + (shape["side"] - front) * to_side
    line = line + (shape["back"] - shape["side"]) * to_back
    return y > line


def _noise_texture(seed: int) -> np.ndarray:
    """A (64, 64) float32 tileable value-noise texture in [0, 1] (two octaves)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((16, 16)).astype(np.float32)
    fine = rng.random((64, 64)).astype(np.float32)
    up = np.kron(coarse, np.ones((4, 4), np.float32))
    return 0.5 * up + 0.5 * fine


def _lookup(tex: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    n = tex.shape[0]
    return tex[np.floor(v).astype(np.int64) % n, np.floor(u).astype(np.int64) % n]


def _mix(base: np.ndarray, colour, alpha: np.ndarray) -> np.ndarray:
    """base (N, 3) blended towards colour ((3,) or (N, 3)) by alpha (N,)."""
    return base + alpha[:, None] * (np.asarray(colour, np.float32) - base)


class _Painter:
    """Albedo of skin hits from their head-frame positions; edges antialiased over ``aa`` units."""

    def __init__(self, ident: Identity, var: Variation, lay: Layout, aa: float, tex: np.ndarray):
        self.ident, self.var, self.lay, self.aa, self.tex = ident, var, lay, aa, tex

    def soft(self, d: np.ndarray) -> np.ndarray:
        """1 inside (d > 0), 0 outside, a linear ramp of width ``aa`` across the edge."""
        return np.clip(d / self.aa + 0.5, 0, 1)

    def skin(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Albedo (N, 3) and gloss (N,) of skin points p (N, 3)."""
        ident, var, lay = self.ident, self.var, self.lay
        x, y = p[:, 0], p[:, 1]
        front = p[:, 2] > 0
        col = np.tile(np.asarray(ident.skin, np.float32), (len(p), 1))
        col *= (0.97 + 0.06 * _lookup(self.tex, x * 40, y * 40))[:, None]
        gloss = np.ones(len(p), np.float32)
        # Blush on the cheeks and a redder nose tip.
        for s in (-1, 1):
            blush = np.exp(-(((x - s * 0.36) / 0.16) ** 2) - ((y + 0.22) / 0.12) ** 2)
            col *= 1 + blush[:, None] * np.array([0.04, -0.03, -0.03], np.float32)
        tip = np.exp(-((x / 0.08) ** 2) - ((y - lay.nose_tip[1]) / 0.08) ** 2)
        col *= 1 + tip[:, None] * np.array([0.03, -0.04, -0.04], np.float32)
        col *= self._shadows(x, y)[:, None]
        if ident.facial_hair != "none":
            col = self._facial_hair(col, x, y, front)
        if ident.mole is not None:
            d = np.hypot(x - ident.mole[0], y - ident.mole[1])
            col = _mix(col, np.asarray(ident.skin) * 0.45, self.soft(0.018 - d) * front)
        col, g = self._mouth(col, x, y, front)
        gloss = np.maximum(gloss, g)
        for k, s in enumerate((-1, 1)):
            col = self._brow(col, x, y, front, k, s)
            col, g = self._eye(col, x, y, front, k, s)
            gloss = np.maximum(gloss, g)
        if var.glasses:
            col = self._temples(col, x, y, p[:, 2])
        return col, gloss

    def _shadows(self, x, y) -> np.ndarray:
        """Multiplicative shading (N,) painted where real faces are occluded: eye sockets,
        under the nose, nasolabial folds, mouth corners; and a cap's brim shadow."""
        lay, var = self.lay, self.var
        f = np.ones_like(x)
        for ex, ey in lay.eyes:
            f -= 0.25 * np.exp(-(((x - ex) / 0.2) ** 2) - ((y - ey - 0.02) / 0.11) ** 2)
        nb = lay.nose_base_y
        f -= 0.22 * np.exp(-((x / 0.11) ** 2) - ((y - nb + 0.035) / 0.035) ** 2)
        f -= 0.12 * np.exp(-((x / 0.3) ** 2) - ((y - lay.mouth_y + 0.13) / 0.03) ** 2)  # under the lower lip
        mh = lay.mouth_half_width
        span = nb - 0.02 - (lay.mouth_y - 0.08)
        t = np.clip((nb - 0.02 - y) / span, 0, 1)
        fold_x = 0.15 + (mh + 0.06 - 0.15) * t**0.8
        strength = (0.07 + 0.12 * var.smile) * np.sin(np.pi * t)
        f -= strength * np.exp(-(((np.abs(x) - fold_x) / 0.025) ** 2))
        corner_y = lay.landmarks[3, 1]
        f -= 0.25 * np.exp(-(((np.abs(x) - mh) / 0.025) ** 2) - ((y - corner_y) / 0.025) ** 2)
        if var.hat == "cap":
            f *= 1 - 0.35 * np.clip((y - lay.eyes[0, 1] + 0.05) / 0.2, 0, 1)
        return np.clip(f, 0.3, 1)

    def _facial_hair(self, col, x, y, front) -> np.ndarray:
        ident, lay = self.ident, self.lay
        mh = lay.mouth_half_width
        hair = np.asarray(HAIR_COLOURS[ident.hair_colour], np.float32) * 0.85
        mous = self.soft(np.minimum(lay.nose_base_y - 0.035 - y, y - (lay.mouth_y + 0.02)))
        mous = mous * self.soft(mh + 0.03 - np.abs(x))
        if ident.facial_hair == "moustache":
            region, alpha = mous, 0.9
        else:
            top = lay.mouth_y - 0.085 + 0.9 * np.maximum(np.abs(x) - mh + 0.05, 0) ** 1.3
            region = np.maximum(mous, self.soft(top - y))
            alpha = 0.85 if ident.facial_hair == "beard" else 0.35
        grain = _lookup(self.tex, x * 160, y * 160)
        a = region * front * alpha * (0.55 + 0.45 * grain)
        return _mix(col, hair, a)

    def _mouth(self, col, x, y, front):
        ident, var, lay = self.ident, self.var, self.lay
        mh = lay.mouth_half_width
        u = np.clip(x / mh, -1, 1)
        ring = 1 - u * u
        line = lay.mouth_y + 0.045 * var.smile * u * u - 0.01 * var.mouth_open
        gap = var.mouth_open
        up_in = line + 0.03 * gap * np.sqrt(ring)
        lo_in = line - 0.1 * gap * np.sqrt(ring)
        bow = 1 - 0.3 * np.exp(-((u / 0.16) ** 2))
        lf = ident.lip_fullness
        up_out = up_in + 0.042 * lf * ring**0.55 * bow
        lo_out = lo_in - 0.055 * lf * ring**0.6
        inside = self.soft(mh - np.abs(x)) * front
        lip_col = np.asarray(ident.lip_colour, np.float32)
        upper = self.soft(np.minimum(y - up_in, up_out - y)) * inside
        lower = self.soft(np.minimum(lo_in - y, y - lo_out)) * inside
        col = _mix(col, lip_col * 0.92, upper)
        col = _mix(col, lip_col * 1.08, lower)
        gloss = 1 + 1.5 * lower
        if gap > 0:
            mouth = self.soft(np.minimum(up_in - y, y - lo_in)) * inside
            teeth = self.soft(y - (up_in - 0.035)) * self.soft(0.8 * mh - np.abs(x))
            inner = np.where(teeth[:, None] > 0, [0.86, 0.83, 0.76], [0.16, 0.05, 0.05]).astype(np.float32)
            col = _mix(col, inner, mouth)
        seam = self.soft(0.007 - np.abs(y - line)) * inside * (1 - 0.5 * gap)
        return _mix(col, lip_col * 0.35, seam), gloss

    def _brow(self, col, x, y, front, k: int, s: int) -> np.ndarray:
        ident, lay = self.ident, self.lay
        ex, ey = lay.eyes[k]
        half = 0.17
        t = s * (x - (ex + s * 0.03)) / half  # -1 at the inner end, +1 at the outer end
        centre = ey + lay.brow_y + 0.035 * ident.brow_arch * (1 - ((t - 0.25) / 1.25) ** 2) - 0.015 * t
        thick = 0.025 * ident.brow_thickness * (1 - 0.35 * t)
        a = self.soft(np.minimum(thick - np.abs(y - centre), (1 - np.abs(t)) * half)) * front
        grain = _lookup(self.tex, x * 200, y * 60)
        return _mix(col, ident.brow_colour, a * (0.85 + 0.15 * grain))

    def _eye(self, col, x, y, front, k: int, s: int):
        ident, var, lay = self.ident, self.var, self.lay
        ex, ey = lay.eyes[k]
        ew, eh = lay.eye_half
        u = x - ex
        v = y - ey - ident.eye_tilt * u * s
        un = np.clip(u / ew, -1, 1)
        ring = 1 - un * un
        lower = -0.65 * eh * ring
        upper_open = eh * ring
        upper = lower + (1 - var.blink) * (upper_open - lower)
        opening = self.soft(np.minimum(upper - v, v - lower)) * self.soft(ew - np.abs(u)) * front
        sclera = np.array([0.93, 0.9, 0.86], np.float32) * (1 - 0.35 * un**4)[:, None]
        sclera *= (1 - 0.3 * self.soft(v - upper + 0.025))[:, None]
        r = np.hypot(u - var.gaze[0], v - var.gaze[1])
        ri = lay.iris_radius
        iris = np.asarray(EYE_COLOURS[ident.eye_colour], np.float32) * (1.25 - 0.6 * (r / ri) ** 2)[:, None]
        eye = _mix(sclera, iris, self.soft(ri - r))
        eye = _mix(eye, (0.02, 0.02, 0.02), self.soft(0.42 * ri - r))
        glint = np.hypot(u - var.gaze[0] + 0.3 * ri, v - var.gaze[1] - 0.35 * ri)
        eye = _mix(eye, (1.0, 1.0, 1.0), self.soft(0.16 * ri - glint))
        col = col + opening[:, None] * (eye - col)
        lash_w = 0.02 if ident.gender == "m" else 0.026
        along = self.soft(1.08 * ew - np.abs(u)) * front
        lash = self.soft(lash_w / 2 - np.abs(v - upper - lash_w * 0.3)) * along
        col = _mix(col, (0.05, 0.04, 0.04), lash)
        col = _mix(col, np.asarray(ident.skin) * 0.6, 0.4 * self.soft(0.006 - np.abs(v - lower)) * along)
        crease = self.soft(0.008 - np.abs(v - upper_open - 0.04)) * along * (1 - var.blink)
        col = _mix(col, np.asarray(ident.skin) * 0.65, 0.35 * crease)
        return col, 1 + 3 * opening

    def _temples(self, col, x, y, z) -> np.ndarray:
        lay = self.lay
        outer = lay.eyes[1, 0] + GLASSES_HALF[0]
        a = self.soft(0.012 - np.abs(y - lay.eyes[0, 1] - 0.05)) * self.soft(np.abs(x) - outer)
        return _mix(col, self.var.glasses_colour, a * (z > -0.25))


def _glasses(grid: _Grid, lay: Layout, rot: np.ndarray, origin: np.ndarray):
    """Frame hits written to the buffers; returns (window, lens depth (h, w)) for the lens tint."""
    zg = lay.face_front_z + 0.11
    hx, hy = GLASSES_HALF
    (lx, ey), (rx, _) = lay.eyes
    corners = np.array([[x, y, zg] for x in (lx - hx, rx + hx) for y in (ey - hy, ey + hy)])
    cam = origin + corners @ rot.T
    lo, hi = cam.min(axis=0), cam.max(axis=0)
    win = grid.window((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (hi[0] - lo[0]) / 2, (hi[1] - lo[1]) / 2)
    if win is None:
        return None
    r = rot.astype(np.float32)
    dx = grid.x[:, win[1]] - np.float32(origin[0])
    dy = grid.y[win[0], :] - np.float32(origin[1])
    # The plane z_local = zg: r[:, 2] . (p - origin) = zg, solved for the camera depth.
    dz = (zg - r[0, 2] * dx - r[1, 2] * dy) / r[2, 2]
    z = dz + np.float32(origin[2])
    px = r[0, 0] * dx + r[1, 0] * dy + r[2, 0] * dz
    py = r[0, 1] * dx + r[1, 1] * dy + r[2, 1] * dz
    rim = np.zeros(z.shape, bool)
    lens = np.zeros(z.shape, bool)
    corner = 0.06
    for ex in (lx, rx):
        qx = np.abs(px - ex) - (hx - corner)
        qy = np.abs(py - ey) - (hy - corner)
        sdf = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) - corner
        rim |= np.abs(sdf) < 0.01
        lens |= sdf < 0
    rim |= (np.abs(py - ey - 0.05) < 0.01) & (np.abs(px) < rx - hx + 0.01)
    normal = np.broadcast_to(r[:, 2], (*z.shape, 3))
    local = np.stack([px, py, np.full_like(px, zg)], axis=-1)
    grid.put(win, np.where(rim, z, -np.inf), normal, local, FRAME)
    return win, np.where(lens & ~rim, z, -np.inf)


def _background(var: Variation, rng: np.random.Generator, size: int) -> np.ndarray:
    """Background colours (size, size, 3): solid, linear gradient, or a gradient with blurred
    clutter (out of focus, so drawn at the output resolution)."""
    c0, c1 = (np.asarray(c, np.float32) for c in var.background_colours)
    centres = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    x, y = centres[None, :], -centres[:, None]  # [-0.5, 0.5], y up
    if var.background == "solid":
        return np.broadcast_to(c0, (size, size, 3)).copy()
    t = np.clip(x * np.cos(var.background_angle) + y * np.sin(var.background_angle) + 0.5, 0, 1)
    img = c0 + t[..., None] * (c1 - c0)
    if var.background == "clutter":
        for _ in range(int(rng.integers(4, 10))):
            cx, cy = rng.uniform(-0.6, 0.6, 2)
            rx, ry = rng.uniform(0.05, 0.35, 2)
            blur = rng.uniform(0.01, 0.08)
            colour = rng.uniform(0.05, 0.95, 3).astype(np.float32)
            if rng.random() < 0.5:
                d = 1 - np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
                d = d * min(rx, ry)
            else:
                d = np.minimum(rx - np.abs(x - cx), ry - np.abs(y - cy))
            a = np.clip(d / blur + 0.5, 0, 1) * rng.uniform(0.5, 1.0)
            img = img + a[..., None] * (colour - img)
    return img.astype(np.float32)


def render_face(ident: Identity, var: Variation, resolution: int) -> np.ndarray:
    """The image (resolution, resolution, 3) uint8 of ``ident`` under ``var``."""
    view = make_view(var, resolution)
    lay = head_layout(ident, var)
    ss = supersample_factor(resolution)
    grid = _Grid(view, resolution * ss)
    rng = np.random.default_rng(var.detail_seed)
    tex = _noise_texture(ident.texture_seed)
    head_r, body_r, origin = view.head_rotation, view.body_rotation, view.head_centre

    skin = [_ellipsoid_hits(grid, e, head_r, origin) for e in (lay.cranium, lay.jaw, *lay.nose, *lay.alae)]
    win, z, normal = _smooth_union([h for h in skin if h is not None])
    depth = np.where(np.isfinite(z), z, 0)
    rel = np.stack(np.broadcast_arrays(grid.x[:, win[1]], grid.y[win[0], :], depth), axis=-1) - origin
    grid.put(win, z, normal, (rel @ head_r).astype(np.float32), SKIN)
    for e in lay.ears:
        h = _ellipsoid_hits(grid, e, head_r, origin)
        if h is not None:
            grid.put(h.win, h.z, h.normal, h.local, EAR)
    neck = Ellipsoid(np.array([0, -0.95, -0.18]), np.array([0.4, 0.75, 0.38]), np.eye(3))
    torso = Ellipsoid(np.array([0, -2.25, -0.3]), np.array([1.7, 0.85, 0.62]), np.eye(3))
    for e, mat in ((neck, NECK), (torso, CLOTH)):
        h = _ellipsoid_hits(grid, e, body_r, origin)
        if h is not None:
            grid.put(h.win, h.z, h.normal, h.local, mat)
    _hair(grid, ident, var, lay, head_r, origin)
    lens = _glasses(grid, lay, head_r, origin) if var.glasses else None

    background = _background(var, rng, resolution)
    img = _shade(grid, ident, var, lay, tex, np.repeat(np.repeat(background, ss, axis=0), ss, axis=1))
    if lens is not None:
        lwin, lz = lens
        over = lz > grid.z[lwin]
        sub = img[lwin]
        sub[over] = 0.9 * sub[over] + 0.1 * np.asarray(var.glasses_colour, np.float32) + 0.03
    img = img.reshape(resolution, ss, resolution, ss, 3).mean(axis=(1, 3))
    # The camera exposes for the face: darker skin gets a longer exposure (up to 1.8x).
    luminance = float(np.dot(ident.skin, (0.3, 0.59, 0.11)))
    exposure = var.exposure * float(np.clip((0.5 / luminance) ** 0.5, 1.0, 1.8))
    img = img * exposure + rng.normal(0, var.noise, img.shape).astype(np.float32)
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)


def _hair(grid: _Grid, ident: Identity, var: Variation, lay: Layout, rot, origin) -> None:
    """Hair shell (front side, and its inner back side where the front is cut away), extra
    pieces of the style, and the hat."""
    cr = lay.cranium
    style = ident.hair_style
    if style != "bald":
        shape = HAIR_SHAPES[style]
        shell = Ellipsoid(cr.centre + np.array([0, 0.02, -0.02]), cr.radii + shape["thickness"], cr.rotation)
        h = _ellipsoid_hits(grid, shell, rot, origin, both=True)
        if h is not None:
            on_front = _hairline(style, ident, lay, h.local)
            grid.put(h.win, np.where(on_front, h.z, -np.inf), h.normal, h.local, HAIR)
            on_back = _hairline(style, ident, lay, h.local_back) & ~on_front & (h.local_back[..., 1] > -0.55)
            grid.put(h.win, np.where(on_back, h.z_back, -np.inf), -h.normal_back, h.local_back, HAIR_INNER)
        extras = []
        if style == "long":
            extras.append(
                (Ellipsoid(np.array([0, -0.75, -0.42]), np.array([0.85, 0.9, 0.38]), np.eye(3)), -0.05)
            )
        elif style == "bun":
            extras.append((Ellipsoid(np.array([0, 0.85, -0.6]), np.full(3, 0.27), np.eye(3)), 9.0))
        for e, max_z in extras:
            h = _ellipsoid_hits(grid, e, rot, origin)
            if h is not None:
                grid.put(h.win, np.where(h.local[..., 2] < max_z, h.z, -np.inf), h.normal, h.local, HAIR)
    if var.hat == "none":
        return
    thick = 0.25 if style == "curly" else 0.17
    hat = Ellipsoid(cr.centre + np.array([0, 0.03, -0.02]), cr.radii + thick, cr.rotation)
    h = _ellipsoid_hits(grid, hat, rot, origin)
    if h is not None:
        cut = ident.hairline - 0.04 if var.hat == "beanie" else ident.hairline + 0.02
        grid.put(h.win, np.where(h.local[..., 1] > cut, h.z, -np.inf), h.normal, h.local, HAT)
    if var.hat == "cap":
        brim = Ellipsoid(np.array([0, ident.hairline + 0.03, 0.72]), np.array([0.62, 0.03, 0.5]), np.eye(3))
        h = _ellipsoid_hits(grid, brim, rot, origin)
        if h is not None:
            grid.put(h.win, np.where(h.local[..., 2] > 0.45, h.z, -np.inf), h.normal, h.local, HAT)


def _shade(grid: _Grid, ident: Identity, var: Variation, lay: Layout, tex, background) -> np.ndarray:
    """Albedo per material from the buffers' frame-local points, then lighting; (S, S, 3)."""
    mat, p = grid.mat, grid.local
    albedo = np.zeros((grid.size, grid.size, 3), np.float32)
    gloss = np.ones((grid.size, grid.size), np.float32)
    skin = np.asarray(ident.skin, np.float32)
    hair = np.asarray(HAIR_COLOURS[ident.hair_colour], np.float32)
    painter = _Painter(ident, var, lay, aa=1.2 * grid.span / grid.size, tex=tex)
    sel = mat == SKIN
    albedo[sel], gloss[sel] = painter.skin(p[sel])
    sel = mat == EAR
    if sel.any():
        q = p[sel]
        concha = np.exp(-((q[:, 1] / 0.12) ** 2) - ((np.abs(q[:, 0]) - lay.ears[1].centre[0]) / 0.05) ** 2)
        albedo[sel] = skin * np.array([0.98, 0.92, 0.92], np.float32) * (1 - 0.3 * concha)[:, None]
    sel = mat == NECK
    if sel.any():
        under_chin = np.clip((p[sel][:, 1] + 1.1) / 0.35, 0, 1)
        albedo[sel] = skin * 0.92 * (1 - 0.5 * under_chin)[:, None]
    for m in (HAIR, HAIR_INNER):
        sel = mat == m
        if sel.any():
            q = p[sel]
            if ident.hair_style == "curly":
                grain = _lookup(tex, q[:, 0] * 30, q[:, 1] * 30)
            else:
                grain = _lookup(tex, np.arctan2(q[:, 0], q[:, 2]) * 45, q[:, 1] * 4)
            c = hair * (0.65 + 0.7 * grain)[:, None]
            if ident.hair_style == "buzz":
                c = 0.55 * c + 0.45 * skin
            albedo[sel] = c * (0.55 if m == HAIR_INNER else 1.0)
    sel = mat == CLOTH
    if sel.any():
        q = p[sel]
        collar = np.clip((q[:, 1] + 1.45) / 0.1, 0, 1)
        fold = 0.5 + 0.5 * np.sin(7 * q[:, 0] + 3 * np.sin(4 * q[:, 1]))
        albedo[sel] = (
            np.asarray(var.clothing, np.float32) * ((0.9 + 0.2 * fold) * (1 - 0.3 * collar))[:, None]
        )
    sel = mat == HAT
    if sel.any():
        band = (p[sel][:, 1] < ident.hairline + 0.12).astype(np.float32)
        albedo[sel] = np.asarray(var.hat_colour, np.float32) * (1 - 0.2 * band)[:, None]
    albedo[mat == FRAME] = var.glasses_colour

    az, el = np.radians(var.light_azimuth), np.radians(var.light_elevation)
    key = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)], np.float32)
    fill = np.array([-key[0], 0.2, 0.8], np.float32)
    fill /= np.linalg.norm(fill)
    half = key + np.array([0, 0, 1], np.float32)
    half /= np.linalg.norm(half)
    fg = mat != BACKGROUND
    n, m = grid.normal[fg], mat[fg]  # (N, 3), (N,)
    wrap = WRAP[m]
    diffuse = np.clip((n @ key + wrap) / (1 + wrap), 0, None)
    ambient = var.ambient * (0.8 + 0.2 * n[:, 1]) + 0.22 * np.clip(n @ fill, 0, None)
    spec = SPEC[m] * gloss[fg] * np.clip(n @ half, 0, None) ** SHININESS[m]
    light = np.asarray(var.light_colour, np.float32)
    img = background.astype(np.float32)
    img[fg] = albedo[fg] * (ambient[:, None] + (var.light_intensity * diffuse)[:, None] * light)
    img[fg] += spec[:, None] * light
    return img
