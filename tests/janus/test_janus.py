#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Scale-out end to end, with gst-launch-1.0 processes on loopback.

fanout:   an rtcpeer publishes videotestsrc bars and NumPy points into a Janus VideoRoom
          (janus://); three rtcpeer subscribers (two with role=answerer, one with a target)
          each decode the video (the bars' colours are checked) and receive every points
          message, byte for byte, in order.
failover: two pointcast-signaling daemons; sender and receiver use signaling=ws://a,ws://b;
          daemon a is killed (-9) while points flow: no message is lost on the established
          connection and both peers register again on b under the same ids; a peer started
          after that, with the dead daemon first in its list, registers on b.

cluster_failover: the same across two daemons sharing rooms on Redis, with the peers on
          different daemons.

Usage: test_janus.py CASE ...
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("POINTCAST_SOURCE_ROOT", os.path.join(HERE, "../.."))
sys.path.insert(0, os.path.join(SRC, "tests", "rtc"))
sys.path.insert(0, os.path.join(SRC, "deploy", "janus"))
import janusconf  # noqa: E402
from test_e2e import (Daemon, Gst, all_delivered, check_same, free_port, wait_count, written,  # noqa: E402
                      wait_registered)

W, H = 320, 240


def reference_frame(work):
    """videotestsrc's bars as RGB, made here the way the subscribers convert theirs."""
    path = os.path.join(work, "reference.rgb")
    subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=1", "!",
                    f"video/x-raw,width={W},height={H}", "!", "videoconvert", "!",
                    f"video/x-raw,format=RGB,width={W},height={H}", "!", "filesink",
                    f"location={path}"], check=True)
    return np.fromfile(path, dtype=np.uint8).reshape(H, W, 3).astype(int)


