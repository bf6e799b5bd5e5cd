#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Integration tests of pointcast-signaling on loopback with python3-websockets clients.

Usage: test_daemon.py DAEMON CASE   (CASE: rooms, offer, tls, token, malformed, http, shutdown,
keepalive, duplicate). Each case starts its own daemon on a free port (--port 0) and exits non-zero on the
first failed check.
"""
import asyncio
import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import websockets

from room_schema import check_server_message  # every received message is checked

DAEMON = None
TIMEOUT = 10


class Daemon:
    def __init__(self, *args, scheme="http"):
        self.log_lines = []
        self.proc = subprocess.Popen(
            [DAEMON, "--host", "127.0.0.1", "--port", "0", "--log-level", "DEBUG", *args],
            stderr=subprocess.PIPE, text=True)
        self.port = None
        deadline = time.time() + TIMEOUT
        while self.port is None:
            line = self.proc.stderr.readline()
            if not line:
                raise AssertionError("daemon exited before listening: rc=%s" % self.proc.wait())
            self.log_lines.append(line)
            if "listening on" in line:
                self.port = int(line.split("127.0.0.1:")[1].split("/")[0])
            if time.time() > deadline:
                raise AssertionError("daemon did not start")
        self.scheme = scheme
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log_lines.append(line)

    @property
    def ws(self):
        return "%s://127.0.0.1:%d/ws" % ("wss" if self.scheme == "https" else "ws", self.port)

    @property
    def http(self):
        return "%s://127.0.0.1:%d" % (self.scheme, self.port)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise AssertionError("daemon ignored SIGTERM")
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        rc = self.stop()
        if exc[0] is None:
            check(rc == 0, "daemon exit status %s" % rc)
        else:
            sys.stderr.write("---- daemon log ----\n" + "".join(self.log_lines[-60:]))


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Client:
    """One WebSocket client; recv() returns parsed JSON, nothing() asserts silence."""

    def __init__(self, ws, name):
        self.ws = ws
        self.name = name

    @classmethod
    async def open(cls, url, name, **kw):
        return cls(await websockets.connect(url, max_size=None, **kw), name)

    async def send(self, obj):
        await self.ws.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    async def recv(self, timeout=TIMEOUT):
        try:
            return check_server_message(json.loads(await asyncio.wait_for(self.ws.recv(), timeout)))
        except asyncio.TimeoutError:
            raise AssertionError("%s: nothing received within %ss" % (self.name, timeout))

    async def expect(self, mtype, **fields):
        m = await self.recv()
        check(m.get("type") == mtype, "%s: expected %s, got %r" % (self.name, mtype, m))
        for k, v in fields.items():
            check(m.get(k) == v, "%s: %s=%r expected, got %r" % (self.name, k, v, m))
        return m

    async def error(self, code=None):
        m = await self.expect("error")
        check(isinstance(m.get("message"), str) and m["message"], "error without message: %r" % m)
        if code:
            check(m.get("code") == code, "%s: error code %r, expected %r (%r)" % (self.name, m.get("code"), code, m))
        return m

    async def closed(self, code):
        """Asserts that the daemon closes this connection with close code `code`, sending nothing
        more before."""
        try:
            m = await asyncio.wait_for(self.ws.recv(), TIMEOUT)
        except websockets.exceptions.ConnectionClosed as e:
            check(e.code == code, "%s: closed with %s, expected %s" % (self.name, e.code, code))
            return
        raise AssertionError("%s: still open (got %r), expected a close with %s" % (self.name, m, code))

    async def nothing(self, wait=0.3):
        try:
            m = await asyncio.wait_for(self.ws.recv(), wait)
        except asyncio.TimeoutError:
            return
        raise AssertionError("%s: unexpected message %s" % (self.name, m))

    async def register(self, cid, room, ctype="peer"):
        await self.send({"type": "register", "client_id": cid, "room_id": room, "client_type": ctype})
        return await self.expect("registered", client_id=cid, room_id=room)


def http(method, url, body=None, headers=None, context=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT, context=context) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


OFFER_SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
             "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
             "a=sctp-port:5000\r\n")
ANSWER_SDP = ("v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
              "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
              "a=sctp-port:5000\r\n")


async def two_rooms(d, url=None, **kw):
    url = url or d.ws
    rooms = {}
    for room, names in (("r1", ["a", "b", "c"]), ("r2", ["x", "y", "z"])):
        clients = []
        for i, n in enumerate(names):
            c = await Client.open(url, n, **kw)
            reg = await c.register(n, room, "browser" if i == 0 else "gstreamer")
            check(reg["peers"] == names[:i], "%s: peers %r, expected %r" % (n, reg["peers"], names[:i]))
            check(all(reg["peer_types"][p] == ("browser" if j == 0 else "gstreamer")
                      for j, p in enumerate(names[:i])), "peer types %r" % reg)
            for earlier in clients:
                await earlier.expect("peer_joined", client_id=n,
                                     client_type="browser" if i == 0 else "gstreamer")
            clients.append(c)
        rooms[room] = clients
    return rooms


async def case_rooms():
    with Daemon() as d:
        rooms = await two_rooms(d)
        a, b, c = rooms["r1"]
        x, y, z = rooms["r2"]
        everyone = [a, b, c, x, y, z]
        # Targeted offer / answer / candidate reach exactly their target, with from_id.
        await a.send({"type": "offer", "target_id": "b", "sdp": {"type": "offer", "sdp": OFFER_SDP}})
        m = await b.expect("offer", from_id="a", target_id="b")
        check(m["sdp"] == {"type": "offer", "sdp": OFFER_SDP}, "offer SDP changed in transit")
        await b.send({"type": "answer", "target_id": "a", "sdp": {"type": "answer", "sdp": ANSWER_SDP}})
        await a.expect("answer", from_id="b")
        cand = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host", "sdpMid": "0",
                "sdpMLineIndex": 0}
        await b.send({"type": "ice_candidate", "target_id": "a", "candidate": cand})
        m = await a.expect("ice_candidate", from_id="b")
        check(m["candidate"] == cand, "candidate changed in transit")
        # Same ids in the other room are different peers.
        await x.send({"type": "ice_candidate", "target_id": "y", "candidate": cand})
        await y.expect("ice_candidate", from_id="x")
        for cl in everyone:
            await cl.nothing(0.1)
        # Broadcast: everyone else in the room, nobody in the other room.
        await c.send({"type": "offer", "sdp": {"type": "offer", "sdp": OFFER_SDP}})
        await a.expect("offer", from_id="c")
        await b.expect("offer", from_id="c")
        for cl in (c, x, y, z):
            await cl.nothing(0.1)
        # Unknown target / peer of another room: error to the sender only.
        await a.send({"type": "offer", "target_id": "y", "sdp": {"type": "offer", "sdp": OFFER_SDP}})
        await a.error("unknown_target")
        # A dropped client (no close handshake) and a closed one both produce peer_left.
        b.ws.transport.abort()
        await a.expect("peer_left", client_id="b")
        await c.expect("peer_left", client_id="b")
        await z.ws.close()
        await x.expect("peer_left", client_id="z")
        await y.expect("peer_left", client_id="z")
        for cl in (a, c, x, y):
            await cl.nothing(0.1)
        # The id is free again.
        b2 = await Client.open(d.ws, "b2")
        reg = await b2.register("b", "r1")
        check(sorted(reg["peers"]) == ["a", "c"], "peers after rejoin: %r" % reg["peers"])
        _, _, metrics = http("GET", d.http + "/metrics")
        metrics = metrics.decode()
        check("pointcast_signaling_clients 5\n" in metrics, "metrics clients:\n" + metrics)
        check("pointcast_signaling_rooms 2\n" in metrics, "metrics rooms")
        check("pointcast_signaling_messages_relayed_total 6\n" in metrics, "metrics relayed:\n" + metrics)


async def answerer_loop(cl, trickle, seen):
    """Answers every HTTP offer it gets, optionally trickling candidates after the answer."""
    while True:
        m = await cl.recv(30)
        seen.append(m)
        if m["type"] != "offer":
            continue
        check(m.get("trickle") is False, "bridge offer must say trickle=false: %r" % m)
        check(m["from_id"].startswith("http-"), "virtual peer id %r" % m["from_id"])
        check(m["sdp"]["sdp"] == OFFER_SDP, "offer SDP changed")
        peer = m["from_id"]
        if trickle:
            await cl.send({"type": "answer", "target_id": peer, "sdp": {"type": "answer", "sdp": ANSWER_SDP}})
            await cl.send({"type": "ice_candidate", "target_id": peer, "candidate": {
                "candidate": "candidate:7 1 udp 2122260223 127.0.0.1 41000 typ host",
                "sdpMid": "0", "sdpMLineIndex": 0}})
            await cl.send({"type": "ice_candidate", "target_id": peer, "candidate": None})
        else:
            await cl.send({"type": "answer", "target_id": peer, "trickle": False, "sdp": {
                "type": "answer", "sdp": ANSWER_SDP + "a=candidate:8 1 udp 1 127.0.0.1 42000 typ host\r\n"}})


async def case_offer():
    with Daemon("--offer-timeout", "1.5", "--candidate-grace", "5") as d:
        web = await Client.open(d.ws, "web")
        await web.register("web", "lab", "browser")
        # Only a browser in the room: nobody to answer.
        st, _, body = await asyncio.to_thread(http, "POST", d.http + "/offer?room=lab",
                                              json.dumps({"sdp": OFFER_SDP, "type": "offer"}).encode(),
                                              {"Content-Type": "application/json"})
        check(st == 503 and b"browser" in body, "browser-only room: %s %s" % (st, body))

        gst = await Client.open(d.ws, "gst")
        await gst.register("gst", "lab", "gstreamer")
        await web.expect("peer_joined", client_id="gst")
        seen = []
        task = asyncio.create_task(answerer_loop(gst, True, seen))
        # JSON (aiortc's server example): a trickling answerer still yields a complete answer,
        # and end-of-candidates returns it without waiting for the 5 s grace period.
        t0 = time.time()
        st, hdr, body = await asyncio.to_thread(http, "POST", d.http + "/offer?room=lab",
                                                json.dumps({"sdp": OFFER_SDP, "type": "offer"}).encode(),
                                                {"Content-Type": "application/json"})
        check(st == 200, "JSON offer: %s %s" % (st, body))
        check(time.time() - t0 < 4, "end-of-candidates should finish the answer at once")
        ans = json.loads(body)
        check(ans["type"] == "answer", "answer type %r" % ans)
        check(ans["sdp"].startswith("v=0") and "a=candidate:7 1 udp" in ans["sdp"],
              "trickled candidate not merged:\n" + ans["sdp"])
        check(ans["sdp"].index("a=candidate:7") > ans["sdp"].index("m=application"), "candidate placement")
        await web.nothing(0.1)  # the browser never saw the bridge
        task.cancel()

        # WHIP: application/sdp in, 201 + Location + application/sdp out; DELETE ends it.
        gst2 = await Client.open(d.ws, "gst2")
        await gst2.register("rx", "lab", "receiver")  # a receiver is preferred over gst
        await web.expect("peer_joined", client_id="rx")
        await gst.expect("peer_joined", client_id="rx")
        seen2 = []
        task = asyncio.create_task(answerer_loop(gst2, False, seen2))
        st, hdr, body = await asyncio.to_thread(http, "POST", d.http + "/offer?room=lab", OFFER_SDP.encode(),
                                                {"Content-Type": "application/sdp"})
        check(st == 201, "WHIP offer: %s %s" % (st, body))
        check(hdr.get("Content-Type", "").startswith("application/sdp"), "WHIP content type %r" % hdr)
        loc = hdr.get("Location", "")
        # The resource URL is a capability: random, not derived from the peer id.
        check(len(loc) == 39 and loc.startswith("/offer/") and all(c in "0123456789abcdef" for c in loc[7:]),
              "Location %r" % loc)
        check(b"a=candidate:8 1 udp" in body, "answer SDP returned as is")
        st, _, _ = await asyncio.to_thread(http, "DELETE", d.http + loc)
        check(st == 200, "DELETE session: %s" % st)
        await asyncio.sleep(0.3)
        peer = next(m["from_id"] for m in seen2 if m["type"] == "offer")
        check(any(m["type"] == "peer_left" and m["client_id"] == peer for m in seen2),
              "answerer not told the WHIP session ended: %r" % seen2)
        st, _, _ = await asyncio.to_thread(http, "DELETE", d.http + loc)
        check(st == 404, "second DELETE: %s" % st)
        task.cancel()
        await gst.nothing(0.1)

        # Bad bodies: 4xx with a reason, nothing sent to the answerer.
        bad = [
            (b"", "application/json", 400), (b"{not json", "application/json", 400),
            (b"[1]", "application/json", 400), (b'{"type":"offer"}', "application/json", 400),
            (json.dumps({"sdp": OFFER_SDP, "type": "answer"}).encode(), "application/json", 400),
            (json.dumps({"sdp": "hello", "type": "offer"}).encode(), "application/json", 400),
            (b"hello", "application/sdp", 400), (OFFER_SDP.encode(), "image/png", 415),
        ]
        for data, ctype, want in bad:
            st, _, body = await asyncio.to_thread(http, "POST", d.http + "/offer?room=lab", data,
                                                  {"Content-Type": ctype})
            check(st == want, "bad body %r (%s): %s %s, expected %s" % (data[:20], ctype, st, body, want))
            check(json.loads(body).get("error"), "no reason for %r" % data[:20])
        st, _, body = await asyncio.to_thread(http, "GET", d.http + "/offer")
        check(st == 405, "GET /offer: %s" % st)
        st, _, body = await asyncio.to_thread(http, "POST", d.http + "/offer?room=lab&target=ghost",
                                              OFFER_SDP.encode(), {"Content-Type": "application/sdp"})
        check(st == 404 and b"ghost" in body, "unknown target: %s %s" % (st, body))
        st, _, body = await asyncio.to_thread(http, "POST", d.http + "/offer?room=nobody-here",
                                              OFFER_SDP.encode(), {"Content-Type": "application/sdp"})
        check(st == 503, "empty room: %s" % st)
        # Answerer that never answers: 503 after --offer-timeout, and it hears the peer left.
        t0 = time.time()
        st, _, body = await asyncio.to_thread(http, "POST", d.http + "/offer?room=lab&target=gst",
                                              OFFER_SDP.encode(), {"Content-Type": "application/sdp"})
        check(st == 503 and b"within" in body, "timeout: %s %s" % (st, body))
        check(1.2 < time.time() - t0 < 6, "timeout took %.1fs" % (time.time() - t0))
        m = await gst.expect("offer")
        await gst.expect("peer_left", client_id=m["from_id"])
        await web.nothing(0.1)


def make_cert(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


async def case_tls():
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = make_cert(tmp)
        ctx = ssl.create_default_context(cafile=cert)
        with Daemon("--tls-cert", cert, "--tls-key", key, scheme="https") as d:
            check(d.ws.startswith("wss://"), d.ws)
            rooms = await two_rooms(d, ssl=ctx)
            a, b, _ = rooms["r1"]
            await a.send({"type": "offer", "target_id": "b", "sdp": {"type": "offer", "sdp": OFFER_SDP}})
            await b.expect("offer", from_id="a")
            st, _, body = await asyncio.to_thread(http, "GET", d.http + "/healthz", None, None, ctx)
            check(st == 200, "https healthz %s" % st)
            # The certificate is really checked: an unrelated CA is refused.
            try:
                await websockets.connect(d.ws, ssl=ssl.create_default_context())
                raise AssertionError("untrusted certificate accepted")
            except ssl.SSLError:
                pass
            # Plain ws:// to the TLS port does not get through.
            try:
                ws = await websockets.connect("ws://127.0.0.1:%d/ws" % d.port, open_timeout=3)
                await ws.close()
                raise AssertionError("plain ws:// accepted on the TLS port")
            except (websockets.exceptions.InvalidHandshake, websockets.exceptions.InvalidMessage,
                    ConnectionError, asyncio.TimeoutError, EOFError, OSError):
                pass
        # A key that does not exist is a clear startup error.
        p = subprocess.run([DAEMON, "--port", "0", "--tls-cert", cert, "--tls-key", "/nonexistent"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        check(p.returncode != 0 and "TLS" in p.stderr, "bad key: %s %s" % (p.returncode, p.stderr))


async def case_token():
    with Daemon("--token", "s3cret") as d:
        # A token in the URL is refused even when right (URLs end up in logs); so is a wrong one.
        for url, kw in ((d.ws + "?token=wrong", {}), (d.ws + "?token=s3cret", {}),
                        (d.ws, {"extra_headers": {"Authorization": "Bearer nope"}})):
            try:
                await websockets.connect(url, **kw)
                raise AssertionError("connected without the right token: %s %s" % (url, kw))
            except websockets.exceptions.InvalidStatusCode as e:
                check(e.status_code == 401, "status %s" % e.status_code)
        # Without a header (a browser cannot set one) the register message must carry it.
        for reg in ({"type": "register", "client_id": "x"}, {"type": "register", "client_id": "x", "token": "s3cre"},
                    {"type": "offer", "target_id": "a", "sdp": "v=0", "token": "s3cret"}):
            x = await Client.open(d.ws, "x")
            await x.send(reg)
            await x.error("unauthorized")
            await x.closed(1008)
        a = await Client.open(d.ws, "a")
        await a.send({"type": "register", "client_id": "a", "room_id": "r", "token": "s3cret"})
        await a.expect("registered", client_id="a", room_id="r")
        b = await Client.open(d.ws, "b", extra_headers={"Authorization": "Bearer s3cret"})
        await b.register("b", "r")
        await a.expect("peer_joined", client_id="b")
        await b.send({"type": "ice_candidate", "target_id": "a", "candidate": None})
        await a.expect("ice_candidate", from_id="b")
        st, hdr, _ = await asyncio.to_thread(http, "POST", d.http + "/offer", OFFER_SDP.encode(),
                                             {"Content-Type": "application/sdp"})
        check(st == 401 and "Bearer" in hdr.get("WWW-Authenticate", ""), "offer without token: %s" % st)
        st, _, _ = await asyncio.to_thread(http, "GET", d.http + "/healthz")
        check(st == 200, "healthz stays open: %s" % st)
        _, _, m = await asyncio.to_thread(http, "GET", d.http + "/metrics")
        check(b"pointcast_signaling_http_unauthorized_total 4\n" in m, m.decode())


async def case_malformed():
    with Daemon("--max-message-size", "4096", "--max-rate", "200") as d:
        # A well-behaved pair in another room keeps talking throughout.
        p = await Client.open(d.ws, "p")
        q = await Client.open(d.ws, "q")
        await p.register("p", "quiet")
        await q.register("q", "quiet")
        await p.expect("peer_joined", client_id="q")
        stop = asyncio.Event()
        exchanged = [0]

        async def ping_pong():
            i = 0
            while not stop.is_set():
                await p.send({"type": "ice_candidate", "target_id": "q",
                              "candidate": {"candidate": "candidate:%d 1 udp 1 127.0.0.1 9 typ host" % i,
                                            "sdpMid": "0"}})
                m = await q.expect("ice_candidate", from_id="p")
                check(m["candidate"]["candidate"].startswith("candidate:%d " % i), "out of order")
                await q.send({"type": "answer", "target_id": "p", "sdp": "v=0\r\n"})
                await p.expect("answer", from_id="q")
                i += 1
                exchanged[0] = i
                await asyncio.sleep(0.01)

        talk = asyncio.create_task(ping_pong())

        bad = await Client.open(d.ws, "bad")
        other = await Client.open(d.ws, "other")
        cases = [
            ("not json", "bad_json"), ("{\"type\":", "bad_json"), ("", "bad_json"),
            ("[1,2,3]", "not_object"), ("\"register\"", "not_object"), ("null", "not_object"),
            ("{}", "missing_type"), ("{\"type\":42}", "missing_type"),
            ("{\"type\":\"hello\"}", "unknown_type"),
            ("{\"type\":\"registered\",\"client_id\":\"a\",\"room_id\":\"r\",\"peers\":[]}", "unknown_type"),
            ("{\"type\":\"offer\",\"target_id\":\"x\",\"sdp\":\"v=0\"}", "not_registered"),
            ("{\"type\":\"register\"}", "missing_field"),
            ("{\"type\":\"register\",\"client_id\":[]}", "bad_field"),
            ("{\"type\":\"register\",\"client_id\":\"\"}", "bad_field"),
            ("{\"type\":\"register\",\"client_id\":\"" + "x" * 300 + "\"}", "bad_field"),
            ("{\"type\":\"register\",\"client_id\":\"m\",\"room_id\":\"noisy\"}", None),  # ok
            ("{\"type\":\"register\",\"client_id\":\"m2\",\"room_id\":\"noisy\"}", "already_registered"),
            ("{\"type\":\"offer\",\"target_id\":\"q\",\"sdp\":\"v=0\"}", "unknown_target"),
            ("{\"type\":\"offer\",\"target_id\":\"m\",\"sdp\":\"v=0\"}", "unknown_target"),
            ("{\"type\":\"offer\",\"target_id\":\"o\"}", "missing_field"),
            ("{\"type\":\"offer\",\"target_id\":\"o\",\"sdp\":{\"type\":\"answer\",\"sdp\":\"v=0\"}}", "bad_field"),
            ("{\"type\":\"answer\",\"target_id\":\"o\",\"sdp\":17}", "bad_field"),
            ("{\"type\":\"ice_candidate\",\"target_id\":\"o\"}", "missing_field"),
            ("{\"type\":\"ice_candidate\",\"target_id\":\"o\",\"candidate\":\"c\"}", "bad_field"),
            ("{\"type\":\"ice_candidate\",\"target_id\":\"o\",\"candidate\":{\"candidate\":\"c\",\"sdpMLineIndex\":\"0\"}}", "bad_field"),
            ("{\"type\":\"offer\",\"target_id\":\"o\",\"sdp\":\"" + "x" * 5000 + "\"}", "message_too_large"),
            (b"\x00\x01binary", "binary_not_supported"),
            ("{\"type\":\"register\",\"client_id\":\"\\u00e9\\ud83d\\ude00\",\"room_id\":\"r\u00e9\"}", "already_registered"),
            ("{\"type\":\"offer\",\"target_id\":\"\\u0000\",\"sdp\":\"v=0\"}", "bad_field"),
        ]
        for text, code in cases:
            await bad.send(text)
            if code is None:
                await bad.expect("registered")
            else:
                await bad.error(code)
        # Registering the same id twice in a room.
        await other.send({"type": "register", "client_id": "m", "room_id": "noisy"})
        await other.error("duplicate_client_id")
        await other.register("o", "noisy")
        await bad.expect("peer_joined", client_id="o")
        # The noisy client still works after all that.
        await bad.send({"type": "offer", "target_id": "o", "sdp": {"type": "offer", "sdp": "v=0\r\n"}})
        await other.expect("offer", from_id="m")
        # Over the rate limit: dropped with one rate_limited error; flooding gets it disconnected.
        flood = json.dumps({"type": "ice_candidate", "target_id": "o", "candidate": None})
        for _ in range(1500):
            try:
                await bad.send(flood)
            except websockets.exceptions.ConnectionClosed:
                break
        codes = []
        try:
            while True:
                m = await bad.recv(5)
                codes.append(m.get("code"))
        except websockets.exceptions.ConnectionClosed as e:
            check(e.rcvd and e.rcvd.code == 1008, "flooder closed with %r" % e.rcvd)
        check("rate_limited" in codes, "no rate_limited error: %r" % codes[:5])
        got = 0
        while True:
            m = await other.recv()
            if m["type"] == "peer_left":
                check(m["client_id"] == "m", "peer_left %r" % m)
                break
            got += 1
        check(0 < got < 1500, "relayed %d of the flood" % got)
        # A frame far over the limit is cut off by the transport without harming anyone else.
        huge = await Client.open(d.ws, "huge")
        await huge.send("x" * 200000)
        try:
            m = await huge.recv(5)
            raise AssertionError("huge frame not refused: %r" % m)
        except websockets.exceptions.ConnectionClosed:
            pass

        before = exchanged[0]
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(talk, TIMEOUT)
        check(exchanged[0] > before, "the quiet room stalled")
        check(d.alive(), "daemon died")
        st, _, _ = http("GET", d.http + "/healthz")
        check(st == 200, "healthz after abuse")
        _, _, m = http("GET", d.http + "/metrics")
        check(b"pointcast_signaling_abuse_disconnects_total 1\n" in m, m.decode())


async def case_http():
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "web")
        os.makedirs(os.path.join(root, "sub"))
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write("<html>pointcast viewer</html>")
        with open(os.path.join(root, "sub", "app.js"), "w") as f:
            f.write("console.log(1)")
        with open(os.path.join(tmp, "secret.txt"), "w") as f:
            f.write("SECRET")
        os.symlink(os.path.join(tmp, "secret.txt"), os.path.join(root, "link.txt"))
        with Daemon("--web-root", root) as d:
            st, hdr, body = http("GET", d.http + "/")
            check(st == 200 and b"pointcast viewer" in body and hdr["Content-Type"].startswith("text/html"),
                  "GET / %s %r" % (st, hdr))
            st, hdr, body = http("GET", d.http + "/sub/app.js")
            check(st == 200 and "javascript" in hdr["Content-Type"], "js %s %r" % (st, hdr))
            st, _, _ = http("GET", d.http + "/missing.html")
            check(st == 404, "missing %s" % st)
            # Path traversal in every spelling stays inside the web root.
            for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/sub/..%2f..%2fsecret.txt",
                         "/link.txt", "/sub/%2e%2e/%2e%2e/secret.txt", "/..%5csecret.txt"):
                with socket.create_connection(("127.0.0.1", d.port), timeout=TIMEOUT) as s:
                    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
                    data = b""
                    while chunk := s.recv(65536):
                        data += chunk
                status = int(data.split(b" ", 2)[1])
                check(400 <= status < 500 and b"SECRET" not in data, "traversal %s -> %s" % (path, data[:60]))
            st, _, _ = http("POST", d.http + "/index.html", b"x")
            check(st == 405, "POST static %s" % st)
            st, _, body = http("GET", d.http + "/healthz")
            check(st == 200 and body.strip() == b"ok", "healthz %s %r" % (st, body))
            st, hdr, body = http("GET", d.http + "/metrics")
            text = body.decode()
            check(st == 200 and hdr["Content-Type"].startswith("text/plain"), "metrics %s" % st)
            for name in ("clients", "rooms", "messages_relayed_total", "errors_total"):
                check("# TYPE pointcast_signaling_%s " % name in text and
                      "\npointcast_signaling_%s " % name in text, "metric %s missing" % name)
            # Body size limit.
            st, _, _ = http("POST", d.http + "/offer", b"x" * (2 << 20), {"Content-Type": "application/sdp"})
            check(st == 413, "huge body %s" % st)
        # Bad command lines are refused with a reason.
        for args in (["--port", "70000"], ["--log-level", "LOUD"], ["--bogus"], ["--tls-cert", "/x"]):
            p = subprocess.run([DAEMON, *args], capture_output=True, text=True, timeout=TIMEOUT)
            check(p.returncode != 0 and p.stderr, "accepted %r" % args)
        # PORT and LOG_LEVEL from the environment.
        env = dict(os.environ, PORT="0", LOG_LEVEL="WARNING")
        p = subprocess.Popen([DAEMON, "--host", "127.0.0.1"], env=env, stderr=subprocess.PIPE, text=True)
        time.sleep(1)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=TIMEOUT)
        check(p.returncode == 0, "SIGINT exit %s" % p.returncode)
        check("[INFO]" not in err, "LOG_LEVEL=WARNING ignored: %s" % err)
        env = dict(os.environ, PORT="0")
        p = subprocess.Popen([DAEMON, "--host", "127.0.0.1"], env=env, stderr=subprocess.PIPE, text=True)
        line = p.stderr.readline()
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=TIMEOUT)
        import re
        check(re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[INFO\] main: listening on http://127\.0\.0\.1:\d+/", line),
              "log line format: %r" % line)


async def case_shutdown():
    d = Daemon()
    a = await Client.open(d.ws, "a")
    await a.register("a", "r")
    t0 = time.time()
    d.proc.send_signal(signal.SIGTERM)
    try:
        await a.recv(5)
        raise AssertionError("message instead of close")
    except websockets.exceptions.ConnectionClosed as e:
        check(e.rcvd is not None and e.rcvd.code == 1001, "close frame %r" % e.rcvd)
    rc = d.proc.wait(TIMEOUT)
    check(rc == 0 and time.time() - t0 < 5, "exit %s after %.1fs" % (rc, time.time() - t0))
    check(any("shutting down" in l for l in d.log_lines + [d.proc.stderr.read() or ""]), "no shutdown log")


def raw_ws(port):
    """A bare WebSocket client on a socket: it never answers pings (a hung or vanished peer)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    check(data.startswith(b"HTTP/1.1 101"), data[:40])
    return s, data.split(b"\r\n\r\n", 1)[1]


