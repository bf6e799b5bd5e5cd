#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Receive NumPy arrays from a room: every numpy.save message on the data channel "points"
becomes a numpy.ndarray (float32, rows x columns) with its PTS.

    ./pointcast serve &  ./pointcast launch points-sender --room lab &
    GST_PLUGIN_PATH=build/gst examples/python/receive_arrays.py --room lab --count 10
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pointcast_app as pc  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--signaling", help="default: $POINTCAST_SIGNALING or ws://127.0.0.1:8765/ws")
    ap.add_argument("--room", help="default: $POINTCAST_ROOM or 'default'")
    ap.add_argument("--peer-id")
    ap.add_argument("--label", default="points", help="data channel label (default points)")
    ap.add_argument("--count", type=int, help="stop after this many arrays")
    ap.add_argument("--timeout", type=float, default=30, help="stop when nothing came for this long (s)")
    ap.add_argument("--save", help="write the arrays to this .npz (arr_0, arr_1, ...) and their PTS (pts)")
    args = ap.parse_args()

    received, stamps = [], []
    with pc.ArrayReceiver(label=args.label, signaling=args.signaling, room=args.room,
                          peer_id=args.peer_id, peer_type="receiver", end_with_peers=True) as rx:
        for array, pts in rx.arrays(count=args.count, timeout_s=args.timeout):
            ts = "none" if pts == pc.Gst.CLOCK_TIME_NONE else "%.3f s" % (pts / pc.Gst.SECOND)
            print("array %d: shape %s %s, pts %s, mean %s" % (len(received), array.shape, array.dtype, ts,
                                                              np.round(array.mean(axis=0), 3) if len(array) else "-"),
                  flush=True)
            received.append(array)
            stamps.append(pts)
    if args.save:
        np.savez(args.save, *received, pts=np.array(stamps, dtype=np.uint64))
    print("received %d arrays" % len(received))
    return 0 if received and (args.count is None or len(received) == args.count) else 1


if __name__ == "__main__":
    sys.exit(main())
