#!/usr/bin/python3
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
from test_daemon import (ANSWER_SDP, OFFER_SDP, Client, Daemon, RawReader, check, http,  # noqa: E402
                         raw_frame, raw_ws)

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

    bound = 16 * MIB


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


async def case_chunked():
    """A chunked body is cut off at --max-body-size while it is read, never held whole."""
    with Daemon("--max-body-size", str(256 * 1024)) as d:
        async with Bystanders(d):
            s = raw_http(d.port, b"POST /offer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n", read=False)
            chunk = b"%x\r\n" % MIB + b"[" * MIB + b"\r\n"
            sent = 0
            t0 = time.time()
            try:
                while sent < 300 * MIB and time.time() - t0 < 30:
                    await asyncio.to_thread(s.sendall, chunk)
                    sent += MIB
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                pass
            s.close()
            check(sent < 32 * MIB, "the daemon took %d MiB of a chunked body" % (sent // MIB))
            print("chunked body cut off after %d MiB were sent (cap 256 KiB)" % (sent // MIB))
            # Content-Length over the cap: 413 at once when the client waits for it (Expect), and
            # a body sent anyway is discarded as it arrives, then cut off.
            st, resp = raw_http(d.port, b"POST /offer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                        b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (300 * MIB))
            check(st == 413, "Content-Length 300 MiB: %s" % st)
            s = raw_http(d.port, b"POST /offer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n" % (300 * MIB), read=False)
            sent = 0
            try:
                while sent < 300 * MIB and time.time() - t0 < 60:
                    await asyncio.to_thread(s.sendall, b"x" * MIB)
                    sent += MIB
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                pass
            s.close()
            check(sent < 64 * MIB, "the daemon read %d MiB of a refused body" % (sent // MIB))
            # Under the cap, chunked, is read and answered.
            body = json.dumps({"type": "offer", "sdp": OFFER_SDP}).encode()
            st, resp = raw_http(d.port, b"POST /offer?room=nobody HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                                        + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
            check(st == 503 and b"no peer" in resp, "small chunked offer: %s %r" % (st, resp[-200:]))
            st, _, m = http("GET", d.http + "/metrics")
            check(b"pointcast_signaling_http_body_cut_total 2" in m, "metrics: body cuts not counted")


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


CASES = {name[5:].replace("_", "-"): fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    test_daemon.DAEMON = sys.argv[1]
    asyncio.run(CASES[sys.argv[2]]())
    print("ok:", sys.argv[2])
