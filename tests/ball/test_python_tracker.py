# SPDX-License-Identifier: LGPL-2.1-or-later
"""The README's mark encoding, implemented independently in Python, reads every frame of
ballsrc's video after VP8 coding, and a NumPy tracker finds the ball where ballsrc says it is."""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import balltrack  # noqa: E402

W, H, N = 640, 480, 120


def main():
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "frames.bgr")
        truth = os.path.join(tmp, "truth.csv")
        # Truth from ballscore's report of balldetect on the uncoded frames (sub-0.1 px).
        cmd = ["gst-launch-1.0", "-q", "-e",
               "ballsrc", "name=ball", "is-live=false", "mark=true", f"num-buffers={N}", "speed=300",
               "background=0xff205030", "color=0xffffa000", "!",
               f"video/x-raw,width={W},height={H},framerate=30/1", "!", "tee", "name=t",
               "t.", "!", "queue", "!", "videoconvert", "!", "vp8enc", "target-bitrate=200000",
               "deadline=1", "!", "vp8dec", "!", "videoconvert", "!", "video/x-raw,format=BGR", "!",
               "filesink", f"location={raw}",
               "t.", "!", "queue", "!", "balldetect", "!", "ballscore", "source=ball", f"report={truth}"]
        subprocess.run(cmd, check=True, timeout=120, stdout=subprocess.DEVNULL)
        frames = np.fromfile(raw, dtype=np.uint8).reshape(-1, H, W, 3)
        assert len(frames) == N, len(frames)
        rows = np.loadtxt(truth, delimiter=",", skiprows=1)
        true_xy = {int(r[0]): (r[1], r[2]) for r in rows}
        _, _, _, band = balltrack.mark_layout(W)
        errors = []
        for i, f in enumerate(frames):
            luma = (0.299 * f[..., 2] + 0.587 * f[..., 1] + 0.114 * f[..., 0])
            n = balltrack.decode_mark(luma)
            assert n == i, f"frame {i}: mark read as {n}"
            xy = balltrack.detect_ball(f, band)
            assert xy is not None, f"frame {i}: no ball"
            errors.append(np.hypot(xy[0] - true_xy[i][0], xy[1] - true_xy[i][1]))
        errors = np.array(errors)
        print(f"python tracker: {N} marks read, error mean {errors.mean():.3f} px, max {errors.max():.3f} px")
        assert errors.mean() < 0.3 and errors.max() < 1.5, errors


if __name__ == "__main__":
    main()
