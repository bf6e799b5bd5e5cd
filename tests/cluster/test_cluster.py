#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Daemons sharing rooms through Redis, on loopback: a redis-server started here (free port, no
persistence) and two or three pointcast-signaling daemons with --redis.

Usage: test_cluster.py DAEMON CASE   (CASE: relay, offer, duplicate, vanished, kill, redis-restart,
       redis-stall, hostile)
"""
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "signaling"))
import test_daemon  # noqa: E402  (Daemon, Client, check: the signaling suite's helpers)
from test_daemon import ANSWER_SDP, OFFER_SDP, Client, Daemon, check, http  # noqa: E402

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
# What the README promises: a dead daemon's clients leave within this many seconds.
DEAD_DAEMON_SECONDS = 5


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            check(time.time() < deadline and self.proc.poll() is None, "redis-server did not start")
            time.sleep(0.05)

    def command(self, *args):
        """One command in RESP; returns the raw reply bytes."""
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        with socket.create_connection(("127.0.0.1", self.port), 2) as s:
            s.sendall(out)
            return s.recv(65536)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def metrics(d):
    with urllib.request.urlopen(d.http + "/metrics", timeout=5) as r:
        out = {}
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out


def instance_of(d):
    for line in d.log_lines:
        if "cluster: instance " in line:
            return line.split("cluster: instance ")[1].split(",")[0]
    raise AssertionError("no instance id in the daemon log")


async def wait_connected(*daemons):
    deadline = time.time() + 10
    for d in daemons:
        while metrics(d).get("pointcast_signaling_cluster_redis_up") != 1:
            check(time.time() < deadline, "daemon did not connect to Redis")
            await asyncio.sleep(0.05)


async def registered(url, cid, room, ctype="peer"):
    c = await Client.open(url, cid)
    reg = await c.register(cid, room, ctype)
    return c, reg


@contextlib.contextmanager
def daemons(r, count):
    """count daemons sharing rooms through Redis r, stopped on leaving."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(Daemon("--redis", r.url)) for _ in range(count)]


async def pair(a, b, room="room"):
    """x on daemon a and y on daemon b in one room, once x has been told of y."""
    x, _ = await registered(a.ws, "x", room)
    y, _ = await registered(b.ws, "y", room)
    await x.expect("peer_joined", client_id="y")
    return x, y


