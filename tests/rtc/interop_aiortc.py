# SPDX-License-Identifier: LGPL-2.1-or-later
"""aiortc 1.4.0 peers talking to rtcpeer (run by gst-launch-1.0), NumPy arrays both ways.

usage: /usr/bin/python3 interop_aiortc.py CASE
  daemon-offer        aiortc POSTs its offer to the daemon's /offer?room=R; the daemon bridges it
                      to an rtcpeer answerer registered in room R over ws://.
  tcp-aiortc-offers   aiortc's TcpSocketSignaling: aiortc offers (listens), rtcpeer answers
                      (connects, retrying until aiortc listens).
  tcp-rtcpeer-offers  rtcpeer offers (listens), aiortc answers (connects).
  tcp-hostile-tagged  aiortc opens a pointcast-ack3 channel and sends malformed, repeated and
                      far-jumping tagged messages among real ones: each real one out once, in
                      order, one warning.
  tcp-rtcpeer-offers-partial
                      the same with rtcpeer's "back" channel max-retransmits=0: opened with
                      pointcast-ack3, and aiortc (which never acknowledges) gets each message
                      once, as binary (no copies, no tagged text).
  http-rtcpeer-offers rtcpeer POSTs to http://.../offer, served here in the way of aiortc's
                      server example (no aiohttp in Debian's python3: a minimal asyncio server).
  tcp-aiortc-offers-video, tcp-rtcpeer-offers-video
                      as the tcp cases, and rtcpeer also sends videotestsrc (VP8) that aiortc
                      receives and decodes. When aiortc offers, its VP8 is payload type 97 where
                      rtcpeer's own is 96: rtcpeer must answer with (and send) aiortc's.
  tcp-aiortc-sends-video
                      aiortc offers and sends video to an rtcpeer that only receives: rtcpeer's
                      answer takes the offer's generic NACK and RTX (webrtcbin alone answers
                      with nack pli only), and its receiver reports reach aiortc.

In every case aiortc sends numpy.save bytes of (N, 3) arrays of <f4, <f8, <i4 and <i8, plus one
garbage message, on the channel "points"; the rtcpeer side runs
    rtc.data_points ! tee ! multifilesink (one file per message: byte-exact check)
                          ! npyunpack ! pointsink (one line per array: shape, min, max, mean)
(the garbage message must give npyunpack's warning, and nothing may log a CRITICAL or an ERROR)
and, with wait-for-peers=1, sends pointsrc pattern=counter arrays back on the channel "back"
(50 rows) and "big" (6000 rows, beyond 64 KiB: rtcpeer's fragment framing), which aiortc checks
value by value. aiortc frames its one 480 KB array the same way. Needs GST_PLUGIN_PATH (meson's test_env) and, for daemon-offer, POINTCAST_BUILD_ROOT."""
import asyncio
import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.signaling import TcpSocketSignaling

TIMEOUT = 45          # seconds for one whole case, generous for a loaded 2-core machine
BACK_COUNT = 12       # arrays rtcpeer sends (pointsrc num-buffers)
BACK_POINTS = 50      # rows per array
BIG_COUNT = 3         # arrays rtcpeer sends on "big", each beyond the 64 KiB SCTP limit
BIG_POINTS = 6000     # 72 KB of float32 + header: rtcpeer sends them with its fragment framing
CHUNK = 65536         # webrtcbin's (and aiortc's) a=max-message-size
DTYPES = ["<f4", "<f8", "<i4", "<i8"]
VIDEO_SIZE = (320, 240)
VIDEO_FRAMES = 15     # decoded frames aiortc must get in the video cases


def log(*a):
    print("[interop]", *a, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def arrays_to_send():
    """(N, 3) arrays with distinct statistics, each dtype twice; the last one (480 KB) goes
    beyond the 64 KiB limit and is sent with rtcpeer's fragment framing."""
    out = []
    for k in range(8):
        n = 3 + 11 * k if k != 7 else 20000
        base = np.arange(n * 3, dtype=np.float64).reshape(n, 3)
        a = (base * (k + 1) - 40.0 * k).astype(DTYPES[k % 4])
        out.append(a)
    return out


def npy_bytes(a):
    f = io.BytesIO()
    np.save(f, a)
    return f.getvalue()


def counter_array(i, points=BACK_POINTS):
    """What pointsrc pattern=counter sends as buffer i."""
    v = (np.arange(points * 3, dtype=np.uint64) + np.uint64(i * points * 3)) & np.uint64(0xFFFFFF)
    return v.astype(np.float32).reshape(points, 3)


def send_framed(ch, data):
    """rtcpeer's framing for a message above the limit, as any plain peer can do it: a text
    announcement {"pointcast":"fragments","size":S,"count":N}, then N binary pieces."""
    if len(data) <= CHUNK:
        ch.send(data)
        return
    pieces = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]
    ch.send(json.dumps({"pointcast": "fragments", "size": len(data), "count": len(pieces)},
                       separators=(",", ":")))
    for piece in pieces:
        ch.send(piece)


