#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The aiortc system for bench_net.py's points stream: an aiortc 1.4 sender and receiver (the
original NumPy points scripts' shape) on one reliable ordered channel "points", signaling over
aiortc's TcpSocketSignaling (the sender offers and listens, the receiver connects).

  send HOST PORT SENT_DIR N RATE POINTS TIMEOUT  sends N counter arrays (POINTS x 3 float32,
      numpy.save) at RATE Hz, each also written to SENT_DIR, then waits until its SCTP holds
      nothing unacknowledged (at most TIMEOUT s) and prints {"drain_s", "all_acked"} as JSON
  recv HOST PORT RECV_DIR  writes every message to RECV_DIR/%06d.npy until terminated
"""
import asyncio
import io
import json
import logging
import os
import sys
import time

import numpy as np
from aiortc import RTCPeerConnection
from aiortc.contrib.signaling import BYE, TcpSocketSignaling


def counter(i, points):
    """pointsrc pattern=counter's buffer i: float(((i*points + r)*3 + c) mod 2^24)."""
    values = (np.arange(points * 3, dtype=np.int64) + i * points * 3) % (1 << 24)
    return values.astype(np.float32).reshape(points, 3)


def npy(array):
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


async def send(host, port, sent_dir, n, rate, points, timeout):
    sig = TcpSocketSignaling(host, port)
    pc = RTCPeerConnection()
    channel = pc.createDataChannel("points")
    opened = asyncio.Event()
    channel.on("open", opened.set)
    await pc.setLocalDescription(await pc.createOffer())
    await sig.send(pc.localDescription)
    await pc.setRemoteDescription(await sig.receive())
    await asyncio.wait_for(opened.wait(), 30)
    start = time.monotonic()
    for i in range(n):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        data = npy(counter(i, points))
        with open(os.path.join(sent_dir, f"{i:06d}.npy"), "wb") as f:
            f.write(data)
        channel.send(data)
    # What aiortc can say at best: its SCTP has no chunk left that the peer did not acknowledge
    # (private state of aiortc 1.4's RTCSctpTransport; it has no public API for this).
    sctp = pc.sctp
    ended = time.monotonic()

    def pending():
        return (channel.bufferedAmount or sctp._data_channel_queue or sctp._outbound_queue
                or sctp._sent_queue)

    while pending() and time.monotonic() - ended < timeout:
        await asyncio.sleep(0.05)
    print(json.dumps({"drain_s": round(time.monotonic() - ended, 2),
                      "all_acked": not pending()}), flush=True)
    await sig.close()
    await pc.close()


async def recv(host, port, recv_dir):
    sig = TcpSocketSignaling(host, port)
    pc = RTCPeerConnection()
    count = 0

    @pc.on("datachannel")
    def on_datachannel(channel):
        @channel.on("message")
        def on_message(message):
            nonlocal count
            with open(os.path.join(recv_dir, f"{count:06d}.npy"), "wb") as f:
                f.write(message)
            count += 1

    for _ in range(300):  # the sender listens once it has its offer
        try:
            offer = await sig.receive()
            break
        except OSError:
            await asyncio.sleep(0.1)
    else:
        raise RuntimeError("the sender never listened")
    await pc.setRemoteDescription(offer)
    await pc.setLocalDescription(await pc.createAnswer())
    await sig.send(pc.localDescription)
    while (await sig.receive()) not in (None, BYE):
        pass
    await asyncio.Event().wait()  # keep the association up until terminated


def main():
    logging.getLogger("aiortc").setLevel(logging.CRITICAL)
    mode, host, port, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    if mode == "send":
        n, rate, points, timeout = (int(v) for v in sys.argv[5:9])
        asyncio.run(send(host, port, out, n, rate, points, timeout))
    else:
        asyncio.run(recv(host, port, out))


if __name__ == "__main__":
    main()
