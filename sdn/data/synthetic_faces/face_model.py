"""Procedural face model: identity attributes, per-image variation, and the face's 3D layout.

An :class:`Identity` is the only identity signal of the synthetic VGGFace2: head
shape (width, height, jaw, chin, fullness), skin tone, eyes (colour, size, spacing,
height, tilt), nose (width, length), mouth (width, lip fullness and colour), brows
(arch, thickness, colour), hair (colour, style, hairline), ears, facial hair and a
mole. A :class:`Variation` is everything that changes from one image of a person
to the next and says nothing about who it is: head pose, expression, gaze, light,
background, framing, clothing, glasses, hat and sensor noise.

Geometry lives in the *head frame*: x towards the image's right when the head
faces the camera (the subject's left), y up, z out of the face towards the
camera; the unit is about half the chin-to-crown height (the chin is near
y = -1, the crown near y = 1.15). :func:`head_layout` turns an identity and a
variation into ellipsoid primitives and feature positions in that frame; the
renderer (:mod:`.render`) poses, projects and paints them, and the landmarks of
the dataset are the projections of :attr:`Layout.landmarks`.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, fields

import numpy as np

# Skin tones from very light to very dark (sRGB in [0, 1]); identities interpolate.
SKIN_TONES = np.array(
    [
        [0.97, 0.82, 0.72],
        [0.92, 0.72, 0.60],
        [0.82, 0.60, 0.46],
        [0.68, 0.47, 0.33],
        [0.50, 0.33, 0.22],
        [0.32, 0.21, 0.14],
    ]
)
HAIR_COLOURS = {
    "black": (0.06, 0.05, 0.05),
    "dark_brown": (0.17, 0.11, 0.08),
    "brown": (0.33, 0.21, 0.13),
    "auburn": (0.45, 0.20, 0.10),
    "red": (0.62, 0.30, 0.14),
    "blonde": (0.76, 0.62, 0.40),
    "platinum": (0.88, 0.82, 0.66),
    "grey": (0.58, 0.57, 0.56),
}
EYE_COLOURS = {
    "dark_brown": (0.18, 0.10, 0.06),
    "brown": (0.34, 0.19, 0.09),
    "hazel": (0.45, 0.37, 0.18),
    "green": (0.28, 0.45, 0.28),
    "blue": (0.28, 0.44, 0.66),
    "grey": (0.45, 0.50, 0.55),
}
HAIR_STYLES = ("bald", "buzz", "short", "fringe", "side_part", "long", "bun", "curly")
FACIAL_HAIR = ("none", "stubble", "moustache", "beard")
HATS = ("none", "beanie", "cap")
BACKGROUNDS = ("solid", "gradient", "clutter")

YAW_RANGE, PITCH_RANGE, ROLL_RANGE = 45.0, 20.0, 10.0  # degrees, symmetric
HEAD_TOP, CHIN_MARGIN = 1.2, 0.02  # head extent used for framing (head frame units)

Colour = tuple[float, float, float]


@dataclass(frozen=True)
class Identity:
    """Attributes fixed for a person. Factors are ~1 for an average face."""

    gender: str  # "m" | "f"
    head_width: float
    head_height: float
    jaw_width: float  # relative to the head width
    chin_length: float
    cheek_fullness: float
    skin: Colour
    eye_colour: str
    eye_size: float
    eye_spacing: float
    eye_height: float  # offset of the eye line (head units)
    eye_tilt: float  # radians, outer corners up when positive
    nose_width: float
    nose_length: float
    mouth_width: float
    lip_fullness: float
    lip_colour: Colour
    brow_arch: float
    brow_thickness: float
    brow_colour: Colour
    hair_colour: str
    hair_style: str
    hairline: float  # height of the front hairline (head units)
    ear_size: float
    facial_hair: str
    mole: tuple[float, float] | None  # (x, y) on the face, head units
    texture_seed: int  # seeds the skin, brow and hair grain


@dataclass(frozen=True)
class Variation:
    """What differs between two images of the same person."""

    yaw: float  # degrees; > 0 turns the face towards the image's right
    pitch: float  # degrees; > 0 tilts the chin up
    roll: float  # degrees; > 0 rotates the head anticlockwise in the image
    smile: float  # [0, 1]
    mouth_open: float  # [0, 1]
    blink: float  # [0, 1], 1 = eyes closed
    gaze: tuple[float, float]  # iris offset (head units)
    light_azimuth: float  # degrees around the vertical, 0 = from the camera
    light_elevation: float  # degrees above the horizon
    light_intensity: float
    ambient: float
    light_colour: Colour
    background: str  # one of BACKGROUNDS
    background_colours: tuple[Colour, Colour]
    background_angle: float  # radians, direction of the gradient
    head_fraction: float  # head (chin to crown) height / image height
    offset: tuple[float, float]  # head centre offset, fractions of the image (x right, y up)
    clothing: Colour
    glasses: bool
    glasses_colour: Colour
    hat: str  # one of HATS
    hat_colour: Colour
    exposure: float
    noise: float  # sensor noise standard deviation, [0, 1] scale
    detail_seed: int  # seeds clutter and sensor noise


@dataclass(frozen=True)
class Ellipsoid:
    """{centre + Q diag(radii) u : |u| <= 1} in the head (or body) frame; Q a rotation (3, 3)."""

    centre: np.ndarray  # (3,)
    radii: np.ndarray  # (3,)
    rotation: np.ndarray  # (3, 3)


@dataclass(frozen=True)
class Layout:
    """Primitives and feature positions of one face in the head frame (see module doc)."""

    cranium: Ellipsoid
    jaw: Ellipsoid
    nose: tuple[Ellipsoid, Ellipsoid]  # bridge, tip
    alae: tuple[Ellipsoid, Ellipsoid]
    ears: tuple[Ellipsoid, Ellipsoid]
    eyes: np.ndarray  # (2, 2) eye centres (x, y), image-left eye first
    eye_half: tuple[float, float]  # almond half width, half height (open eye)
    iris_radius: float
    brow_y: float  # brow line height above the eye centres
    nose_tip: np.ndarray  # (3,)
    nose_base_y: float
    mouth_y: float
    mouth_half_width: float  # with the smile
    landmarks: np.ndarray  # (5, 3): left eye, right eye, nose tip, left / right mouth corner
    face_front_z: float  # z of the face surface near the eyes (glasses plane reference)


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1.0, 0], [-s, 0, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def pose_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head-to-camera rotation (3, 3) for angles in degrees (conventions of :class:`Variation`)."""
    return _rot_z(np.radians(roll)) @ _rot_x(-np.radians(pitch)) @ _rot_y(np.radians(yaw))


