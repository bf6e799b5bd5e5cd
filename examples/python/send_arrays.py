#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Send NumPy arrays from Python to a room: appsrc ! npypack ! rtcpeer. Every peer in the room
(a points-receiver pipeline, receive_arrays.py, the web viewer, an aiortc program) gets each array
as numpy.save bytes on the data channel "points".

    GST_PLUGIN_PATH=build/gst examples/python/send_arrays.py --room lab --count 20 --rate 4
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pointcast_app as pc  # noqa: E402


def make_array(i):
    """Array i of the sequence: a rotating ring of 50 + i points (x, y, z); deterministic, so a
    receiver can check what it got."""
    n = 50 + i
    t = np.linspace(0, 2 * np.pi, n, endpoint=False) + 0.1 * i
    return np.stack([np.cos(t), np.sin(t), np.full(n, 0.01 * i)], axis=1).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--signaling", help="default: $POINTCAST_SIGNALING or ws://127.0.0.1:8765/ws")
    ap.add_argument("--room", help="default: $POINTCAST_ROOM or 'default'")
    ap.add_argument("--peer-id")
    ap.add_argument("--label", default="points")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--rate", type=float, default=4, help="arrays per second")
    ap.add_argument("--peers", type=int, default=1, help="wait until this many peers have the channel open")
    args = ap.parse_args()

    with pc.ArraySender(label=args.label, wait_for_peers=args.peers, signaling=args.signaling,
                        room=args.room, peer_id=args.peer_id, peer_type="points-sender") as tx:
        for i in range(args.count):
            tx.send(make_array(i))
            time.sleep(1 / args.rate)
        # rtcpeer posts EOS once every peer got everything.
        if not tx.finish():
            print("the arrays were not all delivered in time", file=sys.stderr)
            return 1
    print("sent %d arrays" % args.count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
