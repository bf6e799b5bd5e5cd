# SPDX-License-Identifier: LGPL-2.1-or-later
"""A sender in a pointcast room written with aiortc: the viewer's WebRTC side tested against a
second, independent implementation (and the kind of Python peer pointcast must interoperate with).

  aiortc_peer.py --signaling ws://127.0.0.1:PORT/ws --room R --peer-id ID
                 --role offer|answer --kind ball|points [--token T]

ball: 320x240 video of a white ball bouncing on black, and for every frame a float32 .npy
  [[frame, x, y]] on data channel "points" (the ball's true centre in that frame).
points: the same video plus a (N, 3) float32 cloud (a sphere) 4 times a second.
Runs until killed. Prints "ready" once registered.
"""
import argparse
import asyncio
import io
import json
import math
import os
import sys
import urllib.parse

import numpy as np
import websockets
from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.sdp import candidate_from_sdp
from av import VideoFrame

# The frame mark's CRC and layout, as the README describes them (tests/ball/balltrack.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ball"))
from balltrack import WORD_BITS, crc16_ccitt_false, mark_layout  # noqa: E402

W, H, R = 320, 240, 14


def ball_at(n, top=0):
    # Bounces inside the frame (below the mark band when there is one); deterministic in n.
    lo_y = top + 30
    x = 30 + (n * 5) % (2 * (W - 60))
    y = lo_y + (n * 3) % (2 * (H - 30 - lo_y))
    if x > W - 30:
        x = 2 * (W - 30) - x
    if y > H - 30:
        y = 2 * (H - 30) - y
    return float(x), float(y)


def draw_mark(img, n):
    """ballsrc's frame mark (README "The frame mark"), written from its description."""
    per_row, rows, copies, band = mark_layout(W)
    f = n % (1 << 24)
    word = f << 16 | crc16_ccitt_false(f.to_bytes(3, "big"))
    img[:band] = 0
    for k in range(WORD_BITS * copies):
        if word >> (WORD_BITS - 1 - k % WORD_BITS) & 1:
            col, row = k % per_row, k // per_row
            img[16 * row:16 * row + 16, 16 * col:16 * col + 16] = 255
    return band


def npy(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


class BallTrack(VideoStreamTrack):
    def __init__(self, on_frame, mark):
        super().__init__()
        self.n = 0
        self.mark = mark
        self.on_frame = on_frame
        yy, xx = np.mgrid[0:H, 0:W]
        self.yy, self.xx = yy, xx

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        img = np.zeros((H, W, 3), np.uint8)
        top = draw_mark(img, self.n) + 4 if self.mark else 0
        x, y = ball_at(self.n, top)
        img[(self.xx - x) ** 2 + (self.yy - y) ** 2 <= R * R] = 255
        frame = VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        self.on_frame(self.n, x, y)
        self.n += 1
        return frame


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--signaling", required=True)
    ap.add_argument("--room", default="default")
    ap.add_argument("--peer-id", default="aiortc-sender")
    ap.add_argument("--role", choices=["offer", "answer"], default="offer")
    ap.add_argument("--kind", choices=["ball", "points"], default="ball")
    ap.add_argument("--token", default="")
    ap.add_argument("--mark", action="store_true", help="draw the frame number as ballsrc does")
    a = ap.parse_args()

    url = a.signaling
    if a.token:
        url += ("&" if "?" in url else "?") + "token=" + urllib.parse.quote(a.token)
    sessions = {}
    channels = set()

    def on_frame(n, x, y):
        if a.kind != "ball":
            return
        data = npy(np.array([[n, x, y]], np.float32))
        for ch in list(channels):
            if ch.readyState == "open":
                ch.send(data)

    async def cloud_loop():
        rng = np.random.default_rng(1)
        while True:
            await asyncio.sleep(0.25)
            if a.kind != "points":
                continue
            v = rng.standard_normal((2000, 3)).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            for ch in list(channels):
                if ch.readyState == "open":
                    ch.send(npy(v))

    async with websockets.connect(url) as ws:
        async def send(msg):
            await ws.send(json.dumps(msg))

        def new_pc(peer):
            pc = RTCPeerConnection()
            sessions[peer] = pc
            pc.addTrack(BallTrack(on_frame, a.mark))

            @pc.on("datachannel")
            def on_dc(ch):
                channels.add(ch)

            return pc

        async def offer_to(peer):
            pc = new_pc(peer)
            ch = pc.createDataChannel("points")
            channels.add(ch)
            await pc.setLocalDescription(await pc.createOffer())
            await send({"type": "offer", "target_id": peer,
                        "sdp": {"type": "offer", "sdp": pc.localDescription.sdp}})

        # An answer-only peer says so (as for the daemon's POST /offer): a page in role auto
        # that joins after it then offers at once instead of waiting for an offer.
        await send({"type": "register", "client_id": a.peer_id, "room_id": a.room,
                    "client_type": "answerer" if a.role == "answer" else "aiortc-" + a.kind})
        asyncio.ensure_future(cloud_loop())
        async for raw in ws:
            m = json.loads(raw)
            t = m.get("type")
            if t == "registered":
                print("ready", flush=True)
                if a.role == "offer":
                    types = m.get("peer_types", {})
                    for p in m.get("peers", []):
                        pid = p if isinstance(p, str) else p.get("client_id")
                        if types.get(pid) == "browser":
                            await offer_to(pid)
            elif t == "peer_joined" and a.role == "offer" and m.get("client_type") == "browser":
                await offer_to(m["client_id"])
            elif t == "offer" and a.role == "answer":
                pc = new_pc(m["from_id"])
                await pc.setRemoteDescription(RTCSessionDescription(**m["sdp"]))
                await pc.setLocalDescription(await pc.createAnswer())
                await send({"type": "answer", "target_id": m["from_id"],
                            "sdp": {"type": "answer", "sdp": pc.localDescription.sdp}})
            elif t == "answer":
                pc = sessions.get(m["from_id"])
                if pc:
                    await pc.setRemoteDescription(RTCSessionDescription(**m["sdp"]))
            elif t == "ice_candidate":
                pc = sessions.get(m.get("from_id"))
                c = m.get("candidate") or {}
                text = c.get("candidate") or ""
                if pc and text:
                    cand = candidate_from_sdp(text.split(":", 1)[1])
                    cand.sdpMid = c.get("sdpMid")
                    cand.sdpMLineIndex = c.get("sdpMLineIndex")
                    await pc.addIceCandidate(cand)
            elif t == "peer_left":
                pc = sessions.pop(m["client_id"], None)
                if pc:
                    await pc.close()
            elif t == "error":
                print("signaling error:", m, file=sys.stderr, flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