def _truncnorm(rng: np.random.Generator, sd: float, limit: float) -> float:
    while True:
        v = rng.normal(0.0, sd)
        if abs(v) <= limit:
            return float(v)


def _pick(rng: np.random.Generator, options, p) -> str:
    p = np.asarray(p, float)
    return str(options[rng.choice(len(options), p=p / p.sum())])


def _jitter(rng: np.random.Generator, colour, amount: float) -> Colour:
    c = np.clip(np.asarray(colour) * (1 + rng.normal(0, amount, 3)), 0, 1)
    return (float(c[0]), float(c[1]), float(c[2]))


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draw a person's attributes."""
    gender = "m" if rng.random() < 0.5 else "f"
    male = gender == "m"
    tone = rng.uniform(0, len(SKIN_TONES) - 1)
    i = min(int(tone), len(SKIN_TONES) - 2)
    skin = SKIN_TONES[i] + (tone - i) * (SKIN_TONES[i + 1] - SKIN_TONES[i])
    skin = skin * (1 + np.array([0.03, 0.0, -0.03]) * rng.normal()) * rng.uniform(0.96, 1.04)
    dark = tone / (len(SKIN_TONES) - 1)  # 0 light .. 1 dark
    hair_names = list(HAIR_COLOURS)
    light = 1 - dark
    hair_p = np.array([3 + 6 * dark, 3 + 2 * dark, 3, light, 0.6 * light, 2 * light, 0.6 * light, 0.8])
    hair_colour = _pick(rng, hair_names, hair_p)
    eye_names = list(EYE_COLOURS)
    eye_colour = _pick(rng, eye_names, [2 + 6 * dark, 2 + 2 * dark, 1, 1 - dark, 1.5 * (1 - dark), 1 - dark])
    style_p = [0.5, 1.2, 2.5, 0.8, 1.5, 0.4, 0.1, 0.6] if male else [0.02, 0.1, 0.8, 1.2, 0.8, 3.0, 0.9, 0.8]
    hair_style = _pick(rng, HAIR_STYLES, style_p)
    facial_hair = _pick(rng, FACIAL_HAIR, [6, 1.5, 1, 1.5]) if male else "none"
    brow = (
        np.asarray(HAIR_COLOURS[hair_colour]) * 0.7 if hair_colour != "grey" else np.array([0.3, 0.28, 0.26])
    )
    lip_base = skin * np.array([0.86, 0.62, 0.62]) if male else skin * np.array([0.9, 0.5, 0.52])
    if not male and rng.random() < 0.5:  # lipstick
        lip_base = np.array([0.65, 0.16, 0.2]) * rng.uniform(0.7, 1.1)
    return Identity(
        gender=gender,
        head_width=float(rng.uniform(0.9, 1.06) * (1.02 if male else 0.98)),
        head_height=float(rng.uniform(0.95, 1.06)),
        jaw_width=float(rng.uniform(0.78, 0.98) + (0.05 if male else -0.04)),
        chin_length=float(rng.uniform(0.9, 1.1)),
        cheek_fullness=float(rng.uniform(0.8, 1.2)),
        skin=_jitter(rng, skin, 0.02),
        eye_colour=eye_colour,
        eye_size=float(rng.uniform(0.88, 1.12) * (0.97 if male else 1.04)),
        eye_spacing=float(rng.uniform(0.9, 1.1)),
        eye_height=float(rng.uniform(-0.05, 0.05)),
        eye_tilt=float(rng.uniform(-0.12, 0.15)),
        nose_width=float(rng.uniform(0.8, 1.25) * (1.06 if male else 0.94)),
        nose_length=float(rng.uniform(0.85, 1.15)),
        mouth_width=float(rng.uniform(0.85, 1.15)),
        lip_fullness=float(rng.uniform(0.7, 1.2) * (0.9 if male else 1.12)),
        lip_colour=_jitter(rng, lip_base, 0.04),
        brow_arch=float(rng.uniform(0.0, 1.0) + (0 if male else 0.4)),
        brow_thickness=float(rng.uniform(0.8, 1.25) * (1.12 if male else 0.82)),
        brow_colour=_jitter(rng, brow, 0.1),
        hair_colour=hair_colour,
        hair_style=hair_style,
        hairline=float(rng.uniform(0.5, 0.68) + (0.06 if male and rng.random() < 0.25 else 0.0)),
        ear_size=float(rng.uniform(0.85, 1.2)),
        facial_hair=facial_hair,
        mole=(float(rng.uniform(-0.45, 0.45)), float(rng.uniform(-0.7, 0.3))) if rng.random() < 0.3 else None,
        texture_seed=int(rng.integers(2**31)),
    )


