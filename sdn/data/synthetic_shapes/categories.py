"""Thirteen procedural shape families named and numbered like ShapeNet's 13 categories.

Each family is a function ``build(rng) -> (solid, params)``: a random draw of its
continuous parameters and discrete variants, turned into a signed-distance solid
(:mod:`.sdf`). ``params`` is plain data recorded beside each object. Units are
arbitrary: every object is normalised afterwards (bounding box centred, longest
edge 1), so only proportions matter. y is up; the front of an object faces +z
(vehicles and rifles point along +x).

Materials (colour slots of an object's palette): 0 main, 1 secondary,
2 accent, 3 dark (tyres, screens, drivers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .sdf import (
    Box,
    Capsule,
    Cone,
    Cylinder,
    Ellipsoid,
    Node,
    Sphere,
    Subtract,
    Torus,
    Union,
    rotation,
)

MAIN, SECOND, ACCENT, DARK = 0, 1, 2, 3


def _frame(direction, axis: int) -> np.ndarray:
    """Rotation (3, 3) whose column ``axis`` is ``direction`` and whose others stay level."""
    a = np.asarray(direction, dtype=float)
    a = a / np.linalg.norm(a)
    ref = np.array([0.0, 1.0, 0.0]) if abs(a[1]) < 0.95 else np.array([1.0, 0.0, 0.0])
    u = np.cross(ref, a)
    u /= np.linalg.norm(u)
    v = np.cross(a, u)
    cols = {2: (u, v, a), 1: (v, a, u), 0: (a, u, v)}[axis]
    return np.stack(cols, axis=1)


def beam(p0, p1, half_w: float, half_h: float, material: int = MAIN, r: float = 0.0) -> Box:
    """A box from point p0 to point p1 (3,) with half cross-section (half_w, half_h)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    half_len = np.linalg.norm(p1 - p0) / 2
    return Box(material=material, t=(p0 + p1) / 2, R=_frame(p1 - p0, 2), b=(half_w, half_h, half_len), r=r)


def rod(p0, p1, radius: float, material: int = MAIN) -> Cylinder:
    """A capped cylinder of ``radius`` from point p0 to point p1 (3,)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    half = np.linalg.norm(p1 - p0) / 2
    return Cylinder(material=material, t=(p0 + p1) / 2, R=_frame(p1 - p0, 1), r=radius, h=half)


def box(center, half, material: int = MAIN, r: float = 0.0, R=None) -> Box:
    return Box(material=material, t=np.asarray(center, float), R=R, b=tuple(half), r=r)


@dataclass(frozen=True)
class Category:
    synset: str
    name: str
    build: Callable[[np.random.Generator], tuple[Node, dict]]


class _Draw:
    """Records every random choice by name, so the object's parameters can be written out."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.params: dict = {}

    def u(self, name: str, lo: float, hi: float) -> float:
        value = float(self.rng.uniform(lo, hi))
        self.params[name] = round(value, 5)
        return value

    def pick(self, name: str, options):
        value = options[int(self.rng.integers(len(options)))]
        self.params[name] = value
        return value

    def flag(self, name: str, p: float = 0.5) -> bool:
        value = bool(self.rng.random() < p)
        self.params[name] = value
        return value


def _legs4(x: float, z: float, top: float, bottom: float, thick: float, kind: str, splay: float):
    """Four legs under the corners (±x, ±z) from height ``top`` down to ``bottom``."""
    parts = []
    for sx in (-1, 1):
        for sz in (-1, 1):
            p0 = (sx * x, top, sz * z)
            p1 = (sx * (x + splay), bottom, sz * (z + splay))
            if kind == "round":
                parts.append(rod(p0, p1, thick, SECOND))
            else:
                parts.append(beam(p0, p1, thick, thick, SECOND))
    return parts


# --------------------------------------------------------------------------------------
# The families
# --------------------------------------------------------------------------------------


def airplane(rng):
    d = _Draw(rng)
    length = d.u("fuselage_length", 1.6, 2.6)
    fr = d.u("fuselage_radius", 0.07, 0.15)
    span = d.u("wing_span", 1.3, 2.8)
    chord = d.u("wing_chord", 0.18, 0.45)
    sweep = np.radians(d.u("wing_sweep_deg", 0.0, 40.0))
    dihedral = np.radians(d.u("wing_dihedral_deg", -4.0, 10.0))
    wing_x = d.u("wing_position", -0.12, 0.18) * length
    mount = d.pick("wing_mount", ["low", "mid", "high"])
    tail = d.pick("tail", ["conventional", "t-tail", "v-tail"])
    engines = d.pick("engines", [0, 2, 4])
    shape = d.pick("fuselage_shape", ["capsule", "ellipsoid"])
    tail_scale = d.u("tail_scale", 0.25, 0.45)

    if shape == "capsule":
        body: Node = Capsule(a=(-length / 2 + fr, 0, 0), b=(length / 2 - fr, 0, 0), r=fr)
    else:
        body = Ellipsoid(radii=(length / 2, fr * 1.3, fr * 1.3))
    wy = {"low": -0.6 * fr, "mid": 0.0, "high": 0.7 * fr}[mount]
    thick = 0.018 + 0.05 * chord
    parts = [body]

    def wing(root, half_span, ch, sw, dih, side, th):
        direction = np.array([-np.sin(sw), np.sin(dih), side * np.cos(sw)])
        tip = np.asarray(root) + direction / np.linalg.norm(direction) * half_span
        return beam(root, tip, ch / 2, th, SECOND, r=th * 0.9)

    for side in (-1, 1):
        parts.append(wing((wing_x, wy, 0), span / 2, chord, sweep, dihedral, side, thick))
    if engines:
        er = d.u("engine_radius", 0.045, 0.085)
        stations = [0.35] if engines == 2 else [0.3, 0.62]
        for side in (-1, 1):
            for s in stations:
                z = side * s * span / 2
                x = wing_x - np.tan(sweep) * abs(z) + chord * 0.2
                y = wy + np.sin(dihedral) * abs(z) - thick - er
                parts.append(rod((x - 0.3, y, z), (x + 0.12, y, z), er, ACCENT))
    tail_x = -length / 2 + fr * 1.2
    ts = tail_scale * span / 2
    fin_h = ts * 0.9
    if tail in ("conventional", "t-tail"):
        parts.append(beam((tail_x + 0.05, fr * 0.5, 0), (tail_x - 0.12, fr + fin_h, 0), 0.12, 0.015, SECOND))
        hy = 0.0 if tail == "conventional" else fr + fin_h * 0.95
        for side in (-1, 1):
            parts.append(wing((tail_x, hy, 0), ts, chord * 0.6, sweep, 0.0, side, thick * 0.7))
    else:
        for side in (-1, 1):
            tip = (tail_x - 0.15, fr + fin_h * 0.8, side * ts * 0.7)
            parts.append(beam((tail_x + 0.05, fr * 0.4, 0), tip, 0.1, 0.015, SECOND))
    return Union(parts, k=0.02), d.params


