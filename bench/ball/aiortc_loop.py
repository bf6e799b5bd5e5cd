# SPDX-License-Identifier: LGPL-2.1-or-later
"""The aiortc system's ball loop, the reference for `./pointcast demo`'s CPU and memory: an aiortc
1.4 sender (NumPy/OpenCV frames, 640x480 at 30 fps, the README's frame mark) and
tests/ball/aiortc_tracker.py (aiortc + NumPy/OpenCV) as two processes over aiortc's
TcpSocketSignaling; detections come back on the data channel "detections". Like the demo, it
scores for --seconds from the first detection and then prints both processes' CPU time and peak
RSS (whole run, set-up included), the detections' latency and the error against the truth.

    /usr/bin/python3 bench/ball/aiortc_loop.py --seconds 20
"""
import argparse
import asyncio
import fractions
import io
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS_BALL = os.path.join(HERE, "..", "..", "tests", "ball")
W, H, FPS, R = 640, 480, 30, 20


def mark_cells(frame):
    """The frame mark (README "Ball tracking"): 24-bit number + CRC-16, MSB first, repeated."""
    sys.path.insert(0, TESTS_BALL)
    import balltrack

    per_row, rows, copies, band = balltrack.mark_layout(W)
    n = frame & 0xFFFFFF
    word = (n << 16) | balltrack.crc16_ccitt_false(n.to_bytes(3, "big"))
    bits = [(word >> (39 - i)) & 1 for i in range(40)]
    return per_row, rows, band, [bits[i % 40] if i < copies * 40 else 0 for i in range(rows * per_row)]


def sender(port, seconds):
    import cv2
    import numpy as np
    from aiortc import RTCPeerConnection, VideoStreamTrack
    from aiortc.contrib.signaling import BYE, TcpSocketSignaling
    from av import VideoFrame

    per_row, rows, band, _ = mark_cells(0)
    truth = {}  # frame -> (x, y, time it was made)

    class BallTrack(VideoStreamTrack):
        def __init__(self):
            super().__init__()
            self.n = 0
            self.x, self.y, self.vx, self.vy = 100.0, 200.0, 7.3, 5.1
            self.t0 = None

        async def recv(self):
            if self.t0 is None:
                self.t0 = time.monotonic()
            due = self.t0 + self.n / FPS
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            img = np.full((H, W, 3), (40, 90, 30), np.uint8)
            _, _, _, cells = mark_cells(self.n)
            for i, b in enumerate(cells):
                r, c = divmod(i, per_row)
                img[r * 16:(r + 1) * 16, c * 16:(c + 1) * 16] = 255 if b else 0
            for axis in (0, 1):
                lo, hi = R, (W if axis == 0 else H) - R
                if axis == 1:
                    lo += band + 2
                p, v = (self.x, self.vx) if axis == 0 else (self.y, self.vy)
                p += v
                if p < lo or p > hi:
                    v, p = -v, min(max(p, lo), hi)
                if axis == 0:
                    self.x, self.vx = p, v
                else:
                    self.y, self.vy = p, v
            # Sub-pixel centre through OpenCV's fixed-point shift.
            cv2.circle(img, (int(self.x * 16), int(self.y * 16)), R * 16, (40, 40, 230), -1,
                       cv2.LINE_AA, 4)
            frame = VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts = self.n * (90000 // FPS)
            frame.time_base = fractions.Fraction(1, 90000)
            truth[self.n & 0xFFFFFF] = (self.x, self.y, time.monotonic())
            self.n += 1
            return frame

    stats = {"first": None, "lat": [], "err": []}

    async def run():
        signaling = TcpSocketSignaling("127.0.0.1", port)
        pc = RTCPeerConnection()
        pc.addTrack(BallTrack())
        pc.createDataChannel("control")  # so that the offer has SCTP for the tracker's channel

        @pc.on("datachannel")
        def on_channel(ch):
            @ch.on("message")
            def on_message(msg):
                now = time.monotonic()
                rows = np.load(io.BytesIO(msg))
                for f, x, y in rows.reshape(-1, 3):
                    t = truth.get(int(f))
                    if t is None:
                        continue
                    if stats["first"] is None:
                        stats["first"] = now
                        print("first detection", flush=True)
                    stats["lat"].append((now - t[2]) * 1000.0)
                    stats["err"].append(float(np.hypot(x - t[0], y - t[1])))

        await signaling.connect()
        await pc.setLocalDescription(await pc.createOffer())
        print("offer ready", flush=True)  # send() listens (TcpSocketSignaling's server side)
        await signaling.send(pc.localDescription)
        while True:
            obj = await signaling.receive()
            if obj is BYE or obj is None:
                break
            if hasattr(obj, "sdp"):
                await pc.setRemoteDescription(obj)
                break
        await asyncio.sleep(seconds + 60)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    finally:
        if stats["lat"]:
            lat = np.array(stats["lat"])
            err = np.array(stats["err"])
            print(f"aiortc sender: {len(lat)} detections, error mean {err.mean():.3f} px p99 "
                  f"{np.percentile(err, 99):.3f} px, latency p50 {np.percentile(lat, 50):.1f} ms "
                  f"p99 {np.percentile(lat, 99):.1f} ms", flush=True)


def usage(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return cpu, hwm / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--role", choices=["driver", "sender"], default="driver")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    if args.role == "sender":
        sender(args.port, args.seconds)
        return 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    snd = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--role", "sender", "--port",
                            str(port), "--seconds", str(args.seconds)], stdout=subprocess.PIPE,
                           text=True)
    if "offer ready" not in snd.stdout.readline():
        raise SystemExit("the aiortc sender did not start")
    time.sleep(0.2)  # the tracker's imports take longer than the sender's listen()
    trk = subprocess.Popen([sys.executable, os.path.join(TESTS_BALL, "aiortc_tracker.py"), "--port",
                            str(port)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = snd.stdout.readline()
            if not line or "first detection" in line:
                break
        else:
            raise SystemExit("no detection came back within 60 s")
        time.sleep(args.seconds)
        (sc, sr), (tc, tr) = usage(snd.pid), usage(trk.pid)
        snd.send_signal(2)
        report = snd.communicate(timeout=30)[0].strip()
        print(report)
        print(f"aiortc system: sender {sc:.1f} s CPU, {sr:.0f} MB peak RSS; tracker {tc:.1f} s CPU, "
              f"{tr:.0f} MB peak RSS; total {sc + tc:.1f} s, {sr + tr:.0f} MB", flush=True)
    finally:
        for p in (trk, snd):
            if p.poll() is None:
                p.kill()
            p.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