def _random_colour(rng: np.random.Generator, sat=(0.1, 0.7), val=(0.2, 0.95)) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*sat), rng.uniform(*val))
    return (float(r), float(g), float(b))


def sample_variation(rng: np.random.Generator) -> Variation:
    """Draw one image's pose, expression, light, background, framing and accessories.

    Yaw, pitch and roll are normal with standard deviations 22, 9 and 5 degrees,
    truncated to +-45, +-20 and +-10 (mostly near-frontal, as in VGGFace2).
    """
    smile = rng.uniform(0.35, 1.0) if rng.random() < 0.45 else rng.uniform(0.0, 0.15)
    mouth_open = rng.uniform(0.2, 1.0) if rng.random() < 0.25 else 0.0
    blink = rng.uniform(0.75, 1.0) if rng.random() < 0.06 else rng.uniform(0.0, 0.25)
    warm = rng.uniform(-1, 1)
    light_colour = np.array([1 + 0.12 * warm, 1.0, 1 - 0.15 * warm]) * rng.uniform(0.95, 1.05)
    background = _pick(rng, BACKGROUNDS, [1, 1.5, 1.5])
    return Variation(
        yaw=_truncnorm(rng, 22.0, YAW_RANGE),
        pitch=_truncnorm(rng, 9.0, PITCH_RANGE),
        roll=_truncnorm(rng, 5.0, ROLL_RANGE),
        smile=float(smile),
        mouth_open=float(mouth_open),
        blink=float(blink),
        gaze=(float(rng.normal(0, 0.012)), float(rng.normal(0, 0.006))),
        light_azimuth=float(rng.uniform(-70, 70)),
        light_elevation=float(rng.uniform(-5, 55)),
        light_intensity=float(rng.uniform(0.55, 0.95)),
        ambient=float(rng.uniform(0.35, 0.55)),
        light_colour=(float(light_colour[0]), float(light_colour[1]), float(light_colour[2])),
        background=background,
        background_colours=(_random_colour(rng), _random_colour(rng)),
        background_angle=float(rng.uniform(0, 2 * np.pi)),
        head_fraction=float(rng.uniform(0.52, 0.68)),
        offset=(float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.05, 0.05))),
        clothing=_random_colour(rng, sat=(0.0, 0.8), val=(0.1, 0.9)),
        glasses=bool(rng.random() < 0.15),
        glasses_colour=_random_colour(rng, sat=(0.0, 0.6), val=(0.05, 0.5)),
        hat=_pick(rng, HATS, [0.9, 0.05, 0.05]),
        hat_colour=_random_colour(rng, sat=(0.1, 0.9), val=(0.15, 0.9)),
        exposure=float(rng.uniform(0.9, 1.12)),
        noise=float(rng.uniform(0.0, 0.02)),
        detail_seed=int(rng.integers(2**31)),
    )


