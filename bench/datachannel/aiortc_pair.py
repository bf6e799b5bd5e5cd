# SPDX-License-Identifier: LGPL-2.1-or-later
"""Reference for the data channel benchmark: two aiortc peers in one process (one asyncio loop),
SDP handed over directly, one reliable ordered channel. The sender keeps at most HIGH bytes
buffered (bufferedAmount / bufferedamountlow), as the bare webrtcbin reference does.

usage: /usr/bin/python3 aiortc_pair.py [--sizes 1024,65536,1048576] [--seconds S] [--reps R]
Prints one JSON object per line, like bare_webrtcbin."""
import argparse
import asyncio
import json
import logging
import time

from aiortc import RTCPeerConnection

HIGH, LOW = 1 << 20, 256 << 10


async def main(args):
    logging.getLogger("aiortc").setLevel(logging.CRITICAL)
    pc1, pc2 = RTCPeerConnection(), RTCPeerConnection()
    tx = pc1.createDataChannel("bench")
    tx.bufferedAmountLowThreshold = LOW
    state = {"count": 0, "bytes": 0, "target": 0, "last": 0.0}
    done = asyncio.Event()
    opened = asyncio.Event()
    low = asyncio.Event()

    @pc2.on("datachannel")
    def on_datachannel(ch):
        @ch.on("message")
        def on_message(m):
            state["count"] += 1
            state["bytes"] += len(m)
            if state["count"] == state["target"]:
                state["last"] = time.perf_counter()
                done.set()

    tx.on("open", opened.set)
    tx.on("bufferedamountlow", low.set)

    await pc1.setLocalDescription(await pc1.createOffer())
    await pc2.setRemoteDescription(pc1.localDescription)
    await pc2.setLocalDescription(await pc2.createAnswer())
    await pc1.setRemoteDescription(pc2.localDescription)
    await asyncio.wait_for(opened.wait(), 30)

    async def run(size, n):
        payload = bytes((i * 7) & 0xFF for i in range(size))
        state.update(count=0, bytes=0, target=n)
        done.clear()
        t0 = time.perf_counter()
        for _ in range(n):
            if tx.bufferedAmount > HIGH:
                low.clear()
                await asyncio.wait_for(low.wait(), 30)
            tx.send(payload)
            # aiortc only transmits when the loop runs; yield now and then.
            if tx.bufferedAmount > HIGH // 2:
                await asyncio.sleep(0)
        await asyncio.wait_for(done.wait(), 120)
        if state["bytes"] != n * size:
            raise RuntimeError("byte count mismatch")
        return state["last"] - t0

    await run(1024, 500)  # warm-up
    for size in args.sizes:
        try:
            n = 2000 if size <= 4096 else max(4, (4 << 20) // size)
            t = await run(size, n)
            while t < args.seconds / 4:
                n *= 4
                t = await run(size, n)
            n = max(4, int(n * args.seconds / t))
            best = min([await run(size, n) for _ in range(args.reps)])
            print(json.dumps({"impl": "aiortc", "size": size, "messages": n,
                              "seconds": round(best, 4), "msg_per_s": round(n / best, 1),
                              "mb_per_s": round(n * size / best / 1e6, 3)}), flush=True)
        except Exception as e:  # noqa: BLE001 — report and go on to the next size
            print(json.dumps({"impl": "aiortc", "size": size,
                              "error": "%s: %s" % (type(e).__name__, e)}), flush=True)
    await pc1.close()
    await pc2.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="1024,65536,1048576",
                   type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--seconds", type=float, default=1.5)
    p.add_argument("--reps", type=int, default=3)
    asyncio.run(main(p.parse_args()))