def raw_send_text(s, text):
    payload = text.encode()
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126, n >> 8, n & 0xFF])
    s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


async def case_keepalive():
    with Daemon("--ping-interval", "1") as d:
        live = await Client.open(d.ws, "live", ping_interval=None)  # answers pings, sends none
        await live.register("live", "ka")
        s, data = raw_ws(d.port)
        raw_send_text(s, json.dumps({"type": "register", "client_id": "hung", "room_id": "ka"}))
        await live.expect("peer_joined", client_id="hung")
        # The silent peer gets pings, never answers, and is dropped within about two intervals;
        # its room hears peer_left. The live client, which answers, stays.
        t0 = time.time()
        s.settimeout(0.5)
        opcodes = []
        dropped = False
        while time.time() - t0 < 8 and not dropped:
            while len(data) >= 2 and len(data) >= 2 + (data[1] & 0x7F):
                opcodes.append(data[0] & 0x0F)
                data = data[2 + (data[1] & 0x7F):]
            try:
                chunk = await asyncio.to_thread(s.recv, 4096)
            except socket.timeout:
                continue
            except ConnectionError:
                chunk = b""
            if not chunk:
                dropped = True
            data += chunk
        check(0x9 in opcodes, "no ping frame from the server: %r" % opcodes)
        check(dropped, "a peer that never answers pings was not dropped")
        check(time.time() - t0 < 6, "dropped only after %.1fs" % (time.time() - t0))
        await live.expect("peer_left", client_id="hung")
        s.close()
        await asyncio.sleep(2.5)  # several more ping intervals
        other = await Client.open(d.ws, "other")
        await other.register("other", "ka")
        await live.expect("peer_joined", client_id="other")