class Janus:
    def __init__(self, work):
        self.port = free_port()
        self.conf = os.path.join(work, "janus-conf")
        self.ice_ip = janusconf.local_ipv4()
        if not self.ice_ip:
            # Janus gathers no loopback candidates: without another address it cannot work here.
            print("SKIP: no global IPv4 address for Janus's ICE")
            sys.exit(77)
        janusconf.write(self.conf, ws_ip="127.0.0.1", ws_port=self.port, ice_ip=self.ice_ip)
        self.log = os.path.join(work, "janus.log")
        self.proc = subprocess.Popen(
            [shutil.which("janus") or "/usr/bin/janus", "-C", os.path.join(self.conf, "janus.jcfg"),
             "-F", self.conf, "--disable-colors"], stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"janus exited:\n{self.text()}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"janus did not start:\n{self.text()}")

    def uri(self, room):
        return f"janus://127.0.0.1:{self.port}/{room}"

    def text(self):
        return open(self.log, errors="replace").read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def check_bars(path, ref):
    """The seven top bars have the colours of the reference (VP8 blurs their edges only)."""
    frame = np.fromfile(path, dtype=np.uint8)
    assert frame.size == W * H * 3, f"{path}: {frame.size} bytes, not a {W}x{H} RGB frame"
    frame = frame.reshape(H, W, 3).astype(int)
    for i in range(7):
        x = int((i + 0.5) * W / 7)
        got, want = frame[H // 4, x], ref[H // 4, x]
        assert np.abs(got - want).max() <= 40, f"{path}: bar {i} at x={x} is {got}, want {want}"


def case_fanout(work):
    ref = reference_frame(work)
    janus = Janus(work)
    subs = []
    pub = None
    try:
        room = 4242
        n = 24
        # Subscribers first; each subscribes once the publisher appears in the room.
        for i in range(3):
            name = f"sub{i}"
            out = os.path.join(work, name)
            os.makedirs(os.path.join(out, "video"))
            os.makedirs(os.path.join(out, "points"))
            # Two subscribe as answerers (every publisher), one by naming the publisher.
            how = "target=publisher" if i == 2 else "role=answerer"
            desc = (f"rtcpeer name=rtc signaling={janus.uri(room)} {how} peer-id={name} "
                    f"rtc.data_points ! multifilesink location={out}/points/%06d.npy "
                    f"rtc.video_0 ! videoconvert ! videoscale ! video/x-raw,format=RGB,width={W},height={H} "
                    f"! multifilesink location={out}/video/%06d.rgb max-files=5")
            subs.append((Gst(work, name, desc, {}), out))
        time.sleep(1.0)
        sdir = os.path.join(work, "sent")
        os.makedirs(sdir)
        # The points wait in a queue until pointsrc has made all of them (6 s; the threshold is
        # above that, so its EOS lets them go), so the subscriptions (made once the publisher is
        # announced) are up before the first one leaves: Janus relays data only to the
        # subscribers already there. Let go after 4 s, 2 of 6 runs beside two busy loops lost the
        # first 1 or 3 messages.
        desc = (f"videotestsrc is-live=true ! video/x-raw,width={W},height={H},framerate=15/1 ! rtc.video_0 "
                f"pointsrc pattern=counter rate=4 points=40 num-buffers={n} ! npypack ! tee name=t "
                f"t. ! queue ! multifilesink location={sdir}/%06d.npy "
                f"t. ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 "
                f"min-threshold-time=8000000000 ! rtc.data_points "
                f"rtcpeer name=rtc signaling={janus.uri(room)} peer-id=publisher wait-for-peers=1")
        pub = Gst(work, "pub", desc, {})
        for g, out in subs:
            wait_count(os.path.join(out, "points"), n, 40, g.name)
        for g, out in subs:
            check_same(sdir, os.path.join(out, "points"), 40)
            frames = written(os.path.join(out, "video"))
            assert frames, f"{g.name} decoded no video"
            check_bars(os.path.join(out, "video", frames[-1]), ref)
        pub.stop()
        print(f"3 subscribers: {n} points messages each, video bars correct")
    finally:
        for g, _ in subs:
            g.stop()
        if pub:
            pub.stop()
        janus.stop()


def points_pair(work, rx_signaling, tx_signaling, room, n, env):
    """A receiver rx-ROOM writing what arrives into work/rx, and a sender tx-ROOM of n counter
    messages (50 rows at 40 Hz) that keeps a copy of each in work/tx; returns rx, tx and the two
    folders."""
    rdir = os.path.join(work, "rx")
    os.makedirs(rdir)
    rx = Gst(work, "rx", f"rtcpeer name=rtc signaling={rx_signaling} room={room} peer-id=rx-{room} "
             f"rtc.data_points ! multifilesink location={rdir}/%06d.npy", env)
    sdir = os.path.join(work, "tx")
    os.makedirs(sdir)
    tx = Gst(work, "tx", f"pointsrc pattern=counter rate=40 points=50 num-buffers={n} ! npypack "
             f"! tee name=t t. ! queue ! rtc.data_points t. ! queue ! multifilesink "
             f"location={sdir}/%06d.npy rtcpeer name=rtc signaling={tx_signaling} room={room} "
             f"peer-id=tx-{room} wait-for-peers=1", env)
    return rx, tx, rdir, sdir


def two_daemons(work, args=()):
    """Daemons a and b (logs in work/a and work/b)."""
    daemons = []
    for name in ("a", "b"):
        os.makedirs(os.path.join(work, name))
        daemons.append(Daemon(os.path.join(work, name), args=list(args)).start())
    return daemons


def wait_logged(d, line, timeout, what):
    """Waits until daemon d has logged `line`."""
    deadline = time.monotonic() + timeout
    while line not in d.text():
        assert time.monotonic() < deadline, f"{what} after {timeout} s:\n{d.text()[-3000:]}"
        time.sleep(0.1)


def host_addresses():
    """The host's interface addresses: ICE gathers a candidate on each."""
    out = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True).stdout
    return frozenset(" ".join(line.split()[1:4:2]) for line in out.splitlines())


class AddressWatch:
    """Samples the host's addresses while a case runs (with AddressWatch(): ...). An established
    peer connection dies with the interface its ICE pair uses (on a shared host: a container
    network that another test removes), and rtcpeer does not restart ICE; a check that fails after
    such a change says so instead of blaming the failover or the SFU."""

    def __enter__(self):
        self.first = host_addresses()
        self.seen = set(self.first)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.2):
            self.seen |= host_addresses()

    def __exit__(self, kind, error, tb):
        self._stop.set()
        self._thread.join()
        if kind is None or not issubclass(kind, AssertionError):
            return False
        now = host_addresses()
        if self.seen == set(self.first) and now == self.first:
            return False
        gone, came = sorted(self.seen - now), sorted(self.seen - self.first)
        raise AssertionError(f"{error}\nthe host's addresses changed during the case (gone: "
                             f"{gone}, came: {came}): peer connections' ICE paths may have gone "
                             "with them") from error


