#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""N rtcpeer viewers in one process (role=answerer), each decoding the video it gets. Prints
"ready" once every viewer has decoded a few frames, then, on each line read from stdin, the
frame count of every viewer and the RTCP bandwidth of each of their rtpsessions as JSON. For bench/fanout/run.py.

usage: viewers.py N SIGNALING_URI ROOM"""
import json
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def main():
    n, uri, room = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    Gst.init(None)
    pipe = Gst.Pipeline.new("viewers")
    counts = [0] * n
    lock = threading.Lock()
    ready = threading.Event()

    def on_pad(rtc, pad, i):
        if not pad.get_name().startswith("video_"):
            return
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        pipe.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))

        def probe(_pad, _info):
            with lock:
                counts[i] += 1
                if min(counts) >= 10:
                    ready.set()
            return Gst.PadProbeReturn.OK

        pad.add_probe(Gst.PadProbeType.BUFFER, probe)

    for i in range(n):
        rtc = Gst.ElementFactory.make("rtcpeer", f"viewer{i}")
        rtc.set_property("signaling", uri)
        rtc.set_property("room", room)
        rtc.set_property("peer-id", f"viewer-{i:02d}")
        rtc.set_property("peer-type", "receiver")
        rtc.set_property("role", "answerer")
        rtc.connect("pad-added", on_pad, i)
        pipe.add(rtc)
    pipe.set_state(Gst.State.PLAYING)
    loop = GLib.MainLoop()
    threading.Thread(target=loop.run, daemon=True).start()

    def report_ready():
        ready.wait()
        print("ready", flush=True)

    threading.Thread(target=report_ready, daemon=True).start()
    def rtcp_rates():
        # Each viewer's RTCP bandwidth (rtcprate: 40000 while its link shows trouble, which a
        # loaded machine can cause too), for the sender's share of feedback in the window.
        rates = []
        for rtc in pipe.iterate_elements():
            for e in rtc.iterate_recurse() if isinstance(rtc, Gst.Bin) else []:
                f = e.get_factory()
                if f and f.get_name() == "rtpsession":
                    rates.append(e.get_property("rtcp-rr-bandwidth"))
        return rates

    for _line in sys.stdin:
        with lock:
            frames = list(counts)
        print(json.dumps({"frames": frames, "rtcp": rtcp_rates()}), flush=True)
    pipe.set_state(Gst.State.NULL)


if __name__ == "__main__":
    main()