async def case_relay():
    with Redis() as r:
        with daemons(r, 2) as (a, b):
            await wait_connected(a, b)
            x, reg = await registered(a.ws, "x", "room")
            check(reg["peers"] == [], "first peer sees %r" % reg["peers"])
            y, reg = await registered(b.ws, "y", "room")
            check(reg["peers"] == ["x"], "registered.peers on B must include x on A: %r" % reg)
            await x.expect("peer_joined", client_id="y", client_type="peer")
            z, reg = await registered(a.ws, "z", "room", "gstreamer")
            check(sorted(reg["peers"]) == ["x", "y"], "z sees %r" % reg["peers"])
            check(reg["peer_types"].get("y") == "peer", "remote peer type: %r" % reg)
            await x.expect("peer_joined", client_id="z")
            await y.expect("peer_joined", client_id="z", client_type="gstreamer")
            # Another room on the same daemons is not disturbed.
            o, _ = await registered(b.ws, "o", "other")

            # offer / answer / candidates across daemons, both directions, SDP unchanged.
            await x.send({"type": "offer", "target_id": "y", "sdp": {"type": "offer", "sdp": OFFER_SDP},
                          "extra": {"kept": [1, 2]}})
            m = await y.expect("offer", from_id="x", target_id="y")
            check(m["sdp"]["sdp"] == OFFER_SDP and m.get("extra") == {"kept": [1, 2]}, "offer changed: %r" % m)
            await y.send({"type": "answer", "target_id": "x", "sdp": {"type": "answer", "sdp": ANSWER_SDP}})
            m = await x.expect("answer", from_id="y")
            check(m["sdp"]["sdp"] == ANSWER_SDP, "answer changed")
            cand = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host", "sdpMid": "0",
                    "sdpMLineIndex": 0}
            for i in range(20):  # order kept
                await y.send({"type": "ice_candidate", "target_id": "x",
                              "candidate": dict(cand, candidate=cand["candidate"] + " generation %d" % i)})
            for i in range(20):
                m = await x.expect("ice_candidate", from_id="y")
                check(m["candidate"]["candidate"].endswith("generation %d" % i), "candidate order: %r" % m)
            # A spoofed from_id is replaced by the server's word, across daemons too.
            await y.send({"type": "ice_candidate", "target_id": "z", "from_id": "x", "candidate": cand})
            await z.expect("ice_candidate", from_id="y")
            # Broadcast reaches everyone else in the room, on both daemons, once.
            await z.send({"type": "offer", "sdp": {"type": "offer", "sdp": OFFER_SDP}})
            await x.expect("offer", from_id="z")
            await y.expect("offer", from_id="z")
            await y.send({"type": "ice_candidate", "candidate": cand})
            await x.expect("ice_candidate", from_id="y")
            await z.expect("ice_candidate", from_id="y")
            for c in (x, y, z, o):
                await c.nothing(0.3)
            # Unknown target is still an error.
            await x.send({"type": "offer", "target_id": "nobody", "sdp": {"type": "offer", "sdp": OFFER_SDP}})
            await x.error("unknown_target")
            await x.send({"type": "offer", "target_id": "o", "sdp": {"type": "offer", "sdp": OFFER_SDP}})
            await x.error("unknown_target")  # o is in another room

            # Cluster-wide gauges, the same on both; per-instance gauges differ.
            ma, mb = metrics(a), metrics(b)
            for m in (ma, mb):
                check(m["pointcast_signaling_cluster_clients"] == 4, "cluster clients %r" % m)
                check(m["pointcast_signaling_cluster_rooms"] == 2, "cluster rooms %r" % m)
                check(m["pointcast_signaling_cluster_dropped_total"] == 0, "drops %r" % m)
            check(ma["pointcast_signaling_registered_clients"] == 2 and
                  mb["pointcast_signaling_registered_clients"] == 2, "per-instance clients")

            # peer_left across daemons: closing, then a register elsewhere with the freed id.
            await y.ws.close()
            await x.expect("peer_left", client_id="y")
            await z.expect("peer_left", client_id="y")
            y2, reg = await registered(a.ws, "y", "room")
            check(sorted(reg["peers"]) == ["x", "z"], "re-registered y sees %r" % reg["peers"])
            await x.expect("peer_joined", client_id="y")
            await z.expect("peer_joined", client_id="y")
            for c in (x, z, y2, o):
                await c.ws.close()
        print("relay: ok")


async def answerer(cl, count):
    """Answers `count` HTTP offers with an answer plus one trickled candidate."""
    for _ in range(count):
        m = await cl.expect("offer")
        check(m["from_id"].startswith("http-"), "virtual peer id %r" % m["from_id"])
        await cl.send({"type": "answer", "target_id": m["from_id"], "sdp": {"type": "answer", "sdp": ANSWER_SDP}})
        await cl.send({"type": "ice_candidate", "target_id": m["from_id"],
                       "candidate": {"candidate": "candidate:9 1 udp 1 127.0.0.1 5000 typ host",
                                     "sdpMid": "0", "sdpMLineIndex": 0}})
        await cl.send({"type": "ice_candidate", "target_id": m["from_id"], "candidate": None})