def _surface_z(e: Ellipsoid, x: float, y: float) -> float:
    """Front z of an axis-aligned ellipsoid at (x, y), or -inf where it is not there."""
    c, r = e.centre, e.radii
    s = 1 - ((x - c[0]) / r[0]) ** 2 - ((y - c[1]) / r[1]) ** 2
    return float(c[2] + r[2] * np.sqrt(s)) if s > 0 else -np.inf


def _ellipsoid(centre, radii, rotation=None) -> Ellipsoid:
    return Ellipsoid(
        np.asarray(centre, float), np.asarray(radii, float), np.eye(3) if rotation is None else rotation
    )


def head_layout(ident: Identity, var: Variation) -> Layout:
    """Primitives and features of ``ident``'s head with ``var``'s expression (head frame).

    Proportions follow adult faces: with the eyes 0.6 apart, the nose tip sits ~0.34
    below the eye line, the mouth ~0.6 below it and the chin ~1.1 below it.
    """
    hw, hh = ident.head_width, ident.head_height
    cranium = _ellipsoid((0, 0.18, -0.08), (0.76 * hw, 0.97 * hh, 0.94))
    jaw_drop = 0.06 * var.mouth_open
    jaw = _ellipsoid(
        (0, -0.32 - jaw_drop, 0.0),
        (
            0.7 * hw * ident.jaw_width,
            0.7 * ident.chin_length + jaw_drop / 2,
            0.76 + 0.04 * ident.cheek_fullness,
        ),
    )
    spacing = 0.3 * ident.eye_spacing
    eye_y = 0.08 + ident.eye_height
    eyes = np.array([[-spacing, eye_y], [spacing, eye_y]])
    nw, nl = ident.nose_width, ident.nose_length
    tip_y = eye_y - 0.34 * nl
    bridge = _ellipsoid((0, (eye_y + tip_y) / 2 + 0.02, 0.79), (0.06 * nw, 0.22 * nl, 0.13), _rot_x(-0.2))
    tip = _ellipsoid((0, tip_y, 0.86), (0.075 * nw, 0.075, 0.11))
    nose_base_y = tip_y - 0.065
    alae = tuple(_ellipsoid((s * 0.09 * nw, tip_y - 0.02, 0.78), (0.07 * nw, 0.06, 0.08)) for s in (-1, 1))
    es = ident.ear_size
    ears = tuple(
        _ellipsoid((s * 0.73 * hw, 0.0, -0.12), (0.09, 0.2 * es, 0.15), _rot_y(s * 0.35)) for s in (-1, 1)
    )
    mouth_y = eye_y - 0.61
    mouth_half = 0.21 * ident.mouth_width * (1 + 0.12 * var.smile)
    corner_y = mouth_y + 0.045 * var.smile - 0.01 * var.mouth_open
    skin = (cranium, jaw)

    def on_face(x: float, y: float) -> np.ndarray:
        return np.array([x, y, max(_surface_z(e, x, y) for e in skin)])

    nose_tip = tip.centre + np.array([0, 0, tip.radii[2]])
    landmarks = np.stack(
        [
            on_face(*eyes[0]),
            on_face(*eyes[1]),
            nose_tip,
            on_face(-mouth_half, corner_y),
            on_face(mouth_half, corner_y),
        ]
    )
    return Layout(
        cranium=cranium,
        jaw=jaw,
        nose=(bridge, tip),
        alae=alae,
        ears=ears,
        eyes=eyes,
        eye_half=(0.14 * ident.eye_size, 0.058 * ident.eye_size),
        iris_radius=0.06 * ident.eye_size,
        brow_y=0.17 + 0.02 * ident.eye_size,
        nose_tip=nose_tip,
        nose_base_y=nose_base_y,
        mouth_y=mouth_y,
        mouth_half_width=mouth_half,
        landmarks=landmarks,
        face_front_z=float(landmarks[:2, 2].mean()),
    )


