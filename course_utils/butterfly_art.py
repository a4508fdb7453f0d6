"""Procedurally drawn butterflies: the offline stand-in for the Smithsonian butterflies.

Used by the butterflies loader (``load_butterflies``) when the Hub cannot be reached. Every
image is drawn from its own seed, so image ``i`` is the same on every machine. The drawings
share what a 32 px model learns from the real set: a light background, a dark body, two
mirror-symmetric pairs of coloured wings with darker margins, spots and veins.
"""
from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image


def _ellipse(u, v, x0, y0, a, b, angle):
    """Ellipse value at (u, v): below 1 inside, 1 on the edge."""
    c, s = np.cos(angle), np.sin(angle)
    du, dv = u - x0, v - y0
    return ((du * c + dv * s) / a) ** 2 + ((-du * s + dv * c) / b) ** 2


def _coverage(e, softness):
    """Anti-aliased coverage of the shape whose ellipse value is ``e``."""
    return np.clip((1.0 - e) / softness, 0.0, 1.0)[..., None]


def _hsv(h, s, v):
    return np.array(colorsys.hsv_to_rgb(h % 1.0, np.clip(s, 0, 1), np.clip(v, 0, 1)))


def draw_butterfly(seed: int, size: int = 128) -> Image.Image:
    """Draw butterfly number ``seed`` as an RGB image of ``size`` x ``size`` pixels."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    u = (xs + 0.5) / size * 2 - 1
    v = (ys + 0.5) / size * 2 - 1
    # A slight tilt and offset, as specimens are never pinned perfectly straight.
    tilt = rng.normal(0, 0.12)
    c, s = np.cos(tilt), np.sin(tilt)
    u, v = c * u - s * v - rng.normal(0, 0.04), s * u + c * v - rng.normal(0, 0.04)
    scale = rng.uniform(0.8, 1.05)
    u, v = u / scale, v / scale
    au = np.abs(u)  # mirror symmetry: draw the right half, reflect it

    tone = rng.uniform(0.88, 0.99)
    background = np.array([tone, tone, tone]) + rng.normal(0, 0.015, 3)
    img = np.broadcast_to(background, (size, size, 3)).copy()
    soft = 6.0 / size

    hue = rng.uniform()
    base = _hsv(hue, rng.uniform(0.45, 1.0), rng.uniform(0.55, 1.0))
    second = _hsv(hue + rng.choice([0.0, 0.08, 0.5, -0.1]), rng.uniform(0.3, 1.0), rng.uniform(0.5, 1.0))
    margin = _hsv(hue + rng.uniform(-0.05, 0.05), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.3))
    spot = _hsv(rng.uniform(), rng.uniform(0.0, 0.6), rng.uniform(0.7, 1.0))

    fore = dict(x0=rng.uniform(0.38, 0.5), y0=rng.uniform(-0.38, -0.25), a=rng.uniform(0.38, 0.5),
                b=rng.uniform(0.24, 0.32), angle=rng.uniform(-0.7, -0.35))
    hind = dict(x0=rng.uniform(0.25, 0.36), y0=rng.uniform(0.2, 0.32), a=rng.uniform(0.24, 0.34),
                b=rng.uniform(0.2, 0.28), angle=rng.uniform(0.3, 0.8))
    band = rng.uniform(0.55, 0.8)  # where the dark margin starts, as a fraction of the wing
    for wing, colour in ((hind, second), (fore, base)):
        e = _ellipse(au, v, **wing)
        inside = _coverage(e, soft)
        # Colour shades towards the margin; veins are thin dark rays from the wing's root.
        radial = np.clip((e - band) / (1 - band), 0, 1)[..., None]
        wing_rgb = colour * (1 - radial) + margin * radial
        angle = np.arctan2(v - wing["y0"] * 0.2, au + 1e-6)
        veins = ((np.abs(np.sin(angle * rng.integers(5, 9))) < 0.12) & (e < band))[..., None] * 0.35
        wing_rgb = wing_rgb * (1 - veins) + margin * veins
        img = img * (1 - inside) + wing_rgb * inside

    for _ in range(rng.integers(1, 4)):  # spots on the forewings, mirrored like everything else
        x0 = fore["x0"] + rng.uniform(-0.15, 0.2)
        y0 = fore["y0"] + rng.uniform(-0.12, 0.1)
        r = rng.uniform(0.035, 0.08)
        inside = _coverage(_ellipse(au, v, x0, y0, r, r, 0.0), soft * 2) * (_ellipse(au, v, **fore) < 0.9)[..., None]
        img = img * (1 - inside) + spot * inside

    body_colour = _hsv(hue, 0.3, rng.uniform(0.05, 0.2))
    body = _coverage(_ellipse(u, v, 0.0, 0.02, 0.045, rng.uniform(0.42, 0.5), 0.0), soft)
    head = _coverage(_ellipse(u, v, 0.0, -0.45, 0.06, 0.06, 0.0), soft)
    # Antennae: two thin arcs from the head, up and outwards.
    t = np.clip(-(v + 0.45) / 0.35, 0, 1)
    antenna = ((np.abs(au - (0.03 + 0.25 * t**1.5)) < 0.012) & (v < -0.45) & (v > -0.8))[..., None]
    for mask in (body, head, antenna.astype(float)):
        img = img * (1 - mask) + body_colour * mask

    img = np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1)  # a little photographic grain
    return Image.fromarray((img * 255).round().astype(np.uint8), "RGB")



def draw_butterflies(n: int, size: int = 128, first_seed: int = 0) -> list[Image.Image]:
    """Draw ``n`` butterflies (seeds ``first_seed`` .. ``first_seed + n - 1``).

    Used in "Introduction to Diffusers" (section "Data"), where the data-pipeline cell shows the
    resize, scaling and flip on four full-size pictures: these when the Hub cannot be reached.
    """
    return [draw_butterfly(first_seed + i, size) for i in range(n)]
