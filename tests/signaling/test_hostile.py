#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Hostile input against the real pointcast-signaling on loopback.

Usage: test_hostile.py DAEMON CASE. Every case starts its own daemon, has two bystanders ("a" and
"b" in room "bystanders") registered before the attack, and after it checks that the daemon is
alive, that the bystanders still relay an offer both ways, and that the daemon's memory (VmRSS
and VmHWM from /proc) grew by less than the case's stated bound.
"""
import asyncio
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_daemon  # noqa: E402
from test_daemon import (ANSWER_SDP, OFFER_SDP, Client, Daemon, check, http, raw_frame,  # noqa: E402
                         raw_ws)

MIB = 1024 * 1024


def mem(d):
    """(VmRSS, VmHWM) of the daemon in bytes."""
    out = {}
    with open("/proc/%d/status" % d.proc.pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    return out["VmRSS"], out["VmHWM"]


class Bystanders:
    """Two clients registered before the attack; after it they must still talk."""

    def __init__(self, d, url=None, **kw):
        self.d, self.url, self.kw = d, url or d.ws, kw

    async def __aenter__(self):
        self.a = await Client.open(self.url, "a", **self.kw)
        await self.a.register("a", "bystanders")
        self.b = await Client.open(self.url, "b", **self.kw)
        await self.b.register("b", "bystanders")
        await self.a.expect("peer_joined", client_id="b")
        self.rss0, self.hwm0 = mem(self.d)
        return self

    async def relay(self):
        check(self.d.alive(), "the daemon died")
        await self.a.send({"type": "offer", "target_id": "b", "sdp": {"type": "offer", "sdp": OFFER_SDP}})
        m = await self.b.expect("offer", from_id="a")
        check(m["sdp"]["sdp"] == OFFER_SDP, "the offer arrived changed")
        await self.b.send({"type": "answer", "target_id": "a", "sdp": {"type": "answer", "sdp": ANSWER_SDP}})
        await self.a.expect("answer", from_id="b")

    async def __aexit__(self, *exc):
        if exc[0] is None:
            await self.relay()
            rss, hwm = mem(self.d)
            bound = self.bound
            check(hwm - self.hwm0 < bound and rss - self.rss0 < bound,
                  "daemon memory grew by %.1f MiB RSS / %.1f MiB peak, bound %.0f MiB"
                  % ((rss - self.rss0) / MIB, (hwm - self.hwm0) / MIB, bound / MIB))
            print("memory: +%.1f MiB RSS, +%.1f MiB peak (bound %.0f MiB)"
                  % ((rss - self.rss0) / MIB, (hwm - self.hwm0) / MIB, bound / MIB))
        await self.a.ws.close()
        await self.b.ws.close()

    # Under AddressSanitizer (tests/meson.build preloads it) freed memory sits in its quarantine
    # (capped below) and every allocation has redzones, so the daemon's bound is wider there.
    bound = (96 if "libasan" in os.environ.get("LD_PRELOAD", "") else 16) * MIB


def raw_http(port, data, read=True, timeout=10):
    """Sends raw bytes, returns (status, whole response) or (None, b"") when cut off."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if not read:
            return s
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionError, socket.timeout):
                break
            if not chunk:
                break
            buf += chunk
            if b"\r\n\r\n" in buf:
                head, _, body = buf.partition(b"\r\n\r\n")
                n = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if n and len(body) >= n[0]:
                    break
        status = int(buf.split(b" ")[1]) if buf.startswith(b"HTTP/1.1 ") else None
        return status, buf
    finally:
        if read:
            s.close()


def pipelines_dir():
    import tempfile
    d = tempfile.mkdtemp(prefix="pc-hostile-")
    with open(os.path.join(d, "idle.pipeline"), "w") as f:
        f.write("# does nothing\nfakesrc num-buffers=1 ! fakesink\n")
    return d