async def case_offer():
    with Redis() as r:
        with daemons(r, 2) as (a, b):
            await wait_connected(a, b)
            ans, _ = await registered(b.ws, "ans", "cam", "answerer")
            viewer, _ = await registered(a.ws, "viewer", "cam", "browser")
            await ans.expect("peer_joined", client_id="viewer")
            task = asyncio.ensure_future(answerer(ans, 2))
            loop = asyncio.get_running_loop()
            st, _, body = await loop.run_in_executor(None, lambda: http(
                "POST", a.http + "/offer?room=cam", json.dumps({"sdp": OFFER_SDP, "type": "offer"}).encode(),
                {"Content-Type": "application/json"}))
            check(st == 200, "POST /offer on A with the answerer on B: %s %r" % (st, body))
            ans_sdp = json.loads(body)["sdp"]
            check(ans_sdp.startswith("v=0") and "candidate:9 1 udp" in ans_sdp,
                  "answer with the trickled candidate merged: %r" % ans_sdp)
            # WHIP style too, and the virtual peer never shows up as a room member.
            st, hdrs, body = await loop.run_in_executor(None, lambda: http(
                "POST", a.http + "/offer?room=cam", OFFER_SDP.encode(), {"Content-Type": "application/sdp"}))
            check(st == 201 and body.decode().startswith("v=0"), "WHIP offer across daemons: %s" % st)
            await task
            # DELETE of the session tells the answerer on B the virtual peer left.
            st, _, _ = await loop.run_in_executor(None, lambda: http("DELETE", a.http + hdrs["Location"]))
            check(st == 200, "DELETE session: %s" % st)
            m = await ans.expect("peer_left")
            check(m["client_id"].startswith("http-"), "peer_left of the virtual peer: %r" % m)
            await viewer.nothing(0.3)
            # The answerer on B leaving while an offer waits: 503, not a hang.
            task = asyncio.ensure_future(loop.run_in_executor(None, lambda: http(
                "POST", a.http + "/offer?room=cam", OFFER_SDP.encode(), {"Content-Type": "application/sdp"})))
            await ans.expect("offer")
            await ans.ws.close()
            st, _, body = await task
            check(st == 503, "answerer left: %s %r" % (st, body))
            await viewer.expect("peer_left", client_id="ans")
            await viewer.ws.close()
        print("offer: ok")


async def case_duplicate():
    with Redis() as r:
        with daemons(r, 3) as (a, b, c):
            await wait_connected(a, b, c)
            x, _ = await registered(a.ws, "same", "room")
            for d in (b, c):
                dup = await Client.open(d.ws, "dup")
                await dup.send({"type": "register", "client_id": "same", "room_id": "room", "client_type": "peer"})
                await dup.error("duplicate_client_id")
                # The connection stays usable: another id works.
                reg = await dup.register("other-%d" % d.port, "room")
                check("same" in reg["peers"], "peers %r" % reg["peers"])
                await dup.ws.close()
            # The same id in another room is a different peer, as on one daemon.
            y, _ = await registered(b.ws, "same", "room2")
            # Registrations racing on two daemons: exactly one wins, cluster-wide.
            clients = [await Client.open(d.ws, "race") for d in (a, b, c) for _ in range(3)]
            await asyncio.gather(*[cl.send({"type": "register", "client_id": "racer", "room_id": "race",
                                            "client_type": "peer"}) for cl in clients])
            await asyncio.sleep(1.0)
            states = []
            for cl in clients:
                seen = []
                while True:
                    try:
                        seen.append(json.loads(await asyncio.wait_for(cl.ws.recv(), 0.2)))
                    except asyncio.TimeoutError:
                        break
                types = [m["type"] for m in seen]
                errors = [m for m in seen if m["type"] == "error"]
                holds = "registered" in types and not errors
                check(not errors or errors[-1]["code"] == "duplicate_client_id", "race: %r" % seen)
                states.append(holds)
            check(states.count(True) == 1, "exactly one racer holds the id: %r" % states)
            for cl in clients + [x, y]:
                await cl.ws.close()
        print("duplicate: ok")