class Reassembler:
    """The receiving half of the framing: whole messages out of announcements and pieces."""

    def __init__(self):
        self.messages = []
        self.pending = None  # [size, count, parts]

    def feed(self, m):
        if isinstance(m, str):
            a = json.loads(m)
            assert a.get("pointcast") == "fragments", m
            self.pending = [a["size"], a["count"], []]
            return
        if self.pending is None:
            self.messages.append(m)
            return
        self.pending[2].append(m)
        if len(self.pending[2]) == self.pending[1]:
            whole = b"".join(self.pending[2])
            assert len(whole) == self.pending[0], (len(whole), self.pending[0])
            self.messages.append(whole)
            self.pending = None


class GstSide:
    """gst-launch-1.0 running rtcpeer: receives into files + pointsink, sends counter arrays."""

    def __init__(self, rtc_props, video=False):
        self.dir = tempfile.mkdtemp(prefix="pc-interop-")
        recv = ("rtc.data_points ! tee name=t "
                "t. ! queue ! multifilesink sync=false location=%s/msg-%%05d.bin "
                "t. ! queue ! npyunpack ! pointsink sync=false" % self.dir)
        # Back on a channel of its own: one element cannot have a sink and a src pad both named
        # data_points (GStreamer pad names are unique per element).
        send = ("pointsrc pattern=counter rate=20 points=%d num-buffers=%d ! npypack ! rtc.data_back "
                "pointsrc pattern=counter rate=10 points=%d num-buffers=%d ! npypack ! rtc.data_big"
                % (BACK_POINTS, BACK_COUNT, BIG_POINTS, BIG_COUNT))
        if video:
            send += (" videotestsrc is-live=true pattern=smpte ! video/x-raw,width=%d,height=%d,"
                     "framerate=30/1 ! rtc.video_0" % VIDEO_SIZE)
        desc = "rtcpeer name=rtc wait-for-peers=1 %s %s %s" % (rtc_props, recv, send)
        log("gst-launch-1.0", desc)
        # Not -q: gst-launch prints the bus's warnings and errors, which verify() looks at.
        self.proc = subprocess.Popen(["gst-launch-1.0"] + desc.split(),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output = None

    def received_files(self):
        return sorted(f for f in os.listdir(self.dir) if f.startswith("msg-"))

    def read(self, name):
        with open(os.path.join(self.dir, name), "rb") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.output is not None:
            return self.output
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.output = self.proc.communicate()[0] or ""
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.output


class AiortcSide:
    """One RTCPeerConnection with a "points" channel to send on and a "back" one to receive."""

    def __init__(self, create_channel, video=False):
        self.pc = RTCPeerConnection()
        self.frames = []      # (width, height) of each decoded video frame
        self.received = []
        self.big = Reassembler()
        self.channels = []
        self.opened = asyncio.Event()
        if create_channel:
            self._watch(self.pc.createDataChannel("points"))

        @self.pc.on("datachannel")
        def on_datachannel(ch):
            self._watch(ch)

        if video and create_channel:  # the offering side asks for rtcpeer's video
            self.pc.addTransceiver("video", direction="recvonly")

        @self.pc.on("track")
        def on_track(track):
            if track.kind == "video":
                asyncio.ensure_future(self._frames(track))

    async def _frames(self, track):
        while True:
            try:
                frame = await track.recv()
            except Exception:  # MediaStreamError once the connection closes
                return
            self.frames.append((frame.width, frame.height))

    def _watch(self, ch):
        self.channels.append(ch)

        @ch.on("message")
        def on_message(m):
            if ch.label == "back":
                self.received.append(m)
            elif ch.label == "big":
                self.big.feed(m)

        if ch.readyState == "open":
            self.opened.set()
        ch.on("open", self.opened.set)

    def channel(self):
        for ch in self.channels:
            if ch.label == "points" and ch.readyState == "open":
                return ch
        return None


async def until(pred, what, timeout=TIMEOUT, gst=None):
    end = time.monotonic() + timeout
    while not pred():
        if gst is not None and not gst.alive():
            raise AssertionError("gst-launch exited while waiting for %s:\n%s" % (what, gst.stop()))
        if time.monotonic() > end:
            detail = ""
            if gst is not None:
                detail = " (rtcpeer got %d messages); gst-launch output:\n%s" % (
                    len(gst.received_files()), gst.stop())
            raise AssertionError("timed out waiting for %s%s" % (what, detail))
        await asyncio.sleep(0.05)


async def exchange(peer, gst):
    """Sends the arrays and a garbage message; waits until both directions are complete."""
    if peer.channel() is None:
        # Answering rtcpeer's offer: its channel is "back"; open "points" on the same association.
        await until(lambda: peer.channels, "rtcpeer's channel", gst=gst)
        peer._watch(peer.pc.createDataChannel("points"))
    await until(lambda: peer.channel() is not None, "the data channel to open", gst=gst)
    sent = arrays_to_send()
    ch = peer.channel()
    for i, a in enumerate(sent):
        send_framed(ch, npy_bytes(a))
        if i == 3:
            ch.send(b"this is not an npy file")
    await until(lambda: len(gst.received_files()) >= len(sent) + 1,
                "rtcpeer to receive %d messages" % (len(sent) + 1), gst=gst)
    await until(lambda: len(peer.received) >= BACK_COUNT and len(peer.big.messages) >= BIG_COUNT,
                "aiortc to receive %d + %d arrays" % (BACK_COUNT, BIG_COUNT), gst=gst)
    await asyncio.sleep(0.5)  # anything extra would show up now
    return sent


def verify(sent, peer, gst):
    files = gst.received_files()
    payloads = [gst.read(f) for f in files]
    output = gst.stop()
    expected = [npy_bytes(a) for a in sent]
    expected.insert(4, b"this is not an npy file")
    assert payloads == expected, "rtcpeer received %d messages, not byte-identical to the %d sent" % (
        len(payloads), len(expected))
    lines = [l for l in output.splitlines() if re.match(r"^\S+: #\d+ shape=", l)]
    assert len(lines) == len(sent), "pointsink printed %d lines, expected %d:\n%s" % (
        len(lines), len(sent), output)
    for a, line in zip(sent, lines):
        f = a.astype(np.float32).astype(np.float64)
        m = re.search(r"shape=\((\d+), (\d+)\) min=\[([^\]]*)\] max=\[([^\]]*)\] mean=\[([^\]]*)\]",
                      line)
        assert m, line
        assert (int(m.group(1)), int(m.group(2))) == a.shape, line
        for grp, want in ((3, f.min(axis=0)), (4, f.max(axis=0)), (5, f.mean(axis=0))):
            got = np.array([float(x) for x in m.group(grp).split(",")])
            assert np.allclose(got, want, rtol=1e-4, atol=1e-3), "%s: want %s" % (line, want)
    problems = [l for l in output.splitlines() if "CRITICAL" in l or l.startswith("ERROR")]
    assert not problems, "gst-launch reported:\n%s" % "\n".join(problems)
    assert re.search(r"WARNING: from element .*npyunpack", output), (
        "the garbage message did not give a warning from npyunpack:\n%s" % output)
    assert len(peer.received) == BACK_COUNT, "aiortc received %d arrays, expected %d" % (
        len(peer.received), BACK_COUNT)
    for i, m in enumerate(peer.received):
        assert isinstance(m, bytes), "message %d is a %s" % (i, type(m).__name__)
        got = np.load(io.BytesIO(m))
        assert got.dtype == np.float32 and got.shape == (BACK_POINTS, 3), (got.dtype, got.shape)
        assert np.array_equal(got, counter_array(i)), "array %d differs from pointsrc's counter" % i
    assert len(peer.big.messages) == BIG_COUNT, "aiortc reassembled %d big arrays" % len(
        peer.big.messages)
    for i, m in enumerate(peer.big.messages):
        got = np.load(io.BytesIO(m))
        assert np.array_equal(got, counter_array(i, BIG_POINTS)), "big array %d differs" % i
    log("ok: %d arrays (one of %d bytes, framed) + 1 garbage message to rtcpeer (byte-identical, "
        "pointsink stats match); %d counter arrays back to aiortc, and %d of %d bytes framed" % (
            len(sent), len(npy_bytes(sent[-1])), BACK_COUNT, BIG_COUNT, len(peer.big.messages[0])))


# ---------------------------------------------------------------- cases
async def expect_video(peer, gst):
    await until(lambda: len(peer.frames) >= VIDEO_FRAMES,
                "aiortc to decode %d frames of rtcpeer's video" % VIDEO_FRAMES, gst=gst)
    assert all(f == VIDEO_SIZE for f in peer.frames), "frame sizes %s" % set(peer.frames)
    log("ok: aiortc decoded %d frames of %dx%d" % ((len(peer.frames),) + VIDEO_SIZE))


async def case_tcp_aiortc_offers(video=False):
    port = free_port()
    # rtcpeer first: it must retry until aiortc listens (aiortc only listens once its offer is ready).
    gst = GstSide("signaling=tcp://127.0.0.1:%d" % port, video)
    try:
        await asyncio.sleep(1.0)
        peer = AiortcSide(create_channel=True, video=video)
        sig = TcpSocketSignaling("127.0.0.1", port)
        await peer.pc.setLocalDescription(await peer.pc.createOffer())
        await asyncio.wait_for(sig.send(peer.pc.localDescription), TIMEOUT)
        answer = await asyncio.wait_for(sig.receive(), TIMEOUT)
        assert isinstance(answer, RTCSessionDescription) and answer.type == "answer", answer
        await peer.pc.setRemoteDescription(answer)
        if video:
            assert re.search(r"m=video \d+ \S+ 97\b", answer.sdp), (
                "rtcpeer did not answer with aiortc's VP8 payload type 97:\n" + answer.sdp)
        sent = await exchange(peer, gst)
        if video:
            await expect_video(peer, gst)
            # The SSRCs the answer signals are the ones on the wire: a browser binds its track to
            # them (with NACK/RTX a stray SSRC once left Chromium's <video> blank, Firefox dark).
            signaled = {int(x) for x in re.findall(r"^a=ssrc:(\d+) ", answer.sdp, re.M)}
            received = {s.source for r in peer.pc.getReceivers()
                        for s in r.getSynchronizationSources()}
            assert received and received <= signaled, (
                "video on SSRC %s, the answer signals %s" % (received, signaled))
        await sig.close()
        verify(sent, peer, gst)
        await peer.pc.close()
    finally:
        gst.stop()


async def case_tcp_aiortc_sends_video():
    from aiortc.mediastreams import VideoStreamTrack
    port = free_port()
    gst = GstSide("signaling=tcp://127.0.0.1:%d" % port)
    try:
        await asyncio.sleep(1.0)
        peer = AiortcSide(create_channel=True)
        peer.pc.addTrack(VideoStreamTrack())
        sig = TcpSocketSignaling("127.0.0.1", port)
        await peer.pc.setLocalDescription(await peer.pc.createOffer())
        offer = peer.pc.localDescription.sdp
        await asyncio.wait_for(sig.send(peer.pc.localDescription), TIMEOUT)
        answer = await asyncio.wait_for(sig.receive(), TIMEOUT)
        assert isinstance(answer, RTCSessionDescription) and answer.type == "answer", answer
        await peer.pc.setRemoteDescription(answer)
        video = answer.sdp[answer.sdp.index("m=video"):]
        video = video[:video.index("m=", 2)] if "m=" in video[2:] else video
        pt = re.match(r"m=video \d+ \S+ (\d+)", video).group(1)
        log("rtcpeer's answer to aiortc's video:\n" + video.strip())
        for fb in ("nack", "nack pli"):
            if re.search(r"^a=rtcp-fb:%s %s\r?$" % (pt, fb), offer, re.M):
                assert re.search(r"^a=rtcp-fb:%s %s\r?$" % (pt, fb), video, re.M), (
                    "the answer drops the offer's %s for payload type %s:\n%s" % (fb, pt, video))
        assert re.search(r"^a=fmtp:\d+ apt=%s\r?$" % pt, video, re.M), (
            "the answer has no RTX for payload type %s:\n%s" % (pt, video))
        assert "goog-remb" not in video, "the answer takes goog-remb, which rtcpeer does not send"
        sent = await exchange(peer, gst)

        async def reports():
            stats = await peer.pc.getStats()
            return [s for s in stats.values() if s.type == "remote-inbound-rtp" and s.kind == "video"]
        end = time.monotonic() + TIMEOUT
        while not await reports():
            assert time.monotonic() < end, "no receiver report from rtcpeer for aiortc's video"
            await asyncio.sleep(0.2)
        log("ok: rtcpeer reports receiving aiortc's video")
        await sig.close()
        verify(sent, peer, gst)
        await peer.pc.close()
    finally:
        gst.stop()


async def case_tcp_rtcpeer_offers(video=False, partial=False):
    port = free_port()
    # partial: "back" (728-byte messages) partially reliable, as detections are: rtcpeer opens it
    # with pointcast-ack3 and sends small messages there twice, but only to a peer that
    # acknowledged on it; aiortc never does, so it gets each array once, as binary.
    gst = GstSide("signaling=tcp://127.0.0.1:%d role=offerer" % port
                  + (" data_back::max-retransmits=0" if partial else ""), video)
    try:
        peer = AiortcSide(create_channel=False, video=video)
        sig = TcpSocketSignaling("127.0.0.1", port)
        end = time.monotonic() + TIMEOUT
        while True:  # aiortc's receive() connects once and does not retry
            try:
                offer = await asyncio.wait_for(sig.receive(), TIMEOUT)
                break
            except OSError:
                if time.monotonic() > end or not gst.alive():
                    raise
                await asyncio.sleep(0.2)
        assert isinstance(offer, RTCSessionDescription) and offer.type == "offer", offer
        assert "a=candidate:" in offer.sdp, "the offer to aiortc must carry its candidates"
        await peer.pc.setRemoteDescription(offer)
        await peer.pc.setLocalDescription(await peer.pc.createAnswer())
        await sig.send(peer.pc.localDescription)
        sent = await exchange(peer, gst)
        if video:
            await expect_video(peer, gst)
        if partial:
            back = [ch for ch in peer.channels if ch.label == "back"]
            assert back and back[0].protocol == "pointcast-ack3", [
                (ch.label, ch.protocol) for ch in peer.channels]
            assert back[0].maxRetransmits == 0, back[0].maxRetransmits
            await asyncio.sleep(0.5)  # a copy would come 6 ms after its message
        await sig.close()
        verify(sent, peer, gst)
        await peer.pc.close()
    finally:
        gst.stop()


async def case_http_rtcpeer_offers():
    """An /offer endpoint as in aiortc's examples/server/server.py, on plain asyncio streams."""
    peers = []

    async def handle(reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (h.partition(":") for h in header_lines if h)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            method, path, _ = request_line.split(" ", 2)
            if method != "POST" or path != "/offer":
                status, reply = "404 Not Found", {"error": "POST /offer only"}
            else:
                params = json.loads(body)
                offer = RTCSessionDescription(sdp=params["sdp"], type=params["type"])
                peer = AiortcSide(create_channel=False)
                peers.append(peer)
                await peer.pc.setRemoteDescription(offer)
                await peer.pc.setLocalDescription(await peer.pc.createAnswer())
                status = "200 OK"
                reply = {"sdp": peer.pc.localDescription.sdp, "type": peer.pc.localDescription.type}
            data = json.dumps(reply).encode()
            writer.write(("HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                          "Connection: close\r\n\r\n" % (status, len(data))).encode() + data)
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    gst = GstSide("signaling=http://127.0.0.1:%d/offer" % port)
    try:
        await until(lambda: peers, "rtcpeer's POST /offer", gst=gst)
        sent = await exchange(peers[0], gst)
        verify(sent, peers[0], gst)
        assert len(peers) == 1, "rtcpeer POSTed %d offers" % len(peers)
        await peers[0].pc.close()
    finally:
        gst.stop()
        server.close()


async def case_daemon_offer():
    build = os.environ.get("POINTCAST_BUILD_ROOT", "")
    daemon_bin = os.path.join(build, "signaling", "pointcast-signaling")
    if not os.path.exists(daemon_bin):
        log("SKIP: no daemon at", daemon_bin)
        sys.exit(77)
    port = free_port()
    daemon = subprocess.Popen([daemon_bin, "--host", "127.0.0.1", "--port", str(port),
                               "--log-level", "INFO"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    room = "interop-%d" % os.getpid()
    gst = None
    try:
        await until(lambda: _healthy(port), "the daemon to come up", timeout=20)
        gst = GstSide("signaling=ws://127.0.0.1:%d/ws room=%s peer-id=gst-answerer role=answerer"
                      % (port, room))
        peer = AiortcSide(create_channel=True)
        await peer.pc.setLocalDescription(await peer.pc.createOffer())
        body = json.dumps({"sdp": peer.pc.localDescription.sdp, "type": "offer"}).encode()
        url = "http://127.0.0.1:%d/offer?room=%s" % (port, room)
        end = time.monotonic() + TIMEOUT
        while True:  # until rtcpeer has registered in the room, the daemon answers 503
            status, reply = await asyncio.get_running_loop().run_in_executor(None, _post, url, body)
            if status == 200 or time.monotonic() > end or not gst.alive():
                break
            await asyncio.sleep(0.5)
        assert status == 200, "POST /offer: %s %s" % (status, reply)
        answer = json.loads(reply)
        assert answer["type"] == "answer" and "a=candidate:" in answer["sdp"], answer
        await peer.pc.setRemoteDescription(RTCSessionDescription(**answer))
        sent = await exchange(peer, gst)
        verify(sent, peer, gst)
        await peer.pc.close()
    finally:
        if gst:
            gst.stop()
        daemon.terminate()
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def case_tcp_stalled_fragments():
    """A peer that announces a 48 MiB message, sends 32 MiB of it and goes silent: rtcpeer drops
    it within the idle timeout (10 s, checked every second) and its memory goes back, without
    waiting for that peer's next message; the rest of the stalled message is skipped when it
    comes late, and the channel carries on (issue 11)."""
    port = free_port()
    gst = GstSide("signaling=tcp://127.0.0.1:%d" % port)
    try:
        await asyncio.sleep(1.0)
        peer = AiortcSide(create_channel=True)
        sig = TcpSocketSignaling("127.0.0.1", port)
        await peer.pc.setLocalDescription(await peer.pc.createOffer())
        await asyncio.wait_for(sig.send(peer.pc.localDescription), TIMEOUT)
        await peer.pc.setRemoteDescription(await asyncio.wait_for(sig.receive(), TIMEOUT))
        await until(lambda: peer.channel() is not None, "the data channel to open", gst=gst)
        ch = peer.channel()
        ch.send(npy_bytes(np.zeros((4, 3), np.float32)))
        await until(lambda: len(gst.received_files()) == 1, "a first message", gst=gst)
        base = rss(gst.proc.pid)
        size, count, sent = 48 << 20, (48 << 20) // CHUNK, 512
        ch.send(json.dumps({"pointcast": "fragments", "size": size, "count": count},
                           separators=(",", ":")))
        for _ in range(sent):
            ch.send(b"\x01" * CHUNK)
        await until(lambda: rss(gst.proc.pid) > base + (24 << 20), "rtcpeer to hold the pieces",
                    gst=gst)
        held = rss(gst.proc.pid) - base
        t0 = time.monotonic()
        await until(lambda: rss(gst.proc.pid) < base + (8 << 20), "the stalled message to be dropped",
                    timeout=20, gst=gst)
        took = time.monotonic() - t0
        log("held %.1f MiB of a stalled message; released after %.1f s of silence" % (held / 2**20, took))
        for _ in range(count - sent):  # the rest, late: skipped, not taken for new messages
            ch.send(b"\x02" * CHUNK)
        ch.send(npy_bytes(np.ones((5, 3), np.float32)))
        await until(lambda: len(gst.received_files()) == 2, "the message after the late pieces", gst=gst)
        await asyncio.sleep(1.0)
        files = gst.received_files()
        output = gst.stop()
        assert len(files) == 2, "%d messages came out" % len(files)
        assert "Dropped a stalled fragmented message" in output and "no piece for" in output, output
        await sig.close()
        await peer.pc.close()
    finally:
        gst.stop()


async def offer_acked_channel(port, gst, protocol):
    """aiortc offers a "points" channel with PROTOCOL to rtcpeer over TCP signaling and waits for
    it to open; returns the peer, the channel, the text messages it receives, the signaling."""
    peer = AiortcSide(create_channel=False)
    ch = peer.pc.createDataChannel("points", protocol=protocol)
    peer._watch(ch)
    acks = []
    ch.on("message", lambda m: acks.append(m) if isinstance(m, str) else None)
    sig = TcpSocketSignaling("127.0.0.1", port)
    await peer.pc.setLocalDescription(await peer.pc.createOffer())
    await asyncio.wait_for(sig.send(peer.pc.localDescription), TIMEOUT)
    await peer.pc.setRemoteDescription(await asyncio.wait_for(sig.receive(), TIMEOUT))
    await until(lambda: peer.channel() is not None, "the data channel to open", gst=gst)
    return peer, ch, acks, sig


async def case_tcp_hostile_tagged():
    """A peer that opens a pointcast-ack3 channel (ordered here, so order can be checked) and
    sends tagged messages of its own: malformed ones (dropped, one warning, never data), copies of
    a number (delivered once), a jump to 2^53-1 and then numbers far below it (delivered: older
    than the window, not held back), and plain binary messages (delivered as they are). rtcpeer
    hands on exactly the real messages once each, in order, and acknowledges exactly those."""
    import base64

    def tag(q, b):
        return '{"pointcast":"msg","seq":%d,"data":"%s"}' % (q, base64.b64encode(b).decode())

    port = free_port()
    gst = GstSide("signaling=tcp://127.0.0.1:%d" % port)
    try:
        await asyncio.sleep(1.0)
        peer, ch, acks, sig = await offer_acked_channel(port, gst, "pointcast-ack3")
        sent = [npy_bytes(counter_array(i)) for i in range(12)]
        prefix = '{"pointcast":"msg","seq":'
        for bad in (prefix + '01,"data":""}', prefix + '1,"data":"Zg="}', prefix + "9" * 60000,
                    prefix + '9007199254740992,"data":""}', '{"pointcast":"msg"}'):
            ch.send(bad)
        for q in range(4):  # each twice
            ch.send(tag(q, sent[q]))
            ch.send(tag(q, sent[q]))
        ch.send(sent[4])  # plain
        ch.send(tag(2**53 - 1, sent[5]))
        for q in range(6, 10):  # far below the top: delivered, once each as sent
            ch.send(tag(q, sent[q]))
        ch.send(tag(2**53 - 1, sent[5]))  # a copy within the window: dropped
        ch.send(sent[10])
        ch.send(tag(2**53 - 2, sent[11]))
        await until(lambda: len(gst.received_files()) >= len(sent), "rtcpeer to receive 12", gst=gst)
        await until(lambda: '{"pointcast":"ack","received":12}' in acks,
                    "the acknowledgement of 12", gst=gst)
        await asyncio.sleep(1.0)  # anything extra would show up now
        got = [gst.read(f) for f in gst.received_files()]
        alive = gst.alive()
        output = gst.stop()
        assert alive, "rtcpeer exited:\n" + output
        assert got == sent, "%d messages came out, not the 12 sent, in order" % len(got)
        assert output.count("Dropped a malformed message from peer") == 1, output[-3000:]
        counts = [int(a[len('{"pointcast":"ack","received":'):-1]) for a in acks]
        assert counts == sorted(counts) and max(counts) == 12, acks
        log("ok: 12 messages once each, in order; 5 malformed tagged messages dropped, one warning")
        await sig.close()
        await peer.pc.close()
    finally:
        gst.stop()


async def case_tcp_hostile_resume(protocol="pointcast-ack"):
    """A peer that opens a pointcast-ack channel and sends resume messages rtcpeer must refuse
    (malformed, oversized, not the channel's first message): each is dropped with a warning, never
    delivered as data and never skipping a message; every data message comes out once, in order,
    and rtcpeer's acknowledgements count exactly those. With pointcast-ack2 (acknowledged both
    ways) the peer's acknowledgements of nothing sent, claiming 99, are not data either."""
    port = free_port()
    gst = GstSide("signaling=tcp://127.0.0.1:%d" % port)
    try:
        await asyncio.sleep(1.0)
        peer, ch, acks, sig = await offer_acked_channel(port, gst, protocol)
        sent = [npy_bytes(counter_array(i)) for i in range(10)]
        prefix = '{"pointcast":"resume","from":'
        for bad in (prefix + "007}", prefix + "100000000000000000000}", prefix + "-1}",
                    prefix + "9" * 60000 + "}", '{"pointcast":"resume"}'):
            ch.send(bad)
        for m in sent[:5]:
            ch.send(m)
        if protocol == "pointcast-ack2":
            ch.send('{"pointcast":"ack","received":99}')
        ch.send(prefix + "0}")  # not the first message: would skip the five delivered
        for m in sent[5:]:
            ch.send(m)
        await until(lambda: len(gst.received_files()) >= len(sent), "rtcpeer to receive 10", gst=gst)
        await until(lambda: '{"pointcast":"ack","received":10}' in acks, "the acknowledgement of 10",
                    gst=gst)
        await asyncio.sleep(1.0)  # anything extra would show up now
        got = [gst.read(f) for f in gst.received_files()]
        alive = gst.alive()
        output = gst.stop()
        log("acknowledgements: %s" % acks[-3:])
        assert alive, "rtcpeer exited:\n" + output
        assert got == sent, "%d messages came out, not the 10 sent in order" % len(got)
        assert output.count("Ignored a resume message from peer") == 1, output[-3000:]
        assert "malformed" in output, output[-3000:]
        counts = [int(a[len('{"pointcast":"ack","received":'):-1]) for a in acks]
        assert counts == sorted(counts) and max(counts) == 10, acks
        await sig.close()
        await peer.pc.close()
    finally:
        gst.stop()


async def case_tcp_resume_after_acks():
    """On a pointcast-ack2 channel both sides may send, and acknowledgements are no part of either
    side's stream: a peer whose first message is a resume, sent after rtcpeer's acknowledgement
    came on the same channel, has it accepted (a fresh receiver: nothing to skip, every message
    delivered, no warning)."""
    port = free_port()
    gst = GstSide("signaling=tcp://127.0.0.1:%d" % port)
    try:
        await asyncio.sleep(1.0)
        peer, ch, acks, sig = await offer_acked_channel(port, gst, "pointcast-ack2")
        await until(lambda: acks, "rtcpeer's first acknowledgement", gst=gst)
        sent = [npy_bytes(counter_array(i)) for i in range(6)]
        ch.send('{"pointcast":"resume","from":40}')
        for m in sent:
            ch.send(m)
        await until(lambda: len(gst.received_files()) >= len(sent), "rtcpeer to receive 6", gst=gst)
        await until(lambda: '{"pointcast":"ack","received":6}' in acks, "the acknowledgement of 6",
                    gst=gst)
        await asyncio.sleep(1.0)
        got = [gst.read(f) for f in gst.received_files()]
        output = gst.stop()
        log("acknowledgements: %s" % acks)
        assert got == sent, "%d messages came out, not the 6 sent in order" % len(got)
        assert "Ignored a resume message" not in output, output[-3000:]
        assert re.search(r"continues channel 'points' on a new connection: 0 of the messages", output), (
            output[-3000:])
        assert acks[0] == '{"pointcast":"ack","received":0}', acks
        await sig.close()
        await peer.pc.close()
    finally:
        gst.stop()


def _healthy(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=1) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _post(url, body):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError as e:
        return None, str(e)


CASES = {
    "tcp-hostile-resume": case_tcp_hostile_resume,
    "tcp-hostile-tagged": case_tcp_hostile_tagged,
    "tcp-hostile-resume2": lambda: case_tcp_hostile_resume("pointcast-ack2"),
    "tcp-resume-after-acks": case_tcp_resume_after_acks,
    "daemon-offer": case_daemon_offer,
    "tcp-aiortc-offers": case_tcp_aiortc_offers,
    "tcp-rtcpeer-offers": case_tcp_rtcpeer_offers,
    "tcp-rtcpeer-offers-partial": lambda: case_tcp_rtcpeer_offers(partial=True),
    "http-rtcpeer-offers": case_http_rtcpeer_offers,
    "tcp-aiortc-offers-video": lambda: case_tcp_aiortc_offers(video=True),
    "tcp-rtcpeer-offers-video": lambda: case_tcp_rtcpeer_offers(video=True),
    "tcp-aiortc-sends-video": case_tcp_aiortc_sends_video,
    "tcp-stalled-fragments": case_tcp_stalled_fragments,
}

if __name__ == "__main__":
    logging.getLogger("aiortc").setLevel(logging.WARNING)
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        sys.exit("usage: interop_aiortc.py %s" % "|".join(CASES))
    if not shutil.which("gst-launch-1.0"):
        sys.exit("gst-launch-1.0 not found")
    asyncio.run(asyncio.wait_for(CASES[sys.argv[1]](), 3 * TIMEOUT))
