#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Draw ballscore's CSV report (ballscore report=FILE, or ./pointcast demo --plot): tracking
error and loop latency over time, and their histograms, in one PNG.

    examples/plot_ballscore.py score.csv score.png [--fps 30] [--size 1200x800]

The CSV has the header frame,true_x,true_y,det_x,det_y,error_px,latency_ms (one row per scored
frame); time is the frame number over --fps, from the first scored frame."""
import argparse
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

COLUMNS = ["frame", "true_x", "true_y", "det_x", "det_y", "error_px", "latency_ms"]


def load(path):
    with open(path) as f:
        header = f.readline().strip().split(",")
    if header != COLUMNS:
        raise ValueError("%s: header %s, expected %s" % (path, ",".join(header), ",".join(COLUMNS)))
    rows = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    if rows.size == 0:
        raise ValueError("%s: no scored frame" % path)
    return {name: rows[:, i] for i, name in enumerate(COLUMNS)}


def pct(v, q):
    """Nearest-rank percentile, as ballscore reports it."""
    return np.percentile(v, q, method="inverted_cdf")


def plot(data, out, fps=30.0, size=(1200, 800), title=None):
    t = (data["frame"] - data["frame"][0]) / fps
    err, lat = data["error_px"], data["latency_ms"]
    dpi = 100
    fig, ax = plt.subplots(2, 2, figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    summary = "%d frames; error mean %.3f px, p99 %.3f px; latency p50 %.1f ms, p99 %.1f ms" % (
        len(err), err.mean(), pct(err, 99), pct(lat, 50), pct(lat, 99))
    fig.suptitle((title + "\n" if title else "") + summary, fontsize=10)
    ax[0, 0].plot(t, err, lw=0.8, color="tab:blue")
    ax[0, 0].set(title="tracking error", xlabel="time (s)", ylabel="error (px)")
    ax[0, 1].plot(t, lat, lw=0.8, color="tab:orange")
    ax[0, 1].set(title="loop latency", xlabel="time (s)", ylabel="latency (ms)")
    ax[1, 0].hist(err, bins=50, color="tab:blue")
    ax[1, 0].set(title="error histogram", xlabel="error (px)", ylabel="frames")
    ax[1, 1].hist(lat, bins=50, color="tab:orange")
    ax[1, 1].set(title="latency histogram", xlabel="latency (ms)", ylabel="frames")
    for a, v, unit in ((ax[1, 0], err, "px"), (ax[1, 1], lat, "ms")):
        for q, style in ((50, "--"), (99, ":")):
            x = pct(v, q)
            a.axvline(x, color="k", ls=style, lw=0.8, label="p%d %.3g %s" % (q, x, unit))
        a.legend(fontsize=8)
    for a in ax.flat:
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv")
    ap.add_argument("png")
    ap.add_argument("--fps", type=float, default=30.0, help="frame rate of the ball video (default 30)")
    ap.add_argument("--size", default="1200x800", help="WIDTHxHEIGHT in pixels (default 1200x800)")
    ap.add_argument("--title")
    args = ap.parse_args()
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
        print("%s: %s" % (args.png, plot(load(args.csv), args.png, args.fps, (w, h), args.title)))
    except (OSError, ValueError) as e:
        print("plot_ballscore: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