def raw_frames(data):
    """(opcode, payload) of each whole unmasked server frame in data."""
    out = []
    while len(data) >= 2:
        n, off = data[1] & 0x7F, 2
        if n == 126:
            n, off = int.from_bytes(data[2:4], "big"), 4
        if len(data) < off + n:
            break
        out.append((data[0] & 0x0F, data[off:off + n]))
        data = data[off + n:]
    return out


async def case_duplicate():
    """A client_id registered again while its holder's connection is open. A live holder (it
    answers the daemon's ping) keeps its id: the stranger gets duplicate_client_id, the room
    hears nothing. A silent one (a raw socket that stopped reading and answering: a peer gone
    without a close) is dropped within the 2 s probe and the newcomer registered (keep-alive
    alone would take 20-40 s). A second newcomer racing for the same id is refused at once."""
    with Daemon() as d:  # default --ping-interval 20: keep-alive is not what frees the id
        obs = await Client.open(d.ws, "obs")
        await obs.register("obs", "dup")
        live = await Client.open(d.ws, "live")
        await live.register("cam", "dup")
        await obs.expect("peer_joined", client_id="cam")
        stranger = await Client.open(d.ws, "stranger")
        t0 = time.time()
        await stranger.send({"type": "register", "client_id": "cam", "room_id": "dup"})
        await stranger.error("duplicate_client_id")
        took = time.time() - t0
        check(took < 1.0, "a live holder's answer took %.2f s to refuse the stranger" % took)
        await obs.nothing(2.5)  # no peer_left for cam, not even after the probe's bound
        await live.send({"type": "offer", "target_id": "obs", "sdp": {"type": "offer", "sdp": "v=0\r\n"}})
        await obs.expect("offer", from_id="cam")
        await stranger.send({"type": "offer", "target_id": "obs", "sdp": {"type": "offer", "sdp": "v=0\r\n"}})
        await stranger.error("not_registered")
        await obs.nothing()

        s, data = raw_ws(d.port)
        raw_send_text(s, json.dumps({"type": "register", "client_id": "robot", "room_id": "dup"}))
        await obs.expect("peer_joined", client_id="robot")
        # From here the raw socket is never read: its ping stays unanswered.
        new = await Client.open(d.ws, "new")
        racer = await Client.open(d.ws, "racer")
        t0 = time.time()
        await new.send({"type": "register", "client_id": "robot", "room_id": "dup", "client_type": "restarted"})
        await new.send({"type": "offer", "target_id": "obs", "sdp": {"type": "offer", "sdp": "v=0\r\n"}})
        await asyncio.sleep(0.3)  # the racer comes second (connections are not ordered)
        await racer.send({"type": "register", "client_id": "robot", "room_id": "dup"})
        await racer.error("duplicate_client_id")
        check(time.time() - t0 < 1.0, "the racing newcomer waited %.2f s" % (time.time() - t0))
        await new.error("not_registered")  # sent while waiting: dropped, said so
        reg = await new.expect("registered", client_id="robot", room_id="dup")
        took = time.time() - t0
        print("silent holder replaced %.2f s after the new register (probe 2 s)" % took)
        check(1.9 <= took <= 3.5, "registered after %.2f s (bound: the 2 s probe + 1.5 s)" % took)
        check(sorted(reg["peers"]) == ["cam", "obs"], reg)
        await obs.expect("peer_left", client_id="robot")
        await obs.expect("peer_joined", client_id="robot", client_type="restarted")
        await new.send({"type": "offer", "target_id": "obs", "sdp": {"type": "offer", "sdp": "v=0\r\n"}})
        await obs.expect("offer", from_id="robot")
        # What the silent socket was sent: the probe's ping, then a close 4001.
        s.settimeout(5)
        while not any(op == 0x8 for op, _ in raw_frames(data)):
            chunk = await asyncio.to_thread(s.recv, 65536)
            if not chunk:
                break
            data += chunk
        frames = raw_frames(data)
        check(0x9 in [op for op, _ in frames], "no ping to the holder: %r" % frames)
        close = [p for op, p in frames if op == 0x8]
        check(close and int.from_bytes(close[0][:2], "big") == 4001, "close frames: %r" % close)
        s.close()
        metrics = http("GET", d.http + "/metrics")[2].decode()
        check("pointcast_signaling_duplicate_probes_total 2" in metrics
              and "pointcast_signaling_duplicate_replaced_total 1" in metrics, metrics)