def bench(rng):
    d = _Draw(rng)
    length = d.u("seat_length", 1.2, 2.2)
    depth = d.u("seat_depth", 0.3, 0.55)
    thick = d.u("seat_thickness", 0.03, 0.08)
    height = d.u("seat_height", 0.35, 0.5)
    leg_t = d.u("leg_thickness", 0.025, 0.07)
    planks = d.pick("seat_planks", [1, 3, 4, 5])
    legs = d.pick("legs", ["four", "slab", "a-frame"])
    back = d.pick("backrest", ["none", "slats", "solid"])
    parts = []
    gap = 0.015
    pw = (depth - gap * (planks - 1)) / planks
    for i in range(planks):
        z = -depth / 2 + pw / 2 + i * (pw + gap)
        parts.append(box((0, height - thick / 2, z), (length / 2, thick / 2, pw / 2)))
    inset = length / 2 - d.u("leg_inset", 0.05, 0.25)
    if legs == "four":
        parts += _legs4(inset, depth / 2 - leg_t, height - thick, 0.0, leg_t, "square", 0.0)
    elif legs == "slab":
        for sx in (-1, 1):
            parts.append(box((sx * inset, (height - thick) / 2, 0), (leg_t, (height - thick) / 2, depth / 2)))
    else:
        for sx in (-1, 1):
            for sz in (-1, 1):
                p0 = (sx * inset, height - thick, 0)
                parts.append(beam(p0, (sx * inset, 0, sz * depth * 0.55), leg_t, leg_t, SECOND))
    if back != "none":
        bh = d.u("back_height", 0.25, 0.5)
        tilt = np.radians(d.u("back_tilt_deg", 0.0, 20.0))
        base = np.array([0, height, -depth / 2 + 0.03])
        top = base + bh * np.array([0, np.cos(tilt), -np.sin(tilt)])
        if back == "solid":
            parts.append(Box(t=(base + top) / 2, R=rotation(x=-tilt), b=(length / 2, bh / 2, 0.025)))
        else:
            for frac in (0.45, 0.85):
                c = base + (top - base) * frac
                parts.append(Box(t=c, R=rotation(x=-tilt), b=(length / 2, bh * 0.12, 0.02)))
            for sx in (-1, 1):
                parts.append(
                    beam(
                        base + [sx * inset, -thick, 0],
                        top + [sx * inset, 0, 0],
                        0.025,
                        0.02,
                        SECOND,
                    )
                )
        if d.flag("armrests", 0.5):
            for sx in (-1, 1):
                x = sx * (length / 2 - 0.03)
                parts.append(box((x, height + 0.2, 0), (0.03, 0.02, depth / 2)))
                parts.append(
                    beam(
                        (x, height, depth / 2 - 0.05),
                        (x, height + 0.2, depth / 2 - 0.05),
                        0.02,
                        0.02,
                        SECOND,
                    )
                )
    return Union(parts, k=0.01), d.params


def cabinet(rng):
    d = _Draw(rng)
    w = d.u("width", 0.5, 1.4)
    h = d.u("height", 0.6, 1.9)
    dp = d.u("depth", 0.35, 0.6)
    over = d.u("top_overhang", 0.0, 0.05)
    round_r = d.u("corner_radius", 0.0, 0.03)
    base = d.pick("base", ["plinth", "legs", "none"])
    front = d.pick("front", ["doors", "drawers", "doors+drawers", "open-shelves"])
    y0 = {"plinth": 0.08, "legs": 0.15, "none": 0.0}[base]
    body: Node = box((0, y0 + h / 2, 0), (w / 2, h / 2, dp / 2), r=round_r)
    parts: list[Node] = []
    fz = dp / 2
    if front == "open-shelves":
        n = int(rng.integers(2, 5))
        d.params["shelves"] = n
        cut = box((0, y0 + h / 2, fz), (w / 2 - 0.03, h / 2 - 0.03, dp * 0.9), r=0.0)
        body = Subtract(body, cut)
        for i in range(1, n):
            parts.append(box((0, y0 + i * h / n, 0), (w / 2 - 0.02, 0.012, dp / 2 - 0.02), SECOND))
    else:
        drawers = {
            "doors": 0,
            "drawers": int(rng.integers(3, 6)),
            "doors+drawers": int(rng.integers(1, 3)),
        }[front]
        d.params["drawers"] = drawers
        doors = 0 if front == "drawers" else (1 if w < 0.8 else 2)
        d.params["doors"] = doors
        dh = (h * 0.3 / max(drawers, 1)) if front == "doors+drawers" else (h / max(drawers, 1))
        y = y0 + h
        for _ in range(drawers):
            parts.append(box((0, y - dh / 2, fz + 0.01), (w / 2 - 0.02, dh / 2 - 0.012, 0.012), SECOND))
            parts.append(rod((-0.06, y - dh / 2, fz + 0.02), (0.06, y - dh / 2, fz + 0.02), 0.012, ACCENT))
            y -= dh
        if doors:
            door_h = y - y0
            dw = w / doors
            for i in range(doors):
                x = -w / 2 + dw * (i + 0.5)
                parts.append(
                    box(
                        (x, y0 + door_h / 2, fz + 0.01),
                        (dw / 2 - 0.015, door_h / 2 - 0.015, 0.012),
                        SECOND,
                    )
                )
                hx = x + (dw * 0.35 if (doors == 1 or i == 0) else -dw * 0.35)
                parts.append(
                    rod(
                        (hx, y0 + door_h * 0.45, fz + 0.03),
                        (hx, y0 + door_h * 0.6, fz + 0.03),
                        0.012,
                        ACCENT,
                    )
                )
    parts.append(box((0, y0 + h + 0.015, 0), (w / 2 + over, 0.015, dp / 2 + over), ACCENT))
    if base == "plinth":
        parts.append(box((0, y0 / 2, 0), (w / 2 - 0.03, y0 / 2, dp / 2 - 0.03), DARK))
    elif base == "legs":
        parts += _legs4(w / 2 - 0.05, dp / 2 - 0.05, y0, 0.0, 0.02, "round", 0.02)
    return Union([body] + parts), d.params


