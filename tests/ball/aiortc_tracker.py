# SPDX-License-Identifier: LGPL-2.1-or-later
"""A ball tracker written the way the original aiortc systems were: aiortc + NumPy/OpenCV, with
aiortc's TcpSocketSignaling. It answers ball-sender's offer, detects the ball in every frame
(balltrack.py: the README's mark encoding and a weighted centroid), and sends one numpy.save()
array of [frame, x, y] rows per frame back on the data channel "detections".

    POINTCAST_SIGNALING=tcp://127.0.0.1:9999 ./pointcast launch ball-sender --set rtc.role=offerer &
    /usr/bin/python3 tests/ball/aiortc_tracker.py --port 9999
"""
import argparse
import asyncio
import io
import logging
import os
import sys

import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.signaling import BYE, TcpSocketSignaling

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import balltrack  # noqa: E402


def npy_bytes(rows):
    buf = io.BytesIO()
    np.save(buf, np.asarray(rows, dtype=np.float32).reshape(-1, 3))
    return buf.getvalue()


async def track_video(track, channel, stats):
    last_mark, since = None, 0
    while True:
        try:
            frame = await track.recv()
        except Exception:  # the track ended
            return
        luma = frame.to_ndarray(format="gray")
        bgr = frame.to_ndarray(format="bgr24")
        n = balltrack.decode_mark(luma)
        if n is not None:
            last_mark, since = n, 0
        else:
            since += 1
        number = n if n is not None else (last_mark + since if last_mark is not None else stats["frames"])
        _, _, _, band = balltrack.mark_layout(bgr.shape[1])
        xy = balltrack.detect_ball(bgr, band if last_mark is not None else -2)
        rows = [[number, xy[0], xy[1]]] if xy is not None else []
        stats["frames"] += 1
        stats["detections"] += len(rows)
        if channel.readyState == "open":
            channel.send(npy_bytes(rows))


async def run(host, port, seconds):
    signaling = TcpSocketSignaling(host, port)
    pc = RTCPeerConnection()
    stats = {"frames": 0, "detections": 0}
    channel = pc.createDataChannel("detections")
    tasks = []

    @pc.on("track")
    def on_track(track):
        if track.kind == "video":
            tasks.append(asyncio.ensure_future(track_video(track, channel, stats)))

    await signaling.connect()

    async def signal_loop():
        while True:
            obj = await signaling.receive()
            if isinstance(obj, RTCSessionDescription):
                await pc.setRemoteDescription(obj)
                if obj.type == "offer":
                    await pc.setLocalDescription(await pc.createAnswer())
                    await signaling.send(pc.localDescription)
            elif obj is BYE or obj is None:
                return
            else:
                await pc.addIceCandidate(obj)

    loop_task = asyncio.ensure_future(signal_loop())
    try:
        await asyncio.wait([loop_task], timeout=seconds)
    finally:
        print(f"aiortc tracker: {stats['frames']} frames, {stats['detections']} detections", flush=True)
        for t in tasks:
            t.cancel()
        await pc.close()
        await signaling.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1234)
    parser.add_argument("--seconds", type=float, default=3600, help="stop after this long")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    asyncio.run(run(args.host, args.port, args.seconds))


if __name__ == "__main__":
    main()