async def case_json_bomb():
    """A million '[' crashed the daemon (json-glib recursion) on /offer and on the API."""
    with Daemon("--pipelines-dir", pipelines_dir(), "--max-message-size", str(2 * MIB)) as d:
        async with Bystanders(d):
            bomb = b"[" * 1000000
            for ctype in ("application/json", "text/plain"):
                hdrs = {"Content-Type": ctype} if ctype else {}
                st, _, body = http("POST", d.http + "/offer?room=bystanders", bomb, hdrs)
                check(st == 400 and b"nested deeper" in body, "/offer bomb (%s): %s %r" % (ctype, st, body[:200]))
            st, _, body = http("POST", d.http + "/api/pipelines/idle/start", bomb,
                               {"Content-Type": "application/json"})
            check(st == 400 and b"bad_json" in body, "/api bomb: %s %r" % (st, body[:200]))
            # Objects nest the same way; single quotes and comments (json-glib's extensions) are
            # refused before json-glib sees them.
            for text in (b'{"a":' * 200000, b"{'sdp':'v=0','type':'offer'}", b'{"sdp":"v=0"/*x*/}'):
                st, _, body = http("POST", d.http + "/offer?room=bystanders", text, {"Content-Type": "application/json"})
                check(st == 400, "/offer %r...: %s" % (text[:20], st))
            # The same over WebSocket, under the message-size limit.
            c = await Client.open(d.ws, "c")
            await c.send("[" * 1000000)
            await c.error("bad_json")
            await c.send('{"type":"register","client_id":"c",' + '"x":[' * 100000)
            await c.error("bad_json")
            await c.register("c", "other")  # the attacker's own connection stays usable


def send_until_answered(port, head, piece, limit, seconds=30, tls=None):
    """Sends head, then piece over and over (up to limit bytes) while reading the answer in
    between, as curl does. Returns (status or None, bytes sent, whole response). One thread:
    an ssl socket must not be read and written from two threads at once (OpenSSL's SSL object
    is not safe for that; the reader thread this had lost the answer in 2 of 5 TLS runs)."""
    import select
    s = socket.create_connection(("127.0.0.1", port), timeout=seconds)
    if tls:
        s = tls.wrap_socket(s, server_hostname="127.0.0.1")
    resp = bytearray()
    sent = 0
    t0 = time.time()

    def read_some(wait):
        r, _, _ = select.select([s], [], [], wait)
        if not r and not (tls and s.pending()):
            return True
        chunk = s.recv(65536)
        resp.extend(chunk)
        return bool(chunk)
    try:
        s.sendall(head)
        while sent < limit and time.time() - t0 < seconds and not resp:
            if not read_some(0):
                break
            if resp:
                break
            s.sendall(piece)
            sent += len(piece)
    except OSError:
        pass
    try:
        while time.time() - t0 < seconds and read_some(1.0):  # to the daemon's close
            pass
    except OSError:
        pass
    s.close()
    status = int(resp.split(b" ")[1]) if resp.startswith(b"HTTP/1.1 ") else None
    return status, sent, bytes(resp)


