#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The aiortc reference sender for bench/fanout: the frames in FRAMES (raw I420, W x H, looped at
30 fps), one RTCPeerConnection per viewer that joins the room on pointcast-signaling, each with
its own encoder (that is how aiortc sends: per RTCRtpSender). Each peer reads the frames through
a track of its own: with one track shared by MediaRelay, PyAV 10 crashes (two encoder threads
convert the same frame at once). aiortc does not trickle, so its offers carry "trickle": false.

usage: aiortc_sender.py WS_URL ROOM FRAMES W H"""
import asyncio
import fractions
import json
import logging
import sys
import time

import numpy as np
import websockets
from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from av import VideoFrame


class Frames(VideoStreamTrack):
    def __init__(self, frames):
        super().__init__()
        self.frames = frames
        self.i = 0
        self.t0 = None

    async def recv(self):
        if self.t0 is None:
            self.t0 = time.monotonic()
        due = self.t0 + self.i / 30
        await asyncio.sleep(max(0, due - time.monotonic()))
        frame = VideoFrame.from_ndarray(self.frames[self.i % len(self.frames)], format="yuv420p")
        frame.pts = self.i * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        self.i += 1
        return frame


async def main(url, room, path, w, h):
    logging.getLogger("aiortc").setLevel(logging.CRITICAL)
    frames = np.fromfile(path, dtype=np.uint8).reshape(-1, h * 3 // 2, w)
    pcs = {}
    async with websockets.connect(url, max_size=1 << 20) as ws:
        await ws.send(json.dumps({"type": "register", "client_id": "aiortc-sender",
                                  "room_id": room, "client_type": "sender"}))

        async def offer_to(peer):
            pc = RTCPeerConnection()
            pcs[peer] = pc
            pc.addTrack(Frames(frames))
            await pc.setLocalDescription(await pc.createOffer())
            await ws.send(json.dumps({"type": "offer", "target_id": peer, "trickle": False,
                                      "sdp": {"type": "offer", "sdp": pc.localDescription.sdp}}))

        async for text in ws:
            m = json.loads(text)
            if m["type"] == "registered":
                for p in m.get("peers", []):
                    await offer_to(p if isinstance(p, str) else p["client_id"])
            elif m["type"] == "peer_joined":
                await offer_to(m["client_id"])
            elif m["type"] == "answer" and m.get("from_id") in pcs:
                await pcs[m["from_id"]].setRemoteDescription(
                    RTCSessionDescription(sdp=m["sdp"]["sdp"], type="answer"))
            elif m["type"] == "peer_left" and m["client_id"] in pcs:
                await pcs.pop(m["client_id"]).close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