def raw_frame(opcode, payload, fin=True, mask=True):
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        head = bytes([b0, (0x80 if mask else 0) | n])
    elif n < 65536:
        head = bytes([b0, (0x80 if mask else 0) | 126, n >> 8, n & 0xFF])
    else:
        head = bytes([b0, (0x80 if mask else 0) | 127]) + n.to_bytes(8, "big")
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawReader:
    def __init__(self, sock, data):
        self.s, self.buf = sock, data
        self.s.settimeout(TIMEOUT)

    def frame(self):
        """(opcode, payload) of the next server frame, or None at end of stream."""
        while True:
            if len(self.buf) >= 2:
                n, hdr = self.buf[1] & 0x7F, 2
                if n == 126 and len(self.buf) >= 4:
                    n, hdr = int.from_bytes(self.buf[2:4], "big"), 4
                elif n == 127 and len(self.buf) >= 10:
                    n, hdr = int.from_bytes(self.buf[2:10], "big"), 10
                if n < 126 or hdr > 2:
                    check(not self.buf[1] & 0x80, "server frames are never masked")
                    if len(self.buf) >= hdr + n:
                        op, payload = self.buf[0] & 0x0F, self.buf[hdr:hdr + n]
                        self.buf = self.buf[hdr + n:]
                        return op, payload
            chunk = self.s.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def text(self):
        f = self.frame()
        check(f is not None and f[0] == 0x1, "expected a text frame, got %r" % (f,))
        return check_server_message(json.loads(f[1]))