async def case_vanished():
    """A client_id registered on daemon b while a client on daemon a holds it: a probes its
    client. Live (answers the ping): it keeps the id, b's newcomer gets duplicate_client_id. Silent
    (a raw socket that stopped reading: gone without a close): a drops it within the 2 s probe,
    its leave frees the claim, and b registers the newcomer."""
    with Redis() as r:
        with daemons(r, 2) as (a, b):
            await wait_connected(a, b)
            obs, _ = await registered(a.ws, "obs", "room")
            live, _ = await registered(a.ws, "cam", "room")
            await obs.expect("peer_joined", client_id="cam")
            stranger = await Client.open(b.ws, "stranger")
            t0 = time.time()
            await stranger.send({"type": "register", "client_id": "cam", "room_id": "room"})
            await stranger.error("duplicate_client_id")
            check(time.time() - t0 < 1.5, "a live holder on a took %.2f s to answer" % (time.time() - t0))
            await obs.nothing(2.5)
            s, _ = test_daemon.raw_ws(a.port)
            test_daemon.raw_send_text(s, json.dumps({"type": "register", "client_id": "robot", "room_id": "room"}))
            await obs.expect("peer_joined", client_id="robot")
            new = await Client.open(b.ws, "new")
            t0 = time.time()
            await new.send({"type": "register", "client_id": "robot", "room_id": "room", "client_type": "restarted"})
            await new.expect("registered", client_id="robot")
            took = time.time() - t0
            print("silent holder on the other daemon replaced %.2f s after the register" % took)
            check(1.9 <= took <= 4.0, "registered on b after %.2f s" % took)
            await obs.expect("peer_left", client_id="robot")
            await obs.expect("peer_joined", client_id="robot", client_type="restarted")
            check(any("no answer to a ping" in l for l in a.log_lines), "a did not log the drop")
            # The new holder on b is probed the same way from a: it answers, and keeps the id.
            again = await Client.open(a.ws, "again")
            await again.send({"type": "register", "client_id": "robot", "room_id": "room"})
            await again.error("duplicate_client_id")
            s.close()
            for cl in (obs, live, stranger, new, again):
                await cl.ws.close()
        print("vanished: ok")


async def case_kill():
    with Redis() as r:
        with daemons(r, 2) as (a, c):
            b = Daemon("--redis", r.url)
            try:
                await wait_connected(a, b, c)
                watcher_a, _ = await registered(a.ws, "wa", "room")
                watcher_c, _ = await registered(c.ws, "wc", "room")
                await watcher_a.expect("peer_joined", client_id="wc")
                doomed = []
                for i in range(3):
                    cl, _ = await registered(b.ws, "doomed-%d" % i, "room")
                    doomed.append(cl)
                    for w in (watcher_a, watcher_c):
                        await w.expect("peer_joined", client_id="doomed-%d" % i)
                    await asyncio.gather(*[d.expect("peer_joined", client_id="doomed-%d" % i)
                                           for d in doomed[:-1]])
                b.proc.send_signal(signal.SIGKILL)
                b.proc.wait()
                t0 = time.time()
                for w in (watcher_a, watcher_c):
                    left = set()
                    while len(left) < 3:
                        m = await w.recv(DEAD_DAEMON_SECONDS + 1)
                        check(m["type"] == "peer_left", "%s: %r" % (w.name, m))
                        left.add(m["client_id"])
                    check(left == {"doomed-0", "doomed-1", "doomed-2"}, "left: %r" % left)
                took = time.time() - t0
                check(took <= DEAD_DAEMON_SECONDS, "peer_left after %.1f s" % took)
                print("kill: peer_left for the dead daemon's clients after %.1f s" % took)
                # The dead daemon's ids are free again, and its Redis state is gone.
                await asyncio.sleep(0.5)
                back, reg = await registered(a.ws, "doomed-0", "room")
                check(sorted(reg["peers"]) == ["wa", "wc"], "after the death: %r" % reg["peers"])
                await watcher_c.expect("peer_joined", client_id="doomed-0")
                inst = instance_of(b)
                check(r.command("EXISTS", "pointcast:0:members:" + inst) == b":0\r\n", "dead hash left in Redis")
                for m in (metrics(a), metrics(c)):
                    check(m["pointcast_signaling_cluster_clients"] == 3, "cluster clients %r" % m)
                for cl in (watcher_a, watcher_c, back):
                    await cl.ws.close()
            finally:
                if b.alive():
                    b.proc.kill()
        print("kill: ok")