def car(rng):
    d = _Draw(rng)
    kind = d.pick("body_type", ["sedan", "hatchback", "pickup", "van", "suv"])
    length = d.u("length", 3.6, 5.0)
    width = d.u("width", 1.6, 2.0)
    body_h = d.u("body_height", 0.45, 0.75)
    clearance = d.u("ground_clearance", 0.12, 0.28)
    cabin_h = d.u("cabin_height", 0.35, 0.6)
    wheel_r = d.u("wheel_radius", 0.28, 0.42)
    wheel_w = d.u("wheel_width", 0.18, 0.3)
    roundness = d.u("body_roundness", 0.05, 0.2)
    wheelbase = d.u("wheelbase_fraction", 0.55, 0.68) * length
    cabin_len, cabin_x = {
        "sedan": (0.45, -0.05),
        "hatchback": (0.5, -0.15),
        "pickup": (0.3, 0.05),
        "van": (0.8, -0.05),
        "suv": (0.6, -0.12),
    }[kind]
    cabin_len *= length * d.u("cabin_length_scale", 0.85, 1.15)
    cabin_x *= length
    if kind == "van":
        cabin_h *= 1.5
    by = clearance + body_h / 2
    body: Node = box((0, by, 0), (length / 2, body_h / 2, width / 2), r=roundness)
    cabin = box(
        (cabin_x, by + body_h / 2 + cabin_h / 2 - 0.05, 0),
        (cabin_len / 2, cabin_h / 2, width * 0.42),
        ACCENT,
        r=min(roundness * 1.5, cabin_h / 2.2),
    )
    body = Union([body, cabin], k=0.08)
    arches, wheels = [], []
    for sx in (-1, 1):
        for sz in (-1, 1):
            c = (sx * wheelbase / 2, wheel_r, sz * (width / 2 - wheel_w / 2 + 0.02))
            arches.append(Cylinder(t=c, R=rotation(x=np.pi / 2), r=wheel_r * 1.12, h=wheel_w * 0.7))
            wheels.append(Cylinder(material=DARK, t=c, R=rotation(x=np.pi / 2), r=wheel_r, h=wheel_w / 2))
            wheels.append(
                Cylinder(
                    material=SECOND,
                    t=(c[0], c[1], c[2] + sz * wheel_w / 2),
                    R=rotation(x=np.pi / 2),
                    r=wheel_r * 0.55,
                    h=0.015,
                )
            )
    body = Subtract(body, Union(arches), k=0.02)
    if kind == "pickup":
        bed = box((-length * 0.3, by + body_h / 2, 0), (length * 0.2, body_h * 0.3, width / 2 - 0.06))
        body = Subtract(body, bed)
    return Union([body] + wheels), d.params


