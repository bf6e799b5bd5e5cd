#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Draw data/ball.png: a shaded ball on a transparent square (RGBA, PNG).

The ball is centred, fills the square up to a one-pixel margin, and has an anti-aliased rim: each
pixel's alpha is the fraction of it covered by the disc (4x4 supersampling). Shading is Lambert
diffuse plus a Phong highlight from a light at the upper left, so the sprite reads as a sphere when
it moves over black in tests/generate_test_video.sh and in ballsrc (image-location).

Usage: /usr/bin/python3 data/make_ball.py [--size 64] [--color R,G,B] [--output data/ball.png]
Deterministic: equal arguments give byte-identical files.
"""
import argparse
import os
import sys

import cv2
import numpy as np

SUPERSAMPLE = 4


def parse_color(text):
    try:
        rgb = [int(v) for v in text.split(",")]
    except ValueError:
        rgb = []
    if len(rgb) != 3 or any(v < 0 or v > 255 for v in rgb):
        raise argparse.ArgumentTypeError(f"colour must be R,G,B with values 0-255, got {text!r}")
    return np.array(rgb, dtype=np.float64) / 255.0


def render(size, rgb):
    """Return a size x size x 4 uint8 BGRA image of the ball."""
    n = size * SUPERSAMPLE
    # Sample centres in pixel units of the final image; the disc is centred in the square.
    coords = (np.arange(n) + 0.5) / SUPERSAMPLE
    x, y = np.meshgrid(coords, coords)
    centre = size / 2.0
    radius = size / 2.0 - 1.0
    nx = (x - centre) / radius
    ny = (y - centre) / radius
    r2 = nx * nx + ny * ny
    inside = r2 <= 1.0
    nz = np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))

    light = np.array([-0.45, -0.55, 0.70])
    light /= np.linalg.norm(light)
    diffuse = np.clip(nx * light[0] + ny * light[1] + nz * light[2], 0.0, 1.0)
    # Reflection of the light about the normal, seen from the viewer at +z.
    dot = nx * light[0] + ny * light[1] + nz * light[2]
    rz = 2.0 * dot * nz - light[2]
    specular = np.clip(rz, 0.0, 1.0) ** 24

    ambient = 0.22
    shade = ambient + (1.0 - ambient) * diffuse
    colour = shade[..., None] * rgb[None, None, :] + 0.85 * specular[..., None]
    colour = np.clip(colour, 0.0, 1.0)
    colour[~inside] = 0.0

    def downsample(a):
        return a.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE, *a.shape[2:]).mean(axis=(1, 3))

    coverage = downsample(inside.astype(np.float64))
    # Average colour over the covered samples only (premultiplied -> straight alpha).
    summed = downsample(colour)
    with np.errstate(invalid="ignore", divide="ignore"):
        straight = np.where(coverage[..., None] > 0, summed / coverage[..., None], 0.0)

    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    rgba[..., :3] = np.round(straight * 255.0).astype(np.uint8)
    rgba[..., 3] = np.round(coverage * 255.0).astype(np.uint8)
    return cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA)


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description="Draw the ball sprite used by pointcast.")
    parser.add_argument("--size", type=int, default=64, help="width = height in pixels (default 64)")
    parser.add_argument("--color", type=parse_color, default=parse_color("255,140,30"),
                        help="base colour R,G,B (default 255,140,30: orange)")
    parser.add_argument("--output", default=os.path.join(here, "ball.png"),
                        help="PNG to write (default data/ball.png next to this script)")
    args = parser.parse_args(argv)
    if args.size < 8 or args.size > 4096:
        parser.error(f"--size must be between 8 and 4096, got {args.size}")

    image = render(args.size, args.color)
    # Fixed compression level keeps the output byte-identical between runs.
    if not cv2.imwrite(args.output, image, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        print(f"make_ball.py: cannot write {args.output}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({args.size}x{args.size} RGBA)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
