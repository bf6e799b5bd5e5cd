# SPDX-License-Identifier: LGPL-2.1-or-later
"""aiortc's own TcpSocketSignaling (aiortc 1.4.0) against pointcast's tcp:// signaller.

usage: interop_tcpsig_peer.py offer|answer PORT
offer: listens (as aiortc's offerer does), sends a real aiortc offer, expects an answer.
answer: connects, expects an offer, answers. Both then send one candidate and a bye.
Prints OK and exits 0 when everything the other side sent was understood."""
import asyncio
import sys

from aiortc import RTCIceCandidate, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.signaling import BYE, TcpSocketSignaling


async def main(role, port):
    sig = TcpSocketSignaling("127.0.0.1", port)
    pc = RTCPeerConnection()
    pc.createDataChannel("points")
    await pc.setLocalDescription(await pc.createOffer())
    mine = pc.localDescription.sdp
    if role == "offer":
        await sig.send(RTCSessionDescription(sdp=mine, type="offer"))
        got = await asyncio.wait_for(sig.receive(), 20)
        assert isinstance(got, RTCSessionDescription), got
        assert got.type == "answer", got.type
        assert got.sdp.startswith("v=0\r\n") and '"quoted" \\ é' in got.sdp, repr(got.sdp)
    else:
        got = await asyncio.wait_for(sig.receive(), 20)
        assert isinstance(got, RTCSessionDescription), got
        assert got.type == "offer", got.type
        assert got.sdp.startswith("v=0\r\n") and "webrtc-datachannel" in got.sdp, repr(got.sdp)
        await sig.send(RTCSessionDescription(sdp=mine, type="answer"))
    await sig.send(RTCIceCandidate(component=1, foundation="1", ip="127.0.0.1", port=40000,
                                   priority=2122252543, protocol="udp", type="host",
                                   sdpMid="0", sdpMLineIndex=0))
    await sig.close()  # sends bye
    await pc.close()
    print("OK")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