async def case_framing():
    """The daemon's own RFC 6455 framing (websocket.cpp), driven byte by byte."""
    with Daemon() as d:
        def run():
            s, data = raw_ws(d.port)
            r = RawReader(s, data)
            # A message in three fragments, with a ping in between: pong first, then the message.
            msg = json.dumps({"type": "register", "client_id": "frag", "room_id": "f"}).encode()
            s.sendall(raw_frame(0x1, msg[:10], fin=False) + raw_frame(0x9, b"hello") +
                      raw_frame(0x0, msg[10:20], fin=False) + raw_frame(0x0, msg[20:]))
            check(r.frame() == (0xA, b"hello"), "pong with the ping's payload")
            check(r.text()["type"] == "registered", "fragmented register")
            # 16-bit and 64-bit lengths: under the limit it is relayed, over it answered.
            big = json.dumps({"type": "ice_candidate", "candidate": None, "pad": "x" * 1000}).encode()
            s.sendall(raw_frame(0x1, big))
            huge = json.dumps({"type": "offer", "sdp": "v=0" + "x" * 70000}).encode()
            s.sendall(raw_frame(0x1, huge))
            e = r.text()
            check(e["type"] == "error" and e["code"] == "message_too_large", "70 kB message: %r" % e)
            s.sendall(raw_frame(0x2, b"\x00\x01"))
            check(r.text()["code"] == "binary_not_supported", "binary frame")
            # Client-initiated close: the code is echoed and the server closes the TCP connection.
            s.sendall(raw_frame(0x8, (4321).to_bytes(2, "big") + b"bye"))
            f = r.frame()
            check(f is not None and f[0] == 0x8 and int.from_bytes(f[1][:2], "big") == 4321, "close echo %r" % (f,))
            check(r.frame() is None, "TCP not closed after the close handshake")
            s.close()
            # Protocol violations end the connection with the right close code.
            for frame, code in ((raw_frame(0x1, b'{"type":"x"}', mask=False), 1002),
                                (raw_frame(0x1, b'{"type":"\xff\xfe"}'), 1007),
                                (raw_frame(0x0, b"orphan continuation"), 1002),
                                (raw_frame(0x9, b"p" * 126), 1002),
                                (bytes([0xC1, 0x80, 0, 0, 0, 0]), 1002)):  # RSV bit set
                s, data = raw_ws(d.port)
                r = RawReader(s, data)
                s.sendall(frame)
                f = r.frame()
                check(f is not None and f[0] == 0x8 and int.from_bytes(f[1][:2], "big") == code,
                      "frame %r: close %r, expected %d" % (frame[:8], f, code))
                check(r.frame() is None, "connection not closed after protocol error")
                s.close()
        await asyncio.to_thread(run)
        # Nothing of that disturbed the daemon.
        a = await Client.open(d.ws, "a")
        await a.register("a", "after")
        check(d.alive(), "daemon died")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    DAEMON = sys.argv[1]
    asyncio.run(asyncio.wait_for(CASES[sys.argv[2]](), 90))
    print("ok", sys.argv[2])
