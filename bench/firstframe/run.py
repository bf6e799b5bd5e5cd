# SPDX-License-Identifier: LGPL-2.1-or-later
"""Time to first frame, rtcpeer to rtcpeer, in both arrival orders.

A daemon on loopback; the viewer is rtcpeer in this process (appsink, first decoded frame timed
here), the sender a gst-launch-1.0 process (videotestsrc 640x480@30 -> rtcpeer.video_0).
  viewer first: the viewer waits in the room; timed from starting the sender process.
  sender first: the sender is in the room (registered); timed from starting the viewer.
Each order RUNS times, a fresh room each time, after one warm-up run; median, max and every run
(ms) printed against TARGETS.md (0.5 s).
usage: run.py [--runs N]  (needs GST_PLUGIN_PATH and POINTCAST_BUILD_ROOT)"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

TARGET = 0.5


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


class Viewer:
    def __init__(self, uri, room):
        self.pipe = Gst.Pipeline.new(None)
        self.rtc = Gst.ElementFactory.make("rtcpeer", None)
        self.rtc.set_property("signaling", uri)
        self.rtc.set_property("room", room)
        self.sink = Gst.ElementFactory.make("appsink", None)
        self.sink.set_property("sync", False)
        self.sink.set_property("drop", True)
        self.sink.set_property("max-buffers", 1)
        self.pipe.add(self.rtc)
        self.pipe.add(self.sink)
        self.rtc.connect("pad-added", self._pad)

    def _pad(self, _, pad):
        if pad.get_name().startswith("video_") and not self.sink.get_static_pad("sink").is_linked():
            pad.link(self.sink.get_static_pad("sink"))

    def start(self):
        self.pipe.set_state(Gst.State.PLAYING)

    def wait_registered(self, timeout=10):
        bus = self.pipe.get_bus()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            msg = bus.timed_pop_filtered(100 * Gst.MSECOND, Gst.MessageType.ELEMENT)
            if msg and msg.get_structure().get_name() == "rtcpeer-registered":
                return True
        return False

    def first_frame(self, timeout=10):
        sample = self.sink.emit("try-pull-sample", timeout * Gst.SECOND)
        return time.monotonic() if sample else None

    def stop(self):
        self.pipe.set_state(Gst.State.NULL)


def sender(uri, room):
    desc = ("videotestsrc is-live=true ! video/x-raw,width=640,height=480,framerate=30/1 ! "
            "queue max-size-buffers=2 leaky=downstream ! rtc.video_0 rtcpeer name=rtc "
            "signaling=%s room=%s" % (uri, room))
    return subprocess.Popen(["gst-launch-1.0", "-q"] + desc.split(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def one(uri, room, viewer_first):
    v = Viewer(uri, room)
    tx = None
    try:
        if viewer_first:
            v.start()
            assert v.wait_registered(), "viewer did not register"
            t0 = time.monotonic()
            tx = sender(uri, room)
        else:
            tx = sender(uri, room)
            time.sleep(1.5)  # registered well before the viewer arrives
            t0 = time.monotonic()
            v.start()
        t1 = v.first_frame()
        return None if t1 is None else t1 - t0
    finally:
        v.stop()
        if tx:
            tx.terminate()
            tx.wait(10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    Gst.init(None)
    daemon_bin = os.path.join(os.environ.get("POINTCAST_BUILD_ROOT", "build"), "signaling",
                              "pointcast-signaling")
    port = free_port()
    daemon = subprocess.Popen([daemon_bin, "--host", "127.0.0.1", "--port", str(port),
                               "--log-level", "WARNING"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    ok = True
    try:
        end = time.monotonic() + 10
        while not healthy(port):
            assert time.monotonic() < end, "daemon did not start"
            time.sleep(0.1)
        uri = "ws://127.0.0.1:%d/ws" % port
        print("time from starting the later peer to the first decoded frame, rtcpeer -> rtcpeer, "
              "loopback, %d runs per order" % args.runs)
        # Warm-up, not counted: this process's first rtcpeer makes its DTLS key and loads its
        # plugins, which a viewer waiting in a room has done long before a sender comes.
        one(uri, "ff-%d-warmup" % os.getpid(), True)
        for viewer_first in (True, False):
            times = []
            for i in range(args.runs):
                room = "ff-%d-%d-%d" % (os.getpid(), viewer_first, i)
                times.append(one(uri, room, viewer_first))
            got = [t for t in times if t is not None]
            name = "viewer first (from sender start)" if viewer_first else \
                "sender first (from viewer start)"
            if len(got) < len(times):
                print("%-36s %d of %d runs got no frame" % (name, len(times) - len(got),
                                                              len(times)))
                ok = False
                continue
            med, worst = statistics.median(got), max(got)
            met = med <= TARGET
            ok &= met
            print("%-36s median %.3f s, max %.3f s  (target <= %.1f s: %s)  runs: %s" % (
                name, med, worst, TARGET, "met" if met else "BELOW",
                " ".join("%.0f" % (t * 1000) for t in got)))
    finally:
        daemon.terminate()
        daemon.wait(10)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