def chair(rng):
    d = _Draw(rng)
    sw = d.u("seat_width", 0.4, 0.62)
    sd = d.u("seat_depth", 0.4, 0.6)
    st = d.u("seat_thickness", 0.03, 0.1)
    sh = d.u("seat_height", 0.4, 0.52)
    bh = d.u("back_height", 0.3, 0.75)
    tilt = np.radians(d.u("back_tilt_deg", 0.0, 25.0))
    lt = d.u("leg_thickness", 0.018, 0.045)
    splay = d.u("leg_splay", 0.0, 0.06)
    legs = d.pick("legs", ["square", "round", "pedestal", "sled"])
    back = d.pick("back", ["solid", "slats", "frame"])
    arms = d.flag("armrests", 0.4)
    parts: list[Node] = [box((0, sh - st / 2, 0), (sw / 2, st / 2, sd / 2), r=min(0.02, st / 2.5))]
    y_under = sh - st
    if legs in ("square", "round"):
        parts += _legs4(sw / 2 - lt * 1.5, sd / 2 - lt * 1.5, y_under, 0.0, lt, legs, splay)
    elif legs == "pedestal":
        parts.append(rod((0, y_under, 0), (0, 0.08, 0), lt * 1.4, SECOND))
        for k in range(5):
            a = 2 * np.pi * k / 5
            tip = (np.cos(a) * sw * 0.6, 0.04, np.sin(a) * sw * 0.6)
            parts.append(beam((0, 0.08, 0), tip, lt, lt * 0.8, SECOND))
            parts.append(Sphere(material=DARK, t=(tip[0], 0.035, tip[2]), r=0.035))
    else:
        for sx in (-1, 1):
            x = sx * (sw / 2 - lt)
            parts.append(rod((x, 0.0 + lt, -sd / 2), (x, lt, sd / 2), lt, SECOND))
            parts.append(rod((x, lt, sd / 2 - 0.05), (x, y_under, sd / 2 - 0.05), lt, SECOND))
            parts.append(rod((x, lt, -sd / 2 + 0.05), (x, y_under, -sd / 2 + 0.05), lt, SECOND))
    base = np.array([0, sh, -sd / 2 + 0.03])
    up = np.array([0, np.cos(tilt), -np.sin(tilt)])
    centre = base + up * bh / 2
    Rb = rotation(x=-tilt)
    bt = 0.03
    if back == "solid":
        parts.append(Box(t=centre, R=Rb, b=(sw / 2, bh / 2, bt), r=0.015))
    elif back == "frame":
        panel = Box(t=centre, R=Rb, b=(sw / 2, bh / 2, bt), r=0.015)
        hole = Box(t=centre + up * bh * 0.1, R=Rb, b=(sw / 2 - 0.05, bh * 0.3, bt * 3))
        parts.append(Subtract(panel, hole))
    else:
        n = int(rng.integers(3, 6))
        d.params["slats"] = n
        parts.append(Box(t=base + up * (bh - 0.03), R=Rb, b=(sw / 2, 0.03, bt)))
        for i in range(n):
            x = -sw / 2 + 0.02 + (sw - 0.04) * i / (n - 1)
            parts.append(beam(base + [x, 0, 0], base + up * bh + [x, 0, 0], 0.015, bt * 0.8, SECOND))
    if arms:
        for sx in (-1, 1):
            x = sx * (sw / 2 + 0.02)
            parts.append(box((x, sh + 0.2, 0), (0.025, 0.018, sd / 2 - 0.02), SECOND))
            parts.append(
                beam((x, sh - st, sd / 2 - 0.06), (x, sh + 0.2, sd / 2 - 0.06), 0.018, 0.018, SECOND)
            )
    return Union(parts, k=0.01), d.params


def display(rng):
    d = _Draw(rng)
    w = d.u("screen_width", 0.45, 0.9)
    h = w * d.u("aspect", 0.5, 0.8)
    t = d.u("panel_thickness", 0.015, 0.05)
    bezel = d.u("bezel", 0.01, 0.05)
    tilt = np.radians(d.u("tilt_deg", -8.0, 15.0))
    neck = d.u("neck_height", 0.04, 0.25)
    kind = d.pick("body", ["flat", "crt"])
    stand = d.pick("stand", ["disk", "box-base", "two-feet", "block"])
    cy = neck + h / 2 + 0.02
    R = rotation(x=-tilt)
    panel: Node = Box(t=(0, cy, 0), R=R, b=(w / 2, h / 2, t / 2), r=0.008)
    screen_c = np.array([0, cy, 0]) + R @ np.array([0, 0, t / 2])
    recess = Box(t=screen_c, R=R, b=(w / 2 - bezel, h / 2 - bezel, 0.006))
    panel = Subtract(panel, recess)
    parts: list[Node] = [
        panel,
        Box(
            material=DARK,
            t=screen_c - R @ np.array([0, 0, 0.004]),
            R=R,
            b=(w / 2 - bezel, h / 2 - bezel, 0.003),
        ),
    ]
    if kind == "crt":
        depth = d.u("crt_depth", 0.25, 0.6) * w
        back_c = np.array([0, cy, 0]) - R @ np.array([0, 0, t / 2 + depth / 2])
        parts.append(Box(t=back_c, R=R, b=(w * 0.4, h * 0.4, depth / 2), r=0.05))
    if stand == "disk":
        parts.append(rod((0, 0, -0.02), (0, cy, -0.02), 0.03, SECOND))
        parts.append(Cylinder(material=SECOND, t=(0, 0.012, -0.02), r=w * 0.22, h=0.012))
    elif stand == "box-base":
        parts.append(beam((0, 0, -0.04), (0, cy, -0.02), 0.05, 0.012, SECOND))
        parts.append(box((0, 0.012, 0), (w * 0.22, 0.012, 0.12), SECOND))
    elif stand == "two-feet":
        for sx in (-1, 1):
            parts.append(
                beam((sx * w * 0.35, cy - h / 2, 0), (sx * w * 0.38, 0.0, 0.04), 0.012, 0.03, SECOND)
            )
            parts.append(box((sx * w * 0.38, 0.01, 0.02), (0.02, 0.01, 0.1), SECOND))
    else:
        parts.append(
            box(
                (0, (cy - h / 2 + 0.02) / 2, -0.02),
                (w * 0.3, (cy - h / 2 + 0.02) / 2, 0.12),
                SECOND,
            )
        )
    return Union(parts, k=0.01), d.params