async def case_redis_restart():
    with Redis() as r:
        with daemons(r, 2) as (a, b):
            await wait_connected(a, b)
            x, y = await pair(a, b)
            r.stop()
            # Local rooms keep working while Redis is away.
            x2, reg = await registered(a.ws, "x2", "room")
            await x.expect("peer_joined", client_id="x2")
            await x.send({"type": "offer", "target_id": "x2", "sdp": {"type": "offer", "sdp": OFFER_SDP}})
            await x2.expect("offer", from_id="x")
            await asyncio.sleep(2)  # several reconnect attempts fail meanwhile
            check(any("unreachable" in l for l in a.log_lines), "the outage is not in the log")
            check(metrics(a)["pointcast_signaling_cluster_redis_up"] == 0, "redis_up during the outage")
            t0 = time.time()
            r.start()  # empty: no persistence
            await wait_connected(a, b)
            # The daemons announce their members again: cross-daemon relay works again.
            deadline = time.time() + 10
            while True:
                await y.send({"type": "offer", "target_id": "x2", "sdp": {"type": "offer", "sdp": OFFER_SDP}})
                m = await y.recv()
                if m["type"] == "offer" or m.get("type") == "peer_joined":
                    break
                check(m.get("code") == "unknown_target" and time.time() < deadline, "after restart: %r" % m)
                await asyncio.sleep(0.2)
            if m["type"] == "peer_joined":  # y learns of x2 first
                check(m["client_id"] == "x2", "%r" % m)
                await y.send({"type": "offer", "target_id": "x2", "sdp": {"type": "offer", "sdp": OFFER_SDP}})
            m = await x2.recv()
            while m["type"] != "offer":
                m = await x2.recv()
            check(m["from_id"] == "y", "%r" % m)
            print("redis-restart: relay across daemons again %.1f s after Redis came back" % (time.time() - t0))
            # Nobody was announced as gone during the outage or after it (no false death).
            for cl in (x, x2):
                while True:
                    try:
                        m = json.loads(await asyncio.wait_for(cl.ws.recv(), 0.3))
                    except asyncio.TimeoutError:
                        break
                    check(m["type"] != "peer_left", "%s got %r" % (cl.name, m))
            await asyncio.sleep(6)  # past the grace after the reconnect: still no false death
            for cl in (x, x2, y):
                try:
                    m = json.loads(await asyncio.wait_for(cl.ws.recv(), 0.3))
                    check(m["type"] != "peer_left", "%s got %r" % (cl.name, m))
                except asyncio.TimeoutError:
                    pass
            for m in (metrics(a), metrics(b)):
                check(m["pointcast_signaling_cluster_clients"] == 3, "cluster clients after restart %r" % m)
            await y.ws.close()
            await x.expect("peer_left", client_id="y")
            for cl in (x, x2):
                await cl.ws.close()
        print("redis-restart: ok")


async def case_redis_stall():
    """Redis stopped (SIGSTOP) past every presence expiry, then continued: nobody is taken for
    dead, and cross-daemon relay carries on."""
    r = Redis()
    try:
        with Daemon("--redis", r.url) as a, Daemon("--redis", r.url) as b:
            await wait_connected(a, b)
            x, _ = await registered(a.ws, "x", "room")
            y, _ = await registered(b.ws, "y", "room")
            await x.expect("peer_joined", client_id="y")
            r.proc.send_signal(signal.SIGSTOP)
            await asyncio.sleep(5)  # > the 3 s presence expiry
            await x.send({"type": "offer", "target_id": "y", "sdp": {"type": "offer", "sdp": OFFER_SDP}})
            r.proc.send_signal(signal.SIGCONT)
            m = await y.expect("offer", from_id="x")  # queued meanwhile, delivered after
            await asyncio.sleep(7)  # past the grace: still nobody gone
            for cl in (x, y):
                while True:
                    try:
                        m = json.loads(await asyncio.wait_for(cl.ws.recv(), 0.3))
                    except asyncio.TimeoutError:
                        break
                    check(m["type"] not in ("peer_left", "peer_joined"), "%s got %r after the stall" % (cl.name, m))
            await y.send({"type": "answer", "target_id": "x", "sdp": {"type": "answer", "sdp": ANSWER_SDP}})
            await x.expect("answer", from_id="y")
            for m in (metrics(a), metrics(b)):
                check(m["pointcast_signaling_cluster_clients"] == 2, "cluster clients after the stall %r" % m)
            for cl in (x, y):
                await cl.ws.close()
        print("redis-stall: ok")
    finally:
        r.proc.send_signal(signal.SIGCONT)
        r.stop()