def case_failover(work):
    a, b = two_daemons(work)
    rx = tx = None
    try:
        both = f"{a.ws},{b.ws}"
        env = {"POINTCAST_SIGNALING": both, "POINTCAST_ROOM": "fo"}
        n = 400
        rx, tx, rdir, sdir = points_pair(work, both, both, "fo", n, env)
        wait_count(rdir, 40, 30, "receiver before the failover")
        assert "tx-fo (gstreamer) registered" in a.text(), a.text()[-2000:]
        a.kill()
        before = len(os.listdir(rdir))
        wait_registered(b, ["tx-fo", "rx-fo"], 15)
        print(f"re-registered on b after {before} of {n} messages")
        # A peer starting now, with a dead first URI, goes straight on to the next one.
        late = Gst(work, "late", f"rtcpeer name=rtc signaling={both} room=fo peer-id=late-fo "
                   f"role=answerer rtc.data_points ! fakesink", env)
        try:
            wait_logged(b, "late-fo (answerer) registered", 10, "the late peer is not on b")
        finally:
            late.stop()
        all_delivered(tx, sdir, rdir, n)
        assert "Signaling connection lost" in rx.text(), rx.text()[-2000:]
        rx.stop()
        print(f"{n} messages across the failover; both peers registered again on b")
    finally:
        for g in (rx, tx):
            if g:
                g.stop()
        a.kill()
        b.kill()


def case_cluster_failover(work):
    """Two daemons on one Redis; the receiver is registered on a, the sender on b, and points flow
    between them. a is killed (-9): no message is lost on the established connection, and the
    receiver fails over to b and registers there under the same id (once the cluster has
    expired a's claim on it)."""
    sys.path.insert(0, os.path.join(SRC, "tests", "cluster"))
    from test_cluster import Redis  # noqa: E402
    if not shutil.which("redis-server"):
        print("SKIP: no redis-server")
        sys.exit(77)
    redis = Redis()
    a, b = two_daemons(work, ["--redis", redis.url])
    rx = tx = None
    try:
        env = {"POINTCAST_ROOM": "cfo"}
        n = 600
        rx, tx, rdir, sdir = points_pair(work, f"{a.ws},{b.ws}", f"{b.ws},{a.ws}", "cfo", n, env)
        wait_count(rdir, 40, 30, "receiver before the kill")
        assert "rx-cfo (gstreamer) registered in room cfo from" in a.text(), a.text()[-2000:]
        assert "tx-cfo (gstreamer) registered in room cfo from" in b.text(), b.text()[-2000:]
        a.kill()
        t0 = time.monotonic()
        # b logs a's clients as "registered ... on daemon <id>", its own as "... from <address>"
        wait_logged(b, "rx-cfo (gstreamer) registered in room cfo from", 20, "rx is not on b")
        took = time.monotonic() - t0
        all_delivered(tx, sdir, rdir, n)
        print(f"{n} messages across the loss of daemon a; rx on b after {took:.1f} s")
    finally:
        for g in (rx, tx):
            if g:
                g.stop()
        a.kill()
        b.kill()
        redis.stop()


def main():
    cases = sys.argv[1:] or ["fanout", "failover"]
    failed = 0
    for name in cases:
        work = tempfile.mkdtemp(prefix=f"janus-{name}-")
        t0 = time.monotonic()
        try:
            with AddressWatch():
                globals()["case_" + name](work)
            print(f"ok {name} ({time.monotonic() - t0:.1f} s)")
            shutil.rmtree(work, ignore_errors=True)
        except Exception:
            failed += 1
            traceback.print_exc()
            for log in sorted(os.listdir(work)):
                if log.endswith(".log"):
                    print(f"--- {log} (tail)")
                    print(open(os.path.join(work, log), errors="replace").read()[-2500:])
            print(f"FAIL {name} (logs in {work})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