def lamp(rng):
    d = _Draw(rng)
    base = d.pick("base", ["disk", "box", "tripod"])
    bs = d.u("base_size", 0.1, 0.25)
    height = d.u("stem_height", 0.35, 1.6)
    sr = d.u("stem_radius", 0.008, 0.025)
    stem = d.pick("stem", ["straight", "bent", "arc"])
    shade = d.pick("shade", ["cone", "cylinder", "sphere", "dome"])
    ss = d.u("shade_size", 0.1, 0.3)
    parts: list[Node] = []
    if base == "disk":
        parts.append(Cylinder(material=SECOND, t=(0, 0.015, 0), r=bs, h=0.015))
        y_stem0 = 0.03
    elif base == "box":
        parts.append(box((0, 0.025, 0), (bs, 0.025, bs * 0.8), SECOND, r=0.01))
        y_stem0 = 0.05
    else:
        for k in range(3):
            a = 2 * np.pi * k / 3
            parts.append(
                rod(
                    (0, height * 0.35, 0),
                    (np.cos(a) * bs * 1.5, 0, np.sin(a) * bs * 1.5),
                    sr,
                    SECOND,
                )
            )
        y_stem0 = height * 0.35
    if stem == "straight":
        top = np.array([0, height, 0])
        parts.append(rod((0, y_stem0, 0), top, sr, SECOND))
        shade_dir = np.array([0, -1.0, 0])
    elif stem == "bent":
        elbow = np.array([0, y_stem0 + height * d.u("elbow_fraction", 0.4, 0.7), 0])
        ang = np.radians(d.u("arm_angle_deg", 20, 70))
        top = elbow + np.array([np.sin(ang), np.cos(ang), 0]) * height * 0.5
        parts.append(rod((0, y_stem0, 0), elbow, sr, SECOND))
        parts.append(rod(elbow, top, sr, SECOND))
        parts.append(Sphere(material=ACCENT, t=elbow, r=sr * 2))
        shade_dir = np.array([0.5, -1.0, 0])
    else:
        # An arc: a quarter of a torus from the stem top reaching sideways.
        reach = height * d.u("arc_reach", 0.3, 0.6)
        parts.append(rod((0, y_stem0, 0), (0, height - reach, 0), sr, SECOND))
        arc = Torus(material=SECOND, t=(reach, height - reach, 0), R=rotation(x=np.pi / 2), R0=reach, r=sr)
        keep = box((reach / 2, height - reach / 2, 0), (reach / 2, reach / 2, sr * 2))
        parts.append(
            Subtract(
                arc,
                Subtract(box((reach, height - reach, 0), (reach * 1.1, reach * 1.1, sr * 2)), keep),
            )
        )
        top = np.array([reach, height, 0])
        shade_dir = np.array([0, -1.0, 0])
    shade_dir = shade_dir / np.linalg.norm(shade_dir)
    Rs = _frame(-shade_dir, 1)  # local +y points back up the shade axis
    sc = top + shade_dir * ss * 0.5
    if shade == "cone":
        parts.append(
            Subtract(
                Cone(t=sc, R=Rs, r1=ss, r2=ss * 0.45, h=ss * 0.5),
                Cone(t=sc - shade_dir * 0.01, R=Rs, r1=ss * 0.86, r2=ss * 0.33, h=ss * 0.52),
            )
        )
    elif shade == "cylinder":
        parts.append(
            Subtract(
                Cylinder(t=sc, R=Rs, r=ss * 0.7, h=ss * 0.5),
                Cylinder(t=sc - shade_dir * 0.02, R=Rs, r=ss * 0.6, h=ss * 0.5),
            )
        )
    elif shade == "sphere":
        parts.append(Sphere(material=MAIN, t=top + shade_dir * ss * 0.6, r=ss * 0.6))
    else:
        dome = Subtract(Sphere(t=top, r=ss * 0.8), Sphere(t=top, r=ss * 0.7))
        parts.append(Subtract(dome, Box(t=top - shade_dir * ss, R=Rs, b=(ss, ss, ss))))
    return Union(parts, k=0.01), d.params


def loudspeaker(rng):
    d = _Draw(rng)
    kind = d.pick("form", ["bookshelf", "tower", "cylinder"])
    w = d.u("width", 0.2, 0.45)
    h = d.u("height", 0.3, 0.6) * (2.2 if kind == "tower" else 1.0)
    dp = d.u("depth", 0.2, 0.45)
    n = d.pick("drivers", [1, 2, 3])
    dr = d.u("driver_radius", 0.25, 0.4) * w
    tweeter = d.u("tweeter_ratio", 0.4, 0.7)
    rim = d.u("rim_thickness", 0.006, 0.018)
    feet = d.pick("feet", ["none", "spikes", "plinth"])
    y0 = {"none": 0.0, "spikes": 0.05, "plinth": 0.03}[feet]
    if kind == "cylinder":
        body: Node = Cylinder(t=(0, y0 + h / 2, 0), r=w / 2, h=h / 2)
    else:
        body = box((0, y0 + h / 2, 0), (w / 2, h / 2, dp / 2), r=d.u("corner_radius", 0.0, 0.04))
    front = dp / 2 if kind != "cylinder" else w / 2
    parts: list[Node] = []
    cones: list[Node] = []
    in_front = box((0, y0 + h / 2, front + 1.0), (1.0, 1.0, 1.0))
    ys = [y0 + h * (i + 0.5) / n for i in range(n)][::-1]
    for i, y in enumerate(ys):
        r = dr * (tweeter if (i == 0 and n > 1) else 1.0)
        r = min(r, h / (2 * n) * 0.9)
        body = Subtract(body, Sphere(t=(0, y, front + r * 0.6), r=r * 1.05), k=0.01)
        parts.append(Torus(material=ACCENT, t=(0, y, front - 0.005), R=rotation(x=np.pi / 2), R0=r, r=rim))
        # The driver cone: a dark dome inside the recess, clipped at the front face.
        cones.append(Subtract(Sphere(material=DARK, t=(0, y, front + r * 0.6 - 0.02), r=r * 0.9), in_front))
    if feet == "spikes":
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(
                    Cone(
                        material=DARK,
                        t=(sx * w * 0.35, y0 / 2, sz * dp * 0.35),
                        r1=0.005,
                        r2=0.02,
                        h=y0 / 2,
                    )
                )
    elif feet == "plinth":
        parts.append(box((0, y0 / 2, 0), (w / 2 + 0.03, y0 / 2, dp / 2 + 0.03), SECOND))
    return Union([body] + parts + cones), d.params