async def case_hostile():
    with Redis() as r:
        with daemons(r, 2) as (a, b):
            await wait_connected(a, b)
            x, y = await pair(a, b)
            ia, ib = instance_of(a), instance_of(b)
            pfx = "pointcast:0:"
            bomb = "[" * 100000
            good = json.dumps({"type": "offer", "target_id": "x", "from_id": "y",
                               "sdp": {"type": "offer", "sdp": OFFER_SDP}})
            def T(inst, text, room="room", to="x"):  # a targeted record, framed as daemons do
                return "T %s %d %d %d\n%s%s%s" % (inst, len(room.encode()), len(to.encode()),
                                                 len(text.encode()), room, to, text)

            def B(inst, text):
                return "B %s %d\n%s" % (inst, len(text.encode()), text)
            inbox = pfx + "inst:" + ia
            hostile = [
                (inbox, "garbage"),
                (inbox, T(ib, bomb)),                                               # JSON bomb
                (inbox, T(ib, '{"type":"offer"')),                                  # truncated
                (inbox, T(ib, good.replace('"y"', '"nobody"'))),                    # unknown sender
                (inbox, T("abcdef", good)),                                         # wrong daemon for y
                (inbox, T(ib, good.replace('"x"', '"q"', 1))),                      # target mismatch
                (inbox, T(ib, json.dumps({"type": "registered", "client_id": "x", "room_id": "room",
                                          "peers": []}))),                          # server-only type
                (inbox, "T %s 999999 1 5\nroom" % ib),                              # lengths past the end
                (inbox, "T %s 4 1\nroomx%s" % (ib, good)),                          # no text length
                (inbox, T(ib, good.replace("offer\",", "offer\\u0000\",", 1))),     # NUL in a string
                (pfx + "room:room", B(ib, '{"type":"ice_candidate","from_id":"y","candidate":{}}')),
                (pfx + "room:room", B(ib, "\xff\xfe")),
                (pfx + "members", "J %s 4 300 0\nroom%s" % (ib, "i" * 300)),            # id too long
                (pfx + "members", "J nothex 4 1 0\nroomzpeer"),
                (pfx + "members", "J %s 4 1 0\nroomx" % ib),                             # x is A's own
                (pfx + "members", "L %s 4\nroomx" % ib),                                 # not B's to remove
                (pfx + "members", "S\n"),
            ]
            for ch, payload in hostile:
                r.command("PUBLISH", ch, payload)
            r.command("PUBLISH", inbox, ("T %s 4 1 13\nroomx" % ib).encode() + b"{\"type\":\xc3\x28}")
            await asyncio.sleep(0.5)
            check(a.alive() and b.alive(), "a daemon died of hostile input")
            await x.nothing(0.3)
            await y.nothing(0.1)
            ma = metrics(a)
            check(ma["pointcast_signaling_cluster_dropped_total"] >= 15, "drops counted: %r" % ma)
            check(ma["pointcast_signaling_cluster_clients"] == 2, "hostile joins changed the view %r" % ma)
            # A well-formed relay in the same envelope format still goes through: the checks are
            # about content, not about who published.
            r.command("PUBLISH", inbox, T(ib, good) + T(ib, good.replace("v=0", "v=0 again")))
            m = await x.expect("offer", from_id="y")
            m = await x.expect("offer", from_id="y")  # two records in one publish, both delivered
            check(m["sdp"]["sdp"].startswith("v=0 again"), "second record: %r" % m)
            # And the service carries on for everyone.
            await x.send({"type": "offer", "target_id": "y", "sdp": {"type": "offer", "sdp": OFFER_SDP}})
            await y.expect("offer", from_id="x")
            for cl in (x, y):
                await cl.ws.close()
        print("hostile: ok")


if __name__ == "__main__":
    test_daemon.DAEMON = sys.argv[1]
    case = sys.argv[2].replace("-", "_")
    asyncio.run(globals()["case_" + case]())
