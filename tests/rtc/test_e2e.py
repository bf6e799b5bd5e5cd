#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""rtcpeer end to end: gst-launch-1.0 processes talking through the real pointcast-signaling
daemon on loopback. NumPy points from pointsrc (pattern=counter) are packed with npypack, sent,
and what arrives is compared byte for byte with what was sent (every message once, in order).

Usage: test_e2e.py [CASE ...]   (default: all cases; each starts its own daemon on a free port)
"""
import asyncio
import ctypes
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

# Every process a case starts (gst-launch-1.0 pipelines, daemons): stop_started() ends them
# after each case, passed or failed.
STARTED = []


def _die_with_parent():
    """In the child before exec: SIGKILL when the test process dies (a meson timeout's SIGKILL
    gives no chance to clean up)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def stop_started():
    """Ends every process started so far that is still running (newest first)."""
    while STARTED:
        STARTED.pop().stop_quietly()


BUILD = os.environ.get("POINTCAST_BUILD_ROOT", os.path.join(os.path.dirname(__file__), "../../build"))
DAEMON = os.path.join(BUILD, "signaling", "pointcast-signaling")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, workdir, port=None, args=()):
        self.port = port or free_port()
        self.args = list(args)
        self.workdir = workdir
        self.proc = None
        self.starts = 0

    @property
    def ws(self):
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self):
        self.starts += 1
        self.log = os.path.join(self.workdir, f"daemon-{self.starts}.log")
        deadline = time.monotonic() + 10
        while True:
            self.proc = subprocess.Popen(
                [DAEMON, "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "DEBUG"]
                + self.args, stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent)
            if self not in STARTED:
                STARTED.append(self)
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    return self
                except OSError:
                    time.sleep(0.05)
            if time.monotonic() >= deadline:
                raise AssertionError(f"daemon did not start: {open(self.log).read()}")
            time.sleep(0.2)  # the port may still be held by the previous instance

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    stop_quietly = kill

    def text(self):
        return open(self.log).read()


class Gst:
    """A gst-launch-1.0 process with its output in a log file."""

    def __init__(self, workdir, name, desc, env):
        self.name = name
        self.log = os.path.join(workdir, name + ".log")
        full_env = dict(os.environ)
        full_env.update(env)
        self.proc = subprocess.Popen(["gst-launch-1.0", "-e"] + shlex.split(desc),
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
                                     env=full_env, preexec_fn=_die_with_parent)
        STARTED.append(self)

    def text(self):
        return open(self.log, errors="replace").read()

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not finish in {timeout} s:\n{self.text()[-3000:]}")

    def stop(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop_quietly(self):
        self.stop(signal.SIGKILL)


def env_for(daemon, room, peer_id):
    return {"POINTCAST_SIGNALING": daemon.ws, "POINTCAST_ROOM": room, "POINTCAST_PEER_ID": peer_id}


def sender(work, name, daemon, room, n, rate, points=50, wait=1, extra=""):
    out = os.path.join(work, name)
    os.makedirs(out)
    desc = (f"pointsrc pattern=counter rate={rate} points={points} num-buffers={n} ! npypack ! "
            f"tee name=t ! queue ! rtc.data_points "
            f"t. ! queue ! multifilesink location={out}/%06d.npy "
            f"rtcpeer name=rtc wait-for-peers={wait} {extra}")
    return Gst(work, name, desc, env_for(daemon, room, name)), out


def receiver(work, name, daemon, room, extra=""):
    out = os.path.join(work, name)
    os.makedirs(out)
    desc = (f"rtcpeer name=rtc {extra} rtc.data_points ! tee name=t "
            f"t. ! queue ! multifilesink location={out}/%06d.npy "
            f"t. ! queue ! npyunpack ! pointsink silent=true")
    return Gst(work, name, desc, env_for(daemon, room, name)), out


# multifilesink writes each file whole through g_file_set_contents: first NAME.XXXXXX, then
# renamed. A listing made meanwhile shows that temporary, empty or half written.
_TEMPORARY = re.compile(r"\.[^.]+\.[A-Za-z0-9]{6}$")


def written(d):
    """The files multifilesink has finished in D, sorted (its temporaries left out)."""
    return sorted(f for f in os.listdir(d) if not _TEMPORARY.search(f))


def files(d):
    return [open(os.path.join(d, f), "rb").read() for f in written(d)]


def resend_report(text):
    """From a sending gst-launch's output: the counts of its "N data channel messages sent to it
    without ..." warnings (gst-launch's own lines; a GST_DEBUG log repeats them), and (count,
    first stream index) of each "sending N data channel messages ... again" line."""
    warned = r"^(?!\d+:\d\d:).*?(\d+) data channel messages sent to it without"
    lost = [int(n) for n in re.findall(warned, text, re.M)]
    again = [(int(n), int(f)) for n, f in re.findall(
        r"sending (\d+) data channel messages to peer .* again on channel .*, from message "
        r"(\d+) of the stream", text)]
    return lost, again


def wait_count(d, n, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(written(d)) >= n:
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: {len(written(d))} of {n} messages after {timeout} s")


def check_same(sent_dir, recv_dir, points):
    sent, got = files(sent_dir), files(recv_dir)
    assert len(got) == len(sent), f"received {len(got)} messages, sent {len(sent)}"
    for i, (a, b) in enumerate(zip(sent, got)):
        assert a == b, f"message {i} differs ({len(a)} bytes sent, {len(b)} received)"
    # And they are what numpy.save writes: (points, 3) float32, loadable.
    for path in written(recv_dir)[:5]:
        arr = np.load(os.path.join(recv_dir, path))
        assert arr.shape == (points, 3) and arr.dtype == np.float32, (arr.shape, arr.dtype)


def ok_exit(g, timeout):
    rc = g.wait(timeout)
    assert rc == 0, f"{g.name} exited with {rc}:\n{g.text()[-3000:]}"


def all_delivered(tx, sdir, rdir, n, points=50, timeout=10, what="receiver", settle=0.0):
    """The sender tx exits cleanly, all n messages arrive in RDIR (any stray extra one within
    SETTLE s more), and they are the ones it kept in SDIR, byte for byte."""
    ok_exit(tx, 60)
    wait_count(rdir, n, timeout, what)
    time.sleep(settle)
    check_same(sdir, rdir, points)


def wait_registered(d, peer_ids, timeout):
    """Waits until daemon d has logged every one of peer_ids (gstreamer peers) as registered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = d.text()
        if all(f"{p} (gstreamer) registered" in log for p in peer_ids):
            return
        time.sleep(0.1)
    raise AssertionError(f"{', '.join(peer_ids)} did not register:\n{d.text()[-3000:]}")


def stream_to(work, d, room, rdir, n, rate, points=50, extra="", timeout=10, what="receiver",
              settle=0.0):
    """Runs a sender of n messages into ROOM until it exits, waits for all n in RDIR, lets any
    stray extra message arrive for SETTLE s, and checks they are the sent ones, byte for byte."""
    tx, sdir = sender(work, "tx", d, room, n=n, rate=rate, points=points, extra=extra)
    all_delivered(tx, sdir, rdir, n, points, timeout, what, settle)


# ---------------------------------------------------------------------------------------------


def case_stream_in_order(work):
    """Every message arrives once, in order, byte-identical; the receiver's npyunpack is happy."""
    d = Daemon(work).start()
    try:
        rx, rdir = receiver(work, "rx", d, "r1")
        stream_to(work, d, "r1", rdir, n=400, rate=200, settle=0.3)
        assert "WARNING" not in rx.text(), rx.text()[-2000:]
        rx.stop()
    finally:
        d.kill()


def stream_with_roles(work, rx_extra, tx_extra):
    """The receiver registers well before the sender joins; 40 messages must get through."""
    d = Daemon(work).start()
    try:
        rx, rdir = receiver(work, "rx", d, "r1", extra=rx_extra)
        time.sleep(1.5)
        stream_to(work, d, "r1", rdir, n=40, rate=40, extra=tx_extra)
        rx.stop()
    finally:
        d.kill()


def case_answerer_in_room(work):
    """A role=answerer peer already in the room never offers; a role=auto newcomer (which answers
    the peers it finds) notices and offers itself, so the stream still flows."""
    stream_with_roles(work, "role=answerer", "")


def case_both_offer(work):
    """Glare: two role=offerer peers offer to each other at once; the smaller id keeps its offer,
    the other answers it, and the stream flows."""
    stream_with_roles(work, "role=offerer", "role=offerer")


def case_megabyte_message(work):
    """Messages over 1 MiB (well over the 64 KiB SCTP limit) arrive whole."""
    d = Daemon(work).start()
    try:
        rx, rdir = receiver(work, "rx", d, "big")
        points = 90000  # 90000 x 3 x 4 bytes + header = 1,080,128 bytes
        stream_to(work, d, "big", rdir, n=6, rate=10, points=points, timeout=20)
        assert len(files(rdir)[0]) > (1 << 20)
        rx.stop()
    finally:
        d.kill()


def case_two_receivers(work):
    """Two receivers in one room both get everything."""
    d = Daemon(work).start()
    try:
        rx1, r1 = receiver(work, "rx1", d, "two")
        rx2, r2 = receiver(work, "rx2", d, "two")
        tx, sdir = sender(work, "tx", d, "two", n=300, rate=150, wait=2)
        ok_exit(tx, 60)
        wait_count(r1, 300, 10, "rx1")
        wait_count(r2, 300, 10, "rx2")
        check_same(sdir, r1, 50)
        check_same(sdir, r2, 50)
        rx1.stop()
        rx2.stop()
    finally:
        d.kill()


def case_daemon_restart(work):
    """The daemon is killed and restarted while points flow: nothing is lost on the established
    connection, and both peers register again under the same ids."""
    d = Daemon(work).start()
    try:
        rx, rdir = receiver(work, "rx-keep", d, "restart")
        tx, sdir = sender(work, "tx-keep", d, "restart", n=500, rate=50)
        wait_count(rdir, 50, 30, "receiver before the restart")
        d.kill()
        before = len(os.listdir(rdir))
        time.sleep(2.0)
        wait_count(rdir, before + 25, 10, "receiver while the daemon is down")
        d.start()
        wait_registered(d, ["tx-keep", "rx-keep"], 20)
        all_delivered(tx, sdir, rdir, 500)
        assert "Signaling connection lost" in rx.text(), rx.text()[-2000:]
        rx.stop()
    finally:
        d.kill()


def case_leave_and_late_join(work):
    """A receiver that disappears does not stop the sender; a receiver joining later gets the
    stream from there on, in order."""
    d = Daemon(work).start()
    try:
        n = 700
        tx, sdir = sender(work, "tx", d, "late", n=n, rate=50)
        rx1, r1 = receiver(work, "rx1", d, "late")
        wait_count(r1, 40, 30, "first receiver")
        rx1.stop(signal.SIGKILL)
        time.sleep(1.0)
        sent_at_leave = len(os.listdir(sdir))
        rx2, r2 = receiver(work, "rx2", d, "late")
        ok_exit(tx, 60)
        assert len(os.listdir(sdir)) == n
        time.sleep(0.5)
        sent = files(sdir)
        index = {b: i for i, b in enumerate(sent)}
        got = [index.get(b) for b in files(r2)]
        assert got and None not in got, "the late receiver got messages that were not sent"
        assert got == list(range(got[0], n)), f"late receiver: not a consecutive tail: {got[:5]}..."
        assert got[0] >= sent_at_leave - 5 and len(got) > 100, (got[0], len(got), sent_at_leave)
        rx2.stop()
    finally:
        d.kill()


def case_garbage_on_channel(work):
    """Garbage on the data channel reaches npyunpack, which drops it with a warning; the receiver
    carries on and takes the next sender's points."""
    d = Daemon(work).start()
    try:
        out = os.path.join(work, "rx")
        os.makedirs(out)
        rx = Gst(work, "rx", f"rtcpeer name=rtc rtc.data_points ! npyunpack ! npypack ! "
                 f"multifilesink location={out}/%06d.npy", env_for(d, "garbage", "rx"))
        junk = Gst(work, "junk", "fakesrc num-buffers=5 sizetype=fixed sizemax=300 "
                   "filltype=random ! rtc.data_points rtcpeer name=rtc wait-for-peers=1",
                   env_for(d, "garbage", "junk"))
        ok_exit(junk, 60)
        deadline = time.monotonic() + 10
        while "npyunpack" not in rx.text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "WARNING" in rx.text() and "npyunpack" in rx.text(), rx.text()[-2000:]
        stream_to(work, d, "garbage", out, n=20, rate=50, what="receiver after garbage")
        assert rx.proc.poll() is None, "the receiver died"
        rx.stop()
    finally:
        d.kill()


async def send_bad_signaling(ws_url, room, target):
    import websockets
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps({"type": "register", "client_id": "evil", "room_id": room,
                                  "client_type": "test"}))
        await ws.recv()
        await ws.send(json.dumps({"type": "offer", "target_id": target,
                                  "sdp": {"type": "offer", "sdp": "this is not SDP"}}))
        await ws.send(json.dumps({"type": "answer", "target_id": target,
                                  "sdp": {"type": "answer", "sdp": "v=0\r\n"}}))
        await ws.send(json.dumps({"type": "ice_candidate", "target_id": target,
                                  "candidate": {"candidate": "candidate:garbage",
                                                "sdpMLineIndex": 0}}))
        await asyncio.sleep(1.0)


def case_malformed_signaling(work):
    """Malformed signaling reaching a peer is ignored with a warning; the peer keeps working."""
    d = Daemon(work).start()
    try:
        rx, rdir = receiver(work, "rx", d, "bad", extra="role=answerer")
        deadline = time.monotonic() + 10
        while "rx (gstreamer) registered" not in d.text() and time.monotonic() < deadline:
            time.sleep(0.1)
        asyncio.run(send_bad_signaling(d.ws, "bad", "rx"))
        deadline = time.monotonic() + 10
        while "malformed signaling message" not in rx.text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "malformed signaling message" in rx.text(), rx.text()[-2000:]
        # The receiver only answers, so this sender (which joins later) must make the offer.
        stream_to(work, d, "bad", rdir, n=30, rate=50, extra="role=offerer",
                  what="receiver after malformed signaling")
        rx.stop()
    finally:
        d.kill()


def case_unreachable_and_token(work):
    """An unreachable server is a clear warning (and the element keeps retrying); a refused token
    is an error that ends the pipeline."""
    port = free_port()
    g = Gst(work, "unreachable", "rtcpeer name=rtc rtc.data_x ! fakesink",
            {"POINTCAST_SIGNALING": f"ws://127.0.0.1:{port}/ws"})
    deadline = time.monotonic() + 10
    while "cannot reach signaling server" not in g.text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "cannot reach signaling server" in g.text(), g.text()[-2000:]
    assert g.proc.poll() is None
    # The server appears: the element connects and registers.
    d = Daemon(work, port=port).start()
    try:
        deadline = time.monotonic() + 15
        while "registered in room" not in d.text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "registered in room" in d.text(), d.text()
        g.stop()
    finally:
        d.kill()
    d = Daemon(work, args=["--token", "s3cret"]).start()
    try:
        bad = Gst(work, "badtoken", "rtcpeer name=rtc token=wrong rtc.data_x ! fakesink",
                  env_for(d, "tok", "bad"))
        rc = bad.wait(20)
        assert rc != 0 and "refused the token" in bad.text(), bad.text()[-2000:]
        good = Gst(work, "goodtoken", "rtcpeer name=rtc token=s3cret rtc.data_x ! fakesink",
                   env_for(d, "tok", "good"))
        deadline = time.monotonic() + 10
        while "good (gstreamer) registered" not in d.text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "good (gstreamer) registered" in d.text(), d.text()
        good.stop()
        # The token from $POINTCAST_TOKEN, as `./pointcast launch` and the daemon's children get it.
        env = dict(env_for(d, "tok", "fromenv"), POINTCAST_TOKEN="s3cret")
        fromenv = Gst(work, "envtoken", "rtcpeer name=rtc rtc.data_x ! fakesink", env)
        deadline = time.monotonic() + 10
        while "fromenv (gstreamer) registered" not in d.text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "fromenv (gstreamer) registered" in d.text(), d.text() + fromenv.text()[-2000:]
        fromenv.stop()
    finally:
        d.kill()
    # What goes on the wire: the token in the Authorization header, never in the URL (logs).
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        srv.settimeout(15)
        port = srv.getsockname()[1]
        env = {"POINTCAST_SIGNALING": f"ws://127.0.0.1:{port}/ws", "POINTCAST_TOKEN": "s3cret"}
        g = Gst(work, "wiretoken", "rtcpeer name=rtc rtc.data_x ! fakesink", env)
        try:
            conn, _ = srv.accept()
            conn.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                assert chunk, head
                head += chunk
            conn.close()
        finally:
            g.stop()
        lines = head.decode().split("\r\n")
        assert lines[0].startswith("GET /ws ") and "s3cret" not in lines[0], lines[0]
        assert "authorization: bearer s3cret" in [l.lower() for l in lines], lines


def pipeline_desc(name, faster=False):
    root = os.environ.get("POINTCAST_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "../.."))
    with open(os.path.join(root, "pipelines", name + ".pipeline")) as f:
        text = " ".join(line for line in f if not line.lstrip().startswith("#"))
    if faster:  # the same pipeline, 25 times faster, so the test is short
        assert " rate=4 " in text
        text = text.replace(" rate=4 ", " rate=100 ")
    return text


def case_pipeline_files(work):
    """pipelines/points-sender and points-receiver as the README runs them (POINTCAST_* from the
    environment): all 240 arrays arrive and both pipelines end by themselves."""
    d = Daemon(work).start()
    try:
        rx = Gst(work, "rx", pipeline_desc("points-receiver"), env_for(d, "lab", "rx"))
        tx = Gst(work, "tx", pipeline_desc("points-sender", faster=True), env_for(d, "lab", "tx"))
        ok_exit(tx, 90)
        ok_exit(rx, 30)
        lines = [l for l in rx.text().splitlines() if l.startswith("pointsink")]
        assert len(lines) == 240, f"{len(lines)} arrays logged:\n{rx.text()[-2000:]}"
        assert "shape=(100, 3)" in lines[-1], lines[-1]
    finally:
        d.kill()


def sigint_exits(g, timeout=5):
    """gst-launch -e ends on SIGINT: EOS reaches every sink, also those behind src pads no peer
    ever filled (the pad is made at EOS), within `timeout` s."""
    g.proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    rc = g.wait(timeout)
    assert rc == 0, f"{g.name} exited {rc}:\n{g.text()[-3000:]}"
    return time.monotonic() - t0


def case_eos_without_peer(work):
    """ball-sender and ball-tracker alone in a room end on SIGINT (before, gst-launch stayed at
    "Waiting for EOS": ballscore, behind the never-made data_detections src pad, got no EOS); then
    both together, connected, still end on SIGINT with the loop scored."""
    d = Daemon(work).start()
    try:
        for name in ["ball-sender", "ball-tracker"]:
            g = Gst(work, name + "-alone", pipeline_desc(name), env_for(d, "alone-" + name, name))
            deadline = time.monotonic() + 15
            while f"{name} (" not in d.text() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert f"{name} (" in d.text(), d.text()[-2000:]
            time.sleep(0.5)  # PLAYING
            took = sigint_exits(g)
            print(f"{name} alone: exited {took:.2f} s after SIGINT")
            assert "Waiting for EOS" in g.text() and "Got EOS" in g.text(), g.text()[-2000:]
        # The tracker stopped first, its sender still there: its only sink is fed from its own
        # src pad, so its src pads end at once (15 s before: the 5 s wait for that sink, then
        # the channel drain's 10 s limit, which is what is left).
        tx = Gst(work, "tx0", pipeline_desc("ball-sender"), env_for(d, "loop0", "tx0"))
        rx = Gst(work, "rx0", pipeline_desc("ball-tracker"), env_for(d, "loop0", "rx0"))
        scored = re.compile(r"ballscore: frames \d+, detections [1-9]")
        deadline = time.monotonic() + 30
        while not scored.search(tx.text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert scored.search(tx.text()), tx.text()[-3000:] + rx.text()[-2000:]
        took = sigint_exits(rx, timeout=13)
        print(f"ball-tracker with its sender: exited {took:.2f} s after SIGINT")
        sigint_exits(tx, timeout=10)
        tx = Gst(work, "tx", pipeline_desc("ball-sender"), env_for(d, "loop", "tx"))
        rx = Gst(work, "rx", pipeline_desc("ball-tracker"), env_for(d, "loop", "rx"))
        deadline = time.monotonic() + 30
        scored = re.compile(r"ballscore: frames \d+, detections [1-9]")
        while not scored.search(tx.text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert scored.search(tx.text()), tx.text()[-3000:] + rx.text()[-2000:]
        took = sigint_exits(tx, timeout=10)
        print(f"ball-sender with a tracker: exited {took:.2f} s after SIGINT")
        took = sigint_exits(rx, timeout=10)
        print(f"ball-tracker after its sender: exited {took:.2f} s after SIGINT")
    finally:
        d.kill()


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def live_children():
    """Pids of this process's children that are still running (not zombies)."""
    me, out = str(os.getpid()), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[1] == me and fields[0] != "Z":
            out.append(int(pid))
    return out


def _terminated(signum, frame):
    # meson's timeout sends SIGTERM: end like a failure, so the case's processes are stopped.
    raise SystemExit(f"terminated by signal {signum}")


def run_cases(cases, names, prefix="rtc"):
    """Runs each of names (repeats allowed) from cases, each in its own work directory; a case
    fails if it raises or leaves a child process running. Returns the exit status."""
    failed = []
    signal.signal(signal.SIGTERM, _terminated)
    for name in names:
        work = tempfile.mkdtemp(prefix=f"{prefix}-{name}-")
        t0 = time.monotonic()
        ok = True
        try:
            cases[name](work)
            print(f"ok   {name} ({time.monotonic() - t0:.1f} s)", flush=True)
        except Exception:
            ok = False
            print(f"FAIL {name} ({time.monotonic() - t0:.1f} s; logs in {work})", flush=True)
            traceback.print_exc()
        finally:
            stop_started()
        left = live_children()
        if left:  # a process the case started some other way than Gst/Daemon
            ok = False
            print(f"FAIL {name}: left processes running: {left}", flush=True)
            for pid in left:
                os.kill(pid, signal.SIGKILL)
        if not ok:
            failed.append(name)
    if failed:
        print("failed:", " ".join(failed))
        return 1
    return 0


def main():
    return run_cases(CASES, sys.argv[1:] or list(CASES))


if __name__ == "__main__":
    sys.exit(main())