def rifle(rng):
    d = _Draw(rng)
    barrel = d.u("barrel_length", 0.35, 0.7)
    br = d.u("barrel_radius", 0.008, 0.02)
    rl = d.u("receiver_length", 0.18, 0.35)
    rh = d.u("receiver_height", 0.05, 0.1)
    stock_l = d.u("stock_length", 0.22, 0.4)
    drop = np.radians(d.u("stock_drop_deg", 0.0, 15.0))
    stock_h = d.u("stock_height", 0.06, 0.13)
    handguard = d.u("handguard_fraction", 0.0, 0.7)
    mag = d.pick("magazine", ["none", "box", "curved"])
    scope = d.flag("scope", 0.5)
    grip = d.pick("grip", ["pistol", "straight"])
    width = 0.035
    parts: list[Node] = [box((0, 0, 0), (rl / 2, rh / 2, width / 2), DARK, r=0.008)]
    parts.append(rod((rl / 2, rh * 0.15, 0), (rl / 2 + barrel, rh * 0.15, 0), br, DARK))
    if handguard > 0.05:
        hl = barrel * handguard
        parts.append(box((rl / 2 + hl / 2, 0, 0), (hl / 2, rh * 0.4, width * 0.6), MAIN, r=0.01))
    s0 = np.array([-rl / 2, 0, 0])
    s1 = s0 + stock_l * np.array([-np.cos(drop), -np.sin(drop), 0])
    parts.append(Box(t=(s0 + s1) / 2, R=rotation(z=drop), b=(stock_l / 2, stock_h / 2, width * 0.55), r=0.01))
    if grip == "pistol":
        parts.append(beam((-rl * 0.25, -rh / 2, 0), (-rl * 0.35, -rh / 2 - 0.1, 0), 0.02, width * 0.45, MAIN))
    if mag != "none":
        ml = d.u("magazine_length", 0.08, 0.2)
        ang = 0.0 if mag == "box" else 0.35
        top = np.array([rl * 0.15, -rh / 2, 0])
        parts.append(beam(top, top + ml * np.array([np.sin(ang), -np.cos(ang), 0]), 0.025, width * 0.4, DARK))
    if scope:
        sl = d.u("scope_length", 0.15, 0.3)
        parts.append(rod((-sl / 2, rh / 2 + 0.045, 0), (sl / 2, rh / 2 + 0.045, 0), 0.02, ACCENT))
        parts.append(box((0, rh / 2 + 0.015, 0), (0.03, 0.015, 0.01), DARK))
    return Union(parts, k=0.006), d.params


def sofa(rng):
    d = _Draw(rng)
    w = d.u("width", 1.3, 2.6)
    dp = d.u("depth", 0.75, 1.0)
    seat_h = d.u("seat_height", 0.38, 0.5)
    back_h = d.u("back_height", 0.3, 0.55)
    back_t = d.u("back_thickness", 0.12, 0.25)
    arm_w = d.u("arm_width", 0.1, 0.25)
    arm_h = d.u("arm_height", 0.1, 0.25)
    arms = d.pick("arms", ["box", "rolled", "none"])
    cushions = d.pick("cushions", [1, 2, 3])
    legs = d.pick("legs", ["short", "plinth"])
    chaise = d.flag("chaise", 0.25)
    y0 = 0.1 if legs == "short" else 0.0
    base_top = seat_h - 0.12
    parts: list[Node] = [box((0, (y0 + base_top) / 2, 0), (w / 2, (base_top - y0) / 2, dp / 2), r=0.03)]
    inner = w - 2 * arm_w if arms != "none" else w
    cw = inner / cushions
    for i in range(cushions):
        x = -inner / 2 + cw * (i + 0.5)
        parts.append(
            box(
                (x, base_top + 0.06, back_t / 2),
                (cw / 2 - 0.01, 0.06, (dp - back_t) / 2),
                SECOND,
                r=0.04,
            )
        )
    parts.append(
        box(
            (0, (y0 + seat_h + back_h) / 2, -dp / 2 + back_t / 2),
            (w / 2, (seat_h + back_h - y0) / 2, back_t / 2),
            r=0.05,
        )
    )
    for sx in (-1, 1):
        x = sx * (w / 2 - arm_w / 2)
        if arms == "box":
            parts.append(
                box(
                    (x, (y0 + seat_h + arm_h) / 2, 0),
                    (arm_w / 2, (seat_h + arm_h - y0) / 2, dp / 2),
                    r=0.04,
                )
            )
        elif arms == "rolled":
            parts.append(box((x, (y0 + seat_h) / 2, 0), (arm_w / 2, (seat_h - y0) / 2, dp / 2), r=0.03))
            parts.append(Cylinder(t=(x, seat_h, 0), R=rotation(x=np.pi / 2), r=arm_w * 0.6, h=dp / 2))
    if chaise:
        ext = d.u("chaise_length", 0.5, 0.8)
        parts.append(
            box(
                (w / 2 - 0.35, (y0 + seat_h) / 2, dp / 2 + ext / 2),
                (0.35, (seat_h - y0) / 2, ext / 2),
                SECOND,
                r=0.04,
            )
        )
    if legs == "short":
        extra = 0.8 if chaise else 0.0
        for sx in (-1, 1):
            for sz in (-1, 1):
                z = sz * (dp / 2 - 0.06) + (extra if (sz > 0 and sx > 0) else 0.0)
                parts.append(
                    Cone(
                        material=DARK,
                        t=(sx * (w / 2 - 0.06), y0 / 2, z),
                        r1=0.02,
                        r2=0.03,
                        h=y0 / 2,
                    )
                )
    return Union(parts, k=0.02), d.params


