#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A ball tracker in Python/OpenCV for the ball-tracking loop: decoded frames come from rtcpeer
through an appsink as NumPy BGR images, detections [frame, x, y] go back through an appsrc on the
data channel "detections", where the sender's ballscore scores them like any tracker's.

    ./pointcast serve &  ./pointcast launch ball-sender --room lab &
    GST_PLUGIN_PATH=build/gst examples/python/ball_tracker.py --room lab

The frame number is read from ballsrc's frame mark (README "The frame mark"); the ball's centre
is the centroid of each pixel's ball coverage, estimated from its colour between background and
ball (the disc is anti-aliased, so that centroid is its centre)."""
import argparse
import os
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pointcast_app as pc  # noqa: E402

PIPELINE = (
    "rtcpeer name=rtc peer-type=ball-tracker role=auto "
    # A leaky queue of 30 frames (1 s): a Python thread descheduled on a busy machine catches up
    # (about 4 ms a frame) instead of losing frames (with 8, a 0.64 s stall at load 10 lost 6 %);
    # only a longer stall drops the oldest.
    "rtc.video_0 ! queue max-size-buffers=30 max-size-time=0 max-size-bytes=0 leaky=downstream ! videoconvert "
    "! video/x-raw,format=BGR ! appsink name=frames sync=false max-buffers=2 "
    "appsrc name=detections format=time is-live=true do-timestamp=true "
    "caps=application/x-points,columns=3 ! npypack ! rtc.data_detections")


def find_ball(bgr, top):
    """(x, y) of the ball's centre in a BGR image, searching rows from `top` down; or None."""
    img = bgr[top:]
    coarse = img[::4, ::4]
    background = np.median(coarse.reshape(-1, 3), axis=0)
    diff = np.abs(coarse.astype(np.int16) - background.astype(np.int16)).max(axis=2)
    peak = int(diff.max())
    if peak < 32:
        return None
    x, y, w, h = cv2.boundingRect(cv2.findNonZero((diff > peak // 2).astype(np.uint8)))
    y0, y1 = max(0, y * 4 - 8), min(img.shape[0], (y + h) * 4 + 8)
    x0, x1 = max(0, x * 4 - 8), min(img.shape[1], (x + w) * 4 + 8)
    roi = img[y0:y1, x0:x1].astype(np.float32) - background.astype(np.float32)
    inside = np.abs(roi).max(axis=2) >= 0.75 * peak
    ball = roi[inside].mean(axis=0)
    # Coverage: where each pixel lies between background (0) and ball colour (1); codec noise
    # near 0 and 1 is clipped away.
    cover = np.clip(((roi @ ball) / float(ball @ ball) - 0.1) / 0.8, 0.0, 1.0)
    m = cv2.moments(cover)
    if m["m00"] <= 0:
        return None
    return m["m10"] / m["m00"] + x0, m["m01"] / m["m00"] + y0 + top


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--signaling", help="default: $POINTCAST_SIGNALING or ws://127.0.0.1:8765/ws")
    ap.add_argument("--room", help="default: $POINTCAST_ROOM or 'default'")
    ap.add_argument("--peer-id")
    ap.add_argument("--seconds", type=float, help="stop after this long (default: until the sender leaves)")
    args = ap.parse_args()

    p = pc.Pipeline(PIPELINE, signaling=args.signaling, room=args.room, peer_id=args.peer_id)
    frames, out = p.pipeline.get_by_name("frames"), p.pipeline.get_by_name("detections")
    p.start()
    start, seen, unread, last = time.monotonic(), 0, 0, time.monotonic()
    try:
        while args.seconds is None or time.monotonic() - start < args.seconds:
            sample = frames.try_pull_sample(int(0.1 * pc.Gst.SECOND))
            p.poll()
            if sample is None:
                # The sender left and nothing came for a while: done.
                if seen and time.monotonic() - last > 5:
                    break
                continue
            last = time.monotonic()
            s = sample.get_caps().get_structure(0)
            w, h = s.get_value("width"), s.get_value("height")
            buf = sample.get_buffer()
            ok, info = buf.map(pc.Gst.MapFlags.READ)
            try:
                # BGR rows are padded to 4 bytes by GStreamer's default stride.
                stride = (w * 3 + 3) & ~3
                bgr = np.ndarray((h, w, 3), np.uint8, info.data, strides=(stride, 3, 1))
                frame = pc.read_mark(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
                xy = find_ball(bgr, pc.mark_band(w) + 2) if frame is not None else None
            finally:
                buf.unmap(info)
            seen += 1
            if frame is None:
                unread += 1
                continue
            rows = np.array([[frame, xy[0], xy[1]]] if xy else np.zeros((0, 3)), dtype="<f4")
            out.push_buffer(pc.Gst.Buffer.new_wrapped(rows.tobytes()))
    finally:
        p.stop()
    print("ball_tracker: %d frames, %d without a readable mark" % (seen, unread))
    return 0 if seen else 1


if __name__ == "__main__":
    sys.exit(main())