def face_outline(layout: Layout) -> np.ndarray:
    """Points (N, 3) spanning the face (brow-top to chin, cheek to cheek) for the loose box."""
    pts = []
    for e, ys in ((layout.cranium, (0.1, 0.3, 0.45)), (layout.jaw, (-0.2, -0.45, -0.7, -0.9))):
        for ny in ys:
            for phi in np.radians([-80, -45, 0, 45, 80]):
                cy = np.sqrt(max(1 - ny**2, 0.0))
                local = np.array([np.sin(phi) * cy, ny, np.cos(phi) * cy])
                pts.append(e.centre + e.rotation @ (e.radii * local))
    chin = layout.jaw.centre + np.array([0, -layout.jaw.radii[1], 0.25 * layout.jaw.radii[2]])
    forehead = np.array([0.0, layout.eyes[0, 1] + 0.55, 0.75])
    return np.stack([*pts, chin, forehead])


def identity_record(ident: Identity) -> dict:
    """Plain-data attributes, one column each (for ``synthetic_identities.csv``)."""
    rec = {}
    for f in fields(ident):
        v = getattr(ident, f.name)
        if f.name == "mole":
            rec["mole_x"], rec["mole_y"] = ("", "") if v is None else (round(v[0], 4), round(v[1], 4))
        elif isinstance(v, tuple):
            rec.update({f"{f.name}_{c}": round(x, 4) for c, x in zip("rgb", v, strict=True)})
        elif isinstance(v, float):
            rec[f.name] = round(v, 4)
        else:
            rec[f.name] = v
    return rec