def table(rng):
    d = _Draw(rng)
    w = d.u("top_width", 0.8, 2.0)
    dp = w * d.u("depth_ratio", 0.4, 1.0)
    tt = d.u("top_thickness", 0.02, 0.07)
    h = d.u("height", 0.45, 0.78)
    lt = d.u("leg_thickness", 0.02, 0.06)
    shape = d.pick("top_shape", ["rectangular", "rounded", "round"])
    legs = d.pick("legs", ["four", "four+apron", "pedestal", "trestle"])
    if shape == "round":
        dp = w
        top: Node = Cylinder(t=(0, h - tt / 2, 0), r=w / 2, h=tt / 2)
    else:
        top = box(
            (0, h - tt / 2, 0),
            (w / 2, tt / 2, dp / 2),
            r=(min(dp, w) * 0.2 if shape == "rounded" else 0.005),
        )
    parts: list[Node] = [top]
    inset = 0.7 if shape == "round" else 0.95
    lx, lz = w / 2 * inset - lt * 2, dp / 2 * inset - lt * 2
    if legs in ("four", "four+apron"):
        parts += _legs4(
            lx,
            lz,
            h - tt,
            0.0,
            lt,
            "square" if rng.random() < 0.5 else "round",
            d.u("leg_splay", 0.0, 0.05),
        )
        if legs == "four+apron":
            ay = h - tt - 0.05
            parts.append(box((0, ay, lz), (lx, 0.05, 0.01), SECOND))
            parts.append(box((0, ay, -lz), (lx, 0.05, 0.01), SECOND))
            parts.append(box((lx, ay, 0), (0.01, 0.05, lz), SECOND))
            parts.append(box((-lx, ay, 0), (0.01, 0.05, lz), SECOND))
    elif legs == "pedestal":
        parts.append(rod((0, 0.03, 0), (0, h - tt, 0), lt * 2, SECOND))
        if rng.random() < 0.5:
            parts.append(Cylinder(material=SECOND, t=(0, 0.02, 0), r=min(w, dp) * 0.3, h=0.02))
        else:
            for k in range(4):
                a = np.pi / 4 + k * np.pi / 2
                parts.append(
                    beam(
                        (0, 0.03, 0),
                        (np.cos(a) * w * 0.35, 0.0, np.sin(a) * dp * 0.35),
                        lt,
                        lt,
                        SECOND,
                    )
                )
    else:
        for sx in (-1, 1):
            parts.append(box((sx * lx, (h - tt) / 2, 0), (lt, (h - tt) / 2, lz * 0.8), SECOND))
            parts.append(box((sx * lx, 0.02, 0), (lt * 1.5, 0.02, lz), SECOND))
        parts.append(box((0, h * 0.35, 0), (lx, 0.03, lt), SECOND))
    return Union(parts, k=0.008), d.params


def telephone(rng):
    d = _Draw(rng)
    kind = d.pick("kind", ["smartphone", "flip", "desk"])
    if kind == "smartphone":
        w = d.u("width", 0.065, 0.09)
        h = d.u("height", 0.12, 0.17)
        t = d.u("thickness", 0.007, 0.013)
        cr = d.u("corner_radius", 0.004, 0.02)
        body: Node = box((0, h / 2, 0), (w / 2, h / 2, t / 2), r=min(cr, t / 2 * 0.99))
        bezel = d.u("bezel", 0.002, 0.008)
        screen = box((0, h / 2, t / 2), (w / 2 - bezel, h / 2 - bezel * 2, 0.0012), DARK)
        cam = Cylinder(
            material=ACCENT,
            t=(-w / 4, h * 0.85, -t / 2),
            R=rotation(x=np.pi / 2),
            r=d.u("camera_radius", 0.004, 0.012),
            h=0.0025,
        )
        return Union([Subtract(body, screen), screen, cam]), d.params
    if kind == "flip":
        w = d.u("width", 0.045, 0.06)
        h = d.u("half_height", 0.08, 0.1)
        t = d.u("thickness", 0.009, 0.015)
        ang = np.radians(d.u("open_angle_deg", 120.0, 170.0))
        lower = box((0, h / 2, 0), (w / 2, h / 2, t / 2), r=0.004)
        hinge = np.array([0, h, -t / 2])
        direction = np.array([0, -np.cos(ang), -np.sin(ang)])
        upper = Box(
            t=hinge + direction * h / 2 + np.array([0, 0, t / 2]),
            R=rotation(x=np.pi - ang),
            b=(w / 2, h / 2, t / 2),
            r=0.004,
        )
        keys = [
            box((x, y, t / 2), (0.006, 0.004, 0.001), DARK)
            for x in (-0.013, 0, 0.013)
            for y in np.linspace(0.015, h * 0.6, 4)
        ]
        return Union(
            [lower, upper, rod((-w / 2, h, -t / 2), (w / 2, h, -t / 2), t / 2, SECOND)] + keys
        ), d.params
    w = d.u("width", 0.18, 0.26)
    dp = d.u("depth", 0.18, 0.24)
    hb = d.u("body_height", 0.05, 0.09)
    slope = np.radians(d.u("slope_deg", 10.0, 25.0))
    body = box((0, hb / 2, 0), (w / 2, hb / 2, dp / 2), r=0.01)
    cut = Box(t=(0, hb, dp / 2), R=rotation(x=slope), b=(w, hb * 0.6, dp))
    body = Subtract(body, cut)
    hl = d.u("handset_length", 0.18, 0.24)
    hx = d.u("handset_offset", -0.06, 0.0)
    handset = [
        Capsule(
            material=SECOND,
            a=(-hl / 2 + 0.03, hb + 0.02, -dp / 4),
            b=(hl / 2 - 0.03, hb + 0.02, -dp / 4),
            r=0.015,
        ),
        box((-hl / 2 + 0.03, hb + 0.015, -dp / 4), (0.03, 0.02, 0.025), SECOND, r=0.01),
        box((hl / 2 - 0.03, hb + 0.015, -dp / 4), (0.03, 0.02, 0.025), SECOND, r=0.01),
    ]
    handset = [Union(handset, k=0.01)]
    # The keypad: one dark block set into the sloped top, attached to the body.
    keypad = Box(
        material=DARK, t=(hx, hb * 0.75, dp * 0.18), R=rotation(x=slope), b=(0.045, 0.012, 0.05), r=0.004
    )
    return Union([body, keypad] + handset), d.params