async def case_chunked():
    """A body over --max-body-size is answered 413 while it is read, chunked or not, and never
    held: the connection is answered, then closed after the rest is read and dropped."""
    cap = 256 * 1024
    with Daemon("--max-body-size", str(cap)) as d:
        async with Bystanders(d):
            ct = b"POST /offer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            chunk = b"%x\r\n" % MIB + b"[" * MIB + b"\r\n"
            st, sent, resp = await asyncio.to_thread(
                send_until_answered, d.port, ct + b"Transfer-Encoding: chunked\r\n\r\n", chunk, 300 * MIB)
            check(st == 413 and b"--max-body-size" in resp and b"Connection: close" in resp,
                  "chunked 300 MiB: %s %r" % (st, resp[:300]))
            check(sent < 32 * MIB, "the daemon took %d MiB of a chunked body" % (sent // MIB))
            print("chunked body answered 413 after %d MiB were sent (cap 256 KiB)" % (sent // MIB))
            # Small chunks, as a browser's streaming upload sends them: 413 once past the cap.
            small = b"1000\r\n" + b" " * 4096 + b"\r\n"
            st, sent, resp = await asyncio.to_thread(
                send_until_answered, d.port, ct + b"Transfer-Encoding: chunked\r\n\r\n", small, 64 * MIB)
            check(st == 413, "chunked in 4 KiB pieces: %s %r" % (st, resp[:200]))
            # Content-Length over the cap: 413 at once when the client waits for it (Expect)...
            st, resp = raw_http(d.port, ct + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (300 * MIB))
            check(st == 413, "Content-Length 300 MiB with Expect: %s" % st)
            # ... and at its first bytes when it sends the body anyway (libsoup alone would answer
            # only after reading all of it).
            st, sent, resp = await asyncio.to_thread(
                send_until_answered, d.port, ct + b"Content-Length: %d\r\n\r\n" % (300 * MIB), b"x" * MIB, 300 * MIB)
            check(st == 413 and sent < 32 * MIB, "Content-Length 300 MiB: %s after %d MiB" % (st, sent // MIB))
            # Refused for another reason (cross-site) with a huge chunked body: that refusal, early.
            st, sent, resp = await asyncio.to_thread(
                send_until_answered, d.port,
                b"POST /api/pipelines/x/start HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", chunk, 300 * MIB)
            check(st == 403 and sent < 32 * MIB, "refused, chunked: %s after %d MiB" % (st, sent // MIB))
            # Under the cap, chunked, is read and answered.
            body = json.dumps({"type": "offer", "sdp": OFFER_SDP}).encode()
            st, resp = raw_http(d.port, b"POST /offer?room=nobody HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                                        + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
            check(st == 503 and b"no peer" in resp, "small chunked offer: %s %r" % (st, resp[-200:]))
            # Exactly the cap, chunked: read whole (then refused as an object without "sdp").
            pad = b"{" + b" " * (cap - 2) + b"}"
            st, resp = raw_http(d.port, b"POST /offer?room=nobody HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                                        + b"%x\r\n" % len(pad) + pad + b"\r\n0\r\n\r\n")
            check(st == 400, "a body of exactly the cap: %s %r" % (st, resp[-200:]))
            st, _, m = http("GET", d.http + "/metrics")
            check(b"pointcast_signaling_http_body_cut_total 4" in m, "metrics: early answers not counted")
    # The same through TLS: the answer goes through the TLS layer, the rest is read and dropped.
    import ssl
    import tempfile
    cert, key = test_daemon.make_cert(tempfile.mkdtemp(prefix="pc-hostile-tls-"))
    with Daemon("--max-body-size", str(cap), "--tls-cert", cert, "--tls-key", key, scheme="https") as d:
        ctx = ssl.create_default_context(cafile=cert)
        async with Bystanders(d, ssl=ctx):
            st, sent, resp = await asyncio.to_thread(
                send_until_answered, d.port, ct + b"Transfer-Encoding: chunked\r\n\r\n", chunk, 300 * MIB, tls=ctx)
            check(st == 413 and sent < 32 * MIB, "TLS, chunked 300 MiB: %s after %d MiB" % (st, sent // MIB))


async def case_headers():
    """Request headers are bounded (64 KiB, libsoup's limit): an endless header line or endless
    header lines end the connection, not the daemon's memory."""
    with Daemon() as d:
        async with Bystanders(d):
            for what, piece in (("one endless line", b"a" * 65536),
                                ("endless lines", (b"X-A: " + b"a" * 1000 + b"\r\n") * 64)):
                st, sent, resp = await asyncio.to_thread(
                    send_until_answered, d.port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-B: ", piece, 256 * MIB, 20)
                check(sent < 16 * MIB, "%s: the daemon took %d MiB of headers" % (what, sent // MIB))
                print("%s: connection ended after %d KiB" % (what, sent // 1024))


async def case_text():
    """Valid UTF-8 that is not JSON, NUL, lone surrogates and NUL keys: errors, never 1007."""
    with Daemon() as d:
        async with Bystanders(d) as by:
            c = await Client.open(d.ws, "c")
            for text, code in (('"\u0000"', "bad_json"), ("abc\u0000def", "bad_json"),
                               ("not json", "bad_json"), ("{'type':'register'}", "bad_json"),
                               ('{"type":"register","client_id":"\\u0000"}', "bad_field"),
                               ('{"type":"register","client_id":"\\udc00x"}', "bad_field"),
                               ('{"type":"register","client_id":"x\\ud800"}', "bad_field"),
                               ('{"type":"register","client_id":"c","client_id":"d"}', "bad_json")):
                await c.send(text)
                await c.error(code)
            # Nothing of that reached the room: no peer_joined with an undecodable id.
            await by.a.nothing(0.2)
            await by.b.nothing(0.1)
            # A registered member cannot forge another type through an escaped NUL in a key: the
            # daemon refuses it rather than relay text its receivers read differently.
            await c.register("c", "bystanders")
            await by.a.expect("peer_joined", client_id="c")
            await by.b.expect("peer_joined", client_id="c")
            forged = ('{"type":"offer","target_id":"b","sdp":"' + OFFER_SDP.replace("\r\n", "\\r\\n")
                      + '","type\\u0000":"peer_left","client_id":"a"}')
            await c.send(forged)
            await c.error("bad_field")
            await c.send('{"type":"offer","type":"peer_left","target_id":"b","sdp":"v=0"}')
            await c.error("bad_json")
            await by.b.nothing(0.2)
            # Ids with newlines and terminal escapes are relayed as JSON escapes and logged
            # escaped: no log line starts with the attacker's text.
            e = await Client.open(d.ws, "e")
            await e.register("evil\n2026-01-01 00:00:00 [ERROR] fake: line\x1b[31m", "bystanders")
            for who in (by.a, by.b, c):
                m = await who.expect("peer_joined")
                check(m["client_id"].startswith("evil\n"), "id arrived changed: %r" % m)
            await asyncio.sleep(0.2)
            check(not any(l.startswith("2026-01-01") or "\x1b" in l for l in d.log_lines),
                  "an id wrote its own log line: %r" % [l for l in d.log_lines if "fake" in l])
            check(any("evil\\n2026" in l for l in d.log_lines), "the id is logged escaped")


def request(d, method, path, body=None, headers=None):
    """(status, headers, body) of one request with exactly these headers (Host included)."""
    hdrs = {"Host": "127.0.0.1:%d" % d.port, "Connection": "close"}
    hdrs.update(headers or {})
    data = body or b""
    head = "%s %s HTTP/1.1\r\n" % (method, path) + "".join("%s: %s\r\n" % kv for kv in hdrs.items() if kv[1] is not None)
    if body is not None:
        head += "Content-Length: %d\r\n" % len(data)
    st, resp = raw_http(d.port, head.encode() + b"\r\n" + data)
    head, _, rbody = resp.partition(b"\r\n\r\n")
    rh = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.decode().partition(":")
        rh[k.strip().lower()] = v.strip()
    return st, rh, rbody


async def case_cross_site():
    """A page on another site cannot start senders, end sessions or rebind DNS onto the API."""
    with Daemon("--pipelines-dir", pipelines_dir(), "--allow-origin", "https://good.example:8443") as d:
        async with Bystanders(d):
            own = "http://127.0.0.1:%d" % d.port
            start = "/api/pipelines/idle/start"
            js = {"Content-Type": "application/json"}
            for hdrs, want in (
                    ({"Origin": "http://evil.example", **js}, 403),            # cross-site
                    ({"Origin": "null", **js}, 403),                           # sandboxed frame
                    ({"Content-Type": "text/plain"}, 415),                     # a "simple" request
                    ({}, 415),
                    ({"Host": "evil.example:%d" % d.port, **js}, 403),         # DNS rebinding
                    ({"Host": "evil.example:%d" % d.port, "Origin": "http://evil.example:%d" % d.port, **js}, 403)):
                st, _, body = request(d, "POST", start, b'{"room":"x"}', hdrs)
                check(st == want, "POST %s with %r: %s %r" % (start, hdrs, st, body))
            st, _, body = request(d, "GET", "/api/pipelines", None, {"Host": "rebound.example"})
            check(st == 403, "GET /api with a foreign Host: %s" % st)
            # CORS preflights: answered for allowed origins only.
            pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
            st, h, _ = request(d, "OPTIONS", start, None, {"Origin": "http://evil.example", **pre})
            check(st == 403 and "access-control-allow-origin" not in h, "evil preflight: %s %r" % (st, h))
            st, h, _ = request(d, "OPTIONS", start, None, {"Origin": "https://good.example:8443", **pre})
            check(st == 204 and h.get("access-control-allow-origin") == "https://good.example:8443", "good preflight %s %r" % (st, h))
            st, h, body = request(d, "POST", start, b'{"room":"x"}', {"Origin": "https://good.example:8443", **js})
            check(st == 201 and h.get("access-control-allow-origin") == "https://good.example:8443", "allowed origin: %s %r" % (st, body))
            st, h, body = request(d, "POST", start, b'{"room":"y"}', {"Origin": own, **js})
            check(st == 201, "own origin: %s %r" % (st, body))
            # Session resources: only from allowed origins.
            st, _, _ = request(d, "DELETE", "/offer/0123456789abcdef0123456789abcdef", None, {"Origin": "http://evil.example"})
            check(st == 403, "cross-site DELETE /offer/...: %s" % st)
            st, _, _ = request(d, "DELETE", "/offer/0123456789abcdef0123456789abcdef", None, {})
            check(st == 404, "DELETE of an unknown session: %s" % st)
            # /ws and POST /offer stay open to other origins (the seed systems' pages).
            c = await Client.open(d.ws, "c", origin="http://elsewhere.example")
            await c.register("c", "cross")
            st, h, _ = request(d, "POST", "/offer?room=nobody", json.dumps({"type": "offer", "sdp": OFFER_SDP}).encode(),
                               {"Origin": "http://elsewhere.example", **js})
            check(st == 503 and h.get("access-control-allow-origin") == "*", "cross-origin POST /offer: %s %r" % (st, h))
            st, _, m = http("GET", d.http + "/metrics")
            check(b"pointcast_signaling_http_forbidden_total 7" in m, "forbidden requests counted: %r"
                  % [l for l in m.split(b"\n") if b"forbidden" in l])


async def case_events():
    """Event streams are capped (--max-event-subscribers); closing one frees its place."""
    with Daemon("--pipelines-dir", pipelines_dir(), "--max-event-subscribers", "2") as d:
        async with Bystanders(d):
            def open_stream():
                s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
                s.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                head = b""
                while b"\r\n\r\n" not in head:
                    head += s.recv(4096)
                return s, int(head.split(b" ")[1])
            streams = [open_stream() for _ in range(2)]
            check(all(st == 200 for _, st in streams), "streams: %r" % [st for _, st in streams])
            s3, st = open_stream()
            check(st == 503, "a third stream: %s" % st)
            s3.close()
            streams[0][0].close()
            await asyncio.sleep(0.3)
            s4, st = open_stream()
            check(st == 200, "a stream after one closed: %s" % st)
            s4.close()
            streams[1][0].close()


def open_events(port, rcvbuf=None):
    """GET /api/events on a raw socket: (socket, status, bytes after the headers)."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    head, _, rest = head.partition(b"\r\n\r\n")
    return s, int(head.split(b" ")[1]), rest


async def case_events_flood():
    """/api/events keeps nothing it sent: a subscriber that reads ~30 MB of events leaves the
    daemon's memory flat (libsoup would keep every chunk of a response body by default). A
    subscriber that stops reading is dropped once 1 MiB waits for it, the reader next to it
    gets every event, and the dropped one's place is free again."""
    pdir = pipelines_dir()
    buffers = 640  # each dumped as 256 lines of hex: 163,840 events, ~30 MB of stream
    with open(os.path.join(pdir, "chatty.pipeline"), "w") as f:
        f.write("# prints a hex dump of every buffer, at a steady rate\n"
                "fakesrc num-buffers=%d sizetype=fixed sizemax=4096 filltype=zero dump=true "
                "datarate=524288 sync=true ! fakesink\n" % buffers)
    import threading
    with Daemon("--pipelines-dir", pdir, "--max-event-subscribers", "2") as d:
        async with Bystanders(d):
            fast, st1, rest = open_events(d.port)
            slow, st2, _ = open_events(d.port, rcvbuf=4096)
            check(st1 == 200 and st2 == 200, "streams: %s %s" % (st1, st2))
            got = {"bytes": len(rest), "dump_lines": 0, "exited": False}

            def read_fast():
                buf = rest
                while not got["exited"]:
                    try:
                        chunk = fast.recv(1 << 20)
                    except socket.timeout:
                        break
                    if not chunk:
                        break
                    got["bytes"] += len(chunk)
                    buf += chunk
                    cut = buf.rfind(b"\n\n") + 2
                    done, buf = buf[:cut], buf[cut:]
                    got["dump_lines"] += done.count(b',"line":"00000')
                    got["exited"] = b'"pipeline_exited"' in done
            reader = threading.Thread(target=read_fast)
            reader.start()
            st, _, body = request(d, "POST", "/api/pipelines/chatty/start", json.dumps({"room": "r"}).encode(),
                                  {"Content-Type": "application/json"})
            check(st == 201, "start: %s %r" % (st, body))
            await asyncio.to_thread(reader.join, 120)
            check(got["exited"], "the reader never saw the pipeline end (%d bytes)" % got["bytes"])
            check(got["dump_lines"] == buffers * 256, "the reader got %d of %d lines"
                  % (got["dump_lines"], buffers * 256))
            print("a subscriber read %.1f MB of events (%d lines)" % (got["bytes"] / 1e6, got["dump_lines"]))
            # The one that never read was cut off: what it can still read ends before the end.
            slow.settimeout(5)
            tail = b""
            try:
                while True:
                    chunk = slow.recv(1 << 20)
                    if not chunk:
                        break
                    tail += chunk
            except (socket.timeout, ConnectionError):
                check(False, "the stalled subscriber was not closed")
            check(b"pipeline_exited" not in tail, "the stalled subscriber got the whole stream")
            check(any("stopped reading" in l for l in d.log_lines), "no log line for the drop")
            print("the stalled subscriber was closed after %.1f MB" % (len(tail) / 1e6))
            s3, st, _ = open_events(d.port)
            check(st == 200, "its place was not freed: %s" % st)
            for s in (s3, slow, fast):
                s.close()


async def case_api_exposed():
    """No token and a non-loopback address: the API is off unless --allow-unauthenticated-api.
    Runs in a private network namespace whose lo also holds 10.200.0.1 (not a loopback address)."""
    if os.environ.get("PC_IN_NETNS") != "1":
        import subprocess
        script = "ip link set lo up && ip addr add 10.200.0.1/32 dev lo && exec \"$@\""
        rc = subprocess.run(["unshare", "-rn", "sh", "-c", script, "sh", sys.executable, os.path.abspath(__file__),
                             test_daemon.DAEMON, "api-exposed"], env={**os.environ, "PC_IN_NETNS": "1"}).returncode
        sys.exit(rc)
    import urllib.request
    for extra, want in (([], 403), (["--allow-unauthenticated-api"], 200), (["--token", "t0k"], 401)):
        proc = __import__("subprocess").Popen([test_daemon.DAEMON, "--host", "10.200.0.1", "--port", "0", *extra],
                                              stderr=__import__("subprocess").PIPE, text=True)
        try:
            line = ""
            while "listening on" not in line:
                line = proc.stderr.readline()
                check(line, "daemon did not start")
            port = int(line.split("10.200.0.1:")[1].split("/")[0])
            st, _, body = http("GET", "http://10.200.0.1:%d/api/pipelines" % port)
            check(st == want, "%r: GET /api/pipelines %s %r" % (extra, st, body))
            if want == 403:
                check(b"--allow-unauthenticated-api" in body, "the refusal says how to open it: %r" % body)
            st, _, _ = http("GET", "http://10.200.0.1:%d/healthz" % port)
            check(st == 200, "healthz stays open")
        finally:
            proc.terminate()
            proc.wait(10)


async def case_fairness():
    """Connections per address, rate state across reconnects, a reader that stops reading."""
    with Daemon("--max-connections-per-address", "6", "--max-rate", "5", "--max-queued-bytes", str(256 * 1024)) as d:
        async with Bystanders(d) as by:
            extra = [await Client.open(d.ws, "x%d" % i) for i in range(4)]  # 2 bystanders + 4 = 6
            over = await Client.open(d.ws, "over")
            await over.error("server_full")
            await over.closed(1013)  # the 7th connection from one address
            for x in extra:
                await x.ws.close()
            # A flood is rate limited, and reconnecting does not refill the bucket.
            f = await Client.open(d.ws, "f")
            for i in range(30):
                await f.send({"type": "register", "client_id": "", "room_id": "r"})
            codes = [(await f.error())["code"] for _ in range(11)]
            check("rate_limited" in codes, "no rate limit: %r" % codes)
            await f.ws.close()
            f = await Client.open(d.ws, "f2")
            for i in range(3):
                await f.send({"type": "register", "client_id": "", "room_id": "r"})
            m = await f.error()
            check(m["code"] == "rate_limited", "a reconnect got a fresh bucket: %r" % m)
            await f.ws.close()


def hold_headers(port, n):
    """n connections from this address, each sitting on 60 KiB of request headers (libsoup holds
    up to 64 KiB each for --http-timeout)."""
    held = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 60000)
        held.append(s)
    return held


def still_open(socks):
    """How many of socks the daemon still holds: nothing to read and not closed (b"" or a reset:
    closed by the daemon)."""
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            s.recv(1)
        except BlockingIOError:
            n += 1
        except ConnectionError:
            pass
    return n


async def case_http_connections():
    """--max-connections-per-address covers HTTP connections: one address opening many that each
    sit on 60 KiB of headers (libsoup holds up to 64 KiB each for --http-timeout) gets the rest
    closed at their first bytes, memory stays flat, and the address can connect again after."""
    with Daemon("--max-connections-per-address", "8", "--http-timeout", "5") as d:
        async with Bystanders(d):  # two WebSockets: they are not HTTP connections any more
            held = hold_headers(d.port, 200)
            await asyncio.sleep(0.5)
            open_ = still_open(held)
            check(open_ == 8, "%d of 200 header-holding connections from one address stayed open" % open_)
            # The limit is reached: a ninth (this one) is closed too, at once.
            st, sent, _ = await asyncio.to_thread(send_until_answered, d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                                                  b"", 0, 5)
            check(st is None, "a ninth connection was served: %s" % st)
            for s in held:
                s.close()
            await asyncio.sleep(0.3)
            st, _, m = http("GET", d.http + "/metrics")
            check(st == 200, "after they closed, the address connects again: %s" % st)
            check(b"pointcast_signaling_http_address_limit_total 193" in m, "metrics: %r" % m[-300:])
            # WebSockets of that address still have their own limit (Rooms): unaffected.
            c = await Client.open(d.ws, "c")
            await c.register("c", "elsewhere")
            await c.ws.close()
    # Many addresses at once (here: no per-address limit) meet --max-clients, counted for HTTP
    # connections apart from WebSockets.
    with Daemon("--max-connections-per-address", "0", "--max-clients", "6", "--http-timeout", "5") as d:
        async with Bystanders(d):
            held = hold_headers(d.port, 40)
            await asyncio.sleep(0.5)
            open_ = still_open(held)
            for s in held:
                s.close()
            check(open_ == 6, "%d of 40 HTTP connections stayed open with --max-clients 6" % open_)


async def case_connection_churn():
    """10,000 short HTTP connections leave nothing behind (libsoup 3.2 kept every connection's
    GSocket, ~450 bytes each: +4.5 MiB here, without end over a daemon's life)."""
    with Daemon() as d:
        async with Bystanders(d) as by:
            def churn(n):
                for _ in range(n):
                    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    while s.recv(4096):
                        pass
                    s.close()
            await asyncio.to_thread(churn, 500)  # allocator warm-up
            by.rss0, by.hwm0 = mem(d)
            t0 = time.time()
            await asyncio.to_thread(churn, 10000)
            print("10,000 connections in %.1f s" % (time.time() - t0))
            if "libasan" not in os.environ.get("LD_PRELOAD", ""):
                by.bound = 2 * MIB


async def case_slow_reader():
    """A peer that stops reading is dropped once its queue passes --max-queued-bytes; the sender
    and the rest of the room carry on, and the daemon did not buffer the backlog."""
    with Daemon("--max-rate", "0", "--max-queued-bytes", str(256 * 1024)) as d:
        async with Bystanders(d) as by:
            s, data = raw_ws(d.port)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(raw_frame(0x1, json.dumps({"type": "register", "client_id": "slow", "room_id": "bystanders"}).encode()))
            await by.a.expect("peer_joined", client_id="slow")
            await by.b.expect("peer_joined", client_id="slow")
            big = {"type": "ice_candidate", "target_id": "slow",
                   "candidate": {"candidate": "candidate:" + "x" * 60000, "sdpMid": "0"}}
            t0 = time.time()
            sent = 0
            left = None
            while time.time() - t0 < 20 and left is None:
                for _ in range(20):
                    await by.a.send(big)
                sent += 20
                try:
                    m = await asyncio.wait_for(by.b.ws.recv(), 0.05)
                    left = json.loads(m)
                except asyncio.TimeoutError:
                    pass
            check(left and left["type"] == "peer_left" and left["client_id"] == "slow",
                  "the reader that stopped was not dropped (%d sent): %r" % (sent, left))
            # The sender hears it left; what it sent after that was refused as unknown_target.
            while True:
                m = await by.a.recv()
                if m["type"] == "peer_left":
                    break
                check(m.get("code") == "unknown_target", "sender got %r" % m)
            while True:
                try:
                    m = json.loads(await asyncio.wait_for(by.a.ws.recv(), 0.3))
                    check(m.get("code") == "unknown_target", "sender got %r" % m)
                except asyncio.TimeoutError:
                    break
            print("slow reader dropped after %d x 60 KB" % sent)
            s.close()


async def case_offers():
    """Pending HTTP offers are bounded per address and in all; an answerer that never answers
    cannot make the daemon hold requests without end."""
    for args, want, why in ((["--max-pending-offers-per-address", "2"], 429, "per-address"),
                            (["--max-pending-offers-per-address", "0", "--max-pending-offers", "2"], 503, "overall")):
        with Daemon("--offer-timeout", "4", *args) as d:
            async with Bystanders(d):
                mute = await Client.open(d.ws, "mute")
                await mute.register("mute", "offers", "answerer")
                body = json.dumps({"type": "offer", "sdp": OFFER_SDP}).encode()
                hdr = {"Content-Type": "application/json"}
                pending = [asyncio.create_task(asyncio.to_thread(http, "POST", d.http + "/offer?room=offers", body, hdr))
                           for _ in range(2)]
                for _ in range(2):
                    await mute.expect("offer")
                st, _, text = await asyncio.to_thread(http, "POST", d.http + "/offer?room=offers", body, hdr)
                check(st == want and b"pending" in text, "%s: third offer %s %r" % (why, st, text))
                for p in pending:
                    st, _, _ = await p
                    check(st == 503, "an unanswered offer times out with 503: %s" % st)
                for _ in range(2):
                    await mute.expect("peer_left")  # the answerer hears the timed-out ones end
                # Once they are settled, offers go through again.
                task = asyncio.create_task(asyncio.to_thread(http, "POST", d.http + "/offer?room=offers", body, hdr))
                m = await mute.expect("offer")
                await mute.send({"type": "answer", "target_id": m["from_id"], "trickle": False,
                                  "sdp": {"type": "answer", "sdp": ANSWER_SDP}})
                st, _, _ = await task
                check(st == 200, "offer after the others settled: %s" % st)


async def case_offer_size():
    """An HTTP offer is relayed only when it fits the room's message limit: a 1 MiB body is a
    valid request, but rtcpeer (and a browser) would drop its connection on a 1 MiB message."""
    with Daemon("--max-message-size", "16384") as d:
        async with Bystanders(d):
            ans = await Client.open(d.ws, "ans")
            await ans.register("ans", "offers", "answerer")
            big = OFFER_SDP + "a=x-pad:" + "p" * 20000 + "\r\n"
            for ctype, body in (("application/json", json.dumps({"type": "offer", "sdp": big}).encode()),
                                ("application/sdp", big.encode())):
                st, _, text = await asyncio.to_thread(http, "POST", d.http + "/offer?room=offers", body,
                                                      {"Content-Type": ctype})
                check(st == 413 and b"--max-message-size" in text, "%s, 20 KB SDP: %s %r" % (ctype, st, text))
            # A WHIP SDP of many short lines grows when escaped (CRLF -> \r\n): counted as sent.
            lines = OFFER_SDP + "a=x:y\r\n" * 2000  # 14 KB as sent, 18 KB escaped
            st, _, text = await asyncio.to_thread(http, "POST", d.http + "/offer?room=offers", lines.encode(),
                                                  {"Content-Type": "application/sdp"})
            check(st == 413, "SDP of 2000 short lines: %s %r" % (st, text))
            await ans.nothing(0.3)
            # One that fits goes through to the same answerer.
            task = asyncio.create_task(asyncio.to_thread(
                http, "POST", d.http + "/offer?room=offers", json.dumps({"type": "offer", "sdp": OFFER_SDP}).encode(),
                {"Content-Type": "application/json"}))
            m = await ans.expect("offer")
            await ans.send({"type": "answer", "target_id": m["from_id"], "trickle": False,
                            "sdp": {"type": "answer", "sdp": ANSWER_SDP}})
            st, _, _ = await task
            check(st == 200, "an offer that fits: %s" % st)


async def case_timeouts():
    """Idle, slow and half-open connections are closed after --http-timeout; TLS handshakes too."""
    import ssl
    import tempfile
    cert, key = test_daemon.make_cert(tempfile.mkdtemp(prefix="pc-hostile-tls-"))
    for tls in (False, True):
        extra = ["--tls-cert", cert, "--tls-key", key] if tls else []
        with Daemon("--http-timeout", "1", *extra, scheme="https" if tls else "http") as d:
            ctx = ssl.create_default_context(cafile=cert)
            async with Bystanders(d, ssl=ctx if tls else None) if tls else Bystanders(d) as by:
                if tls:
                    ctx.check_hostname = False
                sends = [b"", b"GET /healthz HTTP/1.1\r\nHost: x", b"POST /offer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"]
                if tls:
                    sends = [b"", b"\x16\x03\x01\x02\x00\x01"]  # nothing, or half a ClientHello
                socks = []
                for data in sends * 20:  # 20 of each at once
                    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
                    s.sendall(data)
                    socks.append(s)
                t0 = time.time()
                for s in socks:
                    try:
                        while s.recv(4096):
                            pass
                    except ConnectionError:
                        pass
                    s.close()
                took = time.time() - t0
                check(took < 4, "%d stalled connections took %.1fs to be closed" % (len(socks), took))
                # A keep-alive connection left idle after a request is closed too.
                if not tls:
                    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    t0 = time.time()
                    got = b""
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        got += chunk
                    check(got.startswith(b"HTTP/1.1 200") and time.time() - t0 < 4, "idle keep-alive: %r" % got[:20])
                    s.close()
                # WebSockets are not HTTP requests any more: they outlive the timeout.
                await asyncio.sleep(1.5)
                print("%s: %d stalled connections closed in %.1fs" % ("TLS" if tls else "TCP", len(socks), took))


CASES = {name[5:].replace("_", "-"): fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=32"
    test_daemon.DAEMON = sys.argv[1]
    asyncio.run(CASES[sys.argv[2]]())
    print("ok:", sys.argv[2])