def vessel(rng):
    d = _Draw(rng)
    kind = d.pick("kind", ["sailboat", "motor-yacht", "cargo", "warship"])
    L = d.u("hull_length", 1.0, 2.0)
    beam_w = L * d.u("beam_ratio", 0.15, 0.3)
    depth = L * d.u("hull_depth_ratio", 0.08, 0.16)
    hull_shape = d.pick("hull", ["round", "pointed-bow"])
    deck = d.u("deck_fraction", 0.36, 0.45)
    shift = d.u("superstructure_shift", -0.12, 0.08) * L
    tall = d.u("superstructure_scale", 0.75, 1.3)
    if hull_shape == "round":
        hull: Node = Ellipsoid(radii=(L / 2, depth * 1.6, beam_w / 2))
    else:
        stern = box((-L * 0.15, 0, 0), (L * 0.35, depth * 1.4, beam_w / 2), r=depth * 0.5)
        bow = Box(
            t=(L * 0.2, 0, 0),
            R=rotation(y=np.pi / 4),
            b=(beam_w * 0.354 * 1.4, depth * 1.4, beam_w * 0.354 * 1.4),
            r=depth * 0.3,
        )
        bow = Subtract(bow, box((-L * 0.1, 0, 0), (L * 0.3, depth * 2, beam_w)))
        hull = Union(
            [
                stern,
                Union([bow, Ellipsoid(t=(L * 0.2, 0, 0), radii=(L * 0.3, depth * 1.4, beam_w / 2))]),
            ],
            k=0.03,
        )
    hull = Subtract(hull, box((0, depth * 2.5, 0), (L, depth * 2.5, L)))  # flat deck at y = 0
    parts: list[Node] = [hull, box((0, 0.005, 0), (L * deck, 0.005, beam_w * deck), ACCENT)]
    if kind == "sailboat":
        mh = L * d.u("mast_height", 0.6, 1.1) * tall
        masts = d.pick("masts", [1, 2])
        for i in range(masts):
            x = L * (0.08 - 0.3 * i) + shift
            parts.append(rod((x, 0, 0), (x, mh * (1 - 0.25 * i), 0), 0.008 * L, DARK))
            sail = Box(
                material=SECOND,
                t=(x - L * 0.12, mh * 0.5 * (1 - 0.25 * i), 0),
                R=rotation(z=0.08),
                b=(L * 0.12, mh * 0.42 * (1 - 0.25 * i), 0.004),
            )
            parts.append(sail)
    elif kind == "motor-yacht":
        levels = d.pick("deck_levels", [1, 2, 3])
        for i in range(levels):
            lw = L * (0.4 - 0.1 * i)
            level_h = depth * 0.2 * tall
            parts.append(
                box(
                    (shift - 0.03 * i, level_h * 2 * (i + 0.5), 0),
                    (lw / 2, level_h, beam_w * (0.38 - 0.05 * i)),
                    SECOND,
                    r=0.02,
                )
            )
    elif kind == "cargo":
        rows = d.pick("container_rows", [2, 3, 4])
        bridge_x = -L * 0.36
        parts.append(
            box(
                (bridge_x, depth * 0.6 * tall, 0),
                (L * 0.05, depth * 0.6 * tall, beam_w * 0.4),
                SECOND,
            )
        )
        cl = L * 0.55 / rows
        for i in range(rows):
            for j in range(int(rng.integers(1, 4))):
                parts.append(
                    box(
                        (-L * 0.25 + cl * (i + 0.5), depth * 0.22 * (2 * j + 1), 0),
                        (cl / 2 - 0.01, depth * 0.2, beam_w * 0.35),
                        ACCENT,
                    )
                )
        parts.append(
            rod(
                (bridge_x - L * 0.02, depth * 0.8, 0),
                (bridge_x - L * 0.02, depth * 1.8, 0),
                depth * 0.2,
                DARK,
            )
        )
    else:
        parts.append(
            box(
                (shift, depth * 0.45 * tall, 0),
                (L * 0.14, depth * 0.45 * tall, beam_w * 0.3),
                SECOND,
            )
        )
        parts.append(rod((shift, depth * 0.9 * tall, 0), (shift, depth * 2.5 * tall, 0), 0.006 * L, DARK))
        turrets = d.pick("turrets", [1, 2, 3])
        for i in range(turrets):
            x = L * 0.2 if i == 0 else (-L * 0.25 if i == 1 else L * 0.3)
            parts.append(Cylinder(material=SECOND, t=(x, depth * 0.15, 0), r=beam_w * 0.15, h=depth * 0.15))
            sgn = 1 if x > 0 else -1
            parts.append(rod((x, depth * 0.2, 0), (x + sgn * beam_w * 0.5, depth * 0.25, 0), 0.01 * L, DARK))
    return Union(parts, k=0.01), d.params


CATEGORIES: tuple[Category, ...] = (
    Category("02691156", "airplane", airplane),
    Category("02828884", "bench", bench),
    Category("02933112", "cabinet", cabinet),
    Category("02958343", "car", car),
    Category("03001627", "chair", chair),
    Category("03211117", "display", display),
    Category("03636649", "lamp", lamp),
    Category("03691459", "loudspeaker", loudspeaker),
    Category("04090263", "rifle", rifle),
    Category("04256520", "sofa", sofa),
    Category("04379243", "table", table),
    Category("04401088", "telephone", telephone),
    Category("04530566", "vessel", vessel),
)
BY_SYNSET = {c.synset: c for c in CATEGORIES}
BY_NAME = {c.name: c for c in CATEGORIES}


def resolve_categories(names) -> list[Category]:
    """Categories from synset ids or names (None or empty = all 13); unknown names raise."""
    if not names:
        return list(CATEGORIES)
    out = []
    for n in names:
        cat = BY_SYNSET.get(n) or BY_NAME.get(n)
        if cat is None:
            known = ", ".join(f"{c.synset} ({c.name})" for c in CATEGORIES)
            raise ValueError(f"unknown category {n!r}; expected one of: {known}")
        if cat not in out:
            out.append(cat)
    return out
