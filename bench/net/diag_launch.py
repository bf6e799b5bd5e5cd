#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""gst-launch-1.0 -e with counters: runs the pipeline WORDS as gst-launch would (SIGINT sends EOS,
SIGTERM ends it) and at the end writes what a loss diagnosis needs to the JSON file named by
$PCDIAG_OUT: rtpjitterbuffer stats, rtpsession per-source stats (NACK/PLI counts), rtprtxsend and
rtprtxreceive counts, frames out of ballsrc / the encoder (keyframes) / the depayloader / the
decoder / rtcpeer's video src pad / balldetect, each with monotonic times (comparable across
network namespaces) and frame numbers where known. Used by bench/net/bench_net.py --diag.

Usage: PCDIAG_OUT=FILE diag_launch.py [-e] WORDS...
"""
import json
import os
import signal
import struct
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtp", "1.0")
from gi.repository import GLib, Gst, GstRtp  # noqa: E402

Gst.init(None)
words = [w for w in sys.argv[1:] if w != "-e"]
pipe = Gst.parse_launch(" ".join(words))
out = {"counts": {}, "times": {}, "frames": {}}
elements = {}  # kind -> [element]


def count(key, t=None, frame=None):
    out["counts"][key] = out["counts"].get(key, 0) + 1
    if t is not None:
        out["times"].setdefault(key, []).append(round(t, 4))
    if frame is not None:
        out["frames"].setdefault(key, []).append([frame, round(t, 4)])


def probe(pad, key, what=None):
    def cb(pad, info):
        buf = info.get_buffer()
        now = time.monotonic()
        frame = None
        if what == "points":
            ok, m = buf.map(Gst.MapFlags.READ)
            if ok:
                if m.size >= 12:
                    frame = int(struct.unpack_from("<f", m.data, 0)[0])
                buf.unmap(m)
        elif what == "rtp":
            ok, rtp = GstRtp.RTPBuffer.map(buf, Gst.MapFlags.READ)
            if ok:
                frame = rtp.get_seq()
                rtp.unmap()
        elif what == "keyframe" and not buf.has_flags(Gst.BufferFlags.DELTA_UNIT):
            count(key + "-key", now)
        count(key, now, frame)
        return Gst.PadProbeReturn.OK
    pad.add_probe(Gst.PadProbeType.BUFFER, cb)


def on_element(bin_, sub, el):
    f = el.get_factory()
    name = f.get_name() if f else ""
    elements.setdefault(name, []).append(el)
    if name in ("rtpvp8depay", "vp8dec", "vp8enc", "rtpjitterbuffer"):
        if name == "rtpjitterbuffer":
            probe(el.get_static_pad("sink"), "jb-in", "rtp")
            probe(el.get_static_pad("src"), "jb-out", "rtp")
        else:
            probe(el.get_static_pad("src"), name, "keyframe" if name == "vp8enc" else None)


pipe.connect("deep-element-added", on_element)
for el in pipe.iterate_recurse():
    on_element(pipe, None, el)
    f = el.get_factory()
    name = f.get_name() if f else ""
    if name == "ballsrc":
        probe(el.get_static_pad("src"), "ballsrc")
    elif name == "balldetect":
        probe(el.get_static_pad("src"), "detect", "points")
    elif name == "npyunpack":
        probe(el.get_static_pad("src"), "detections-in", "points")
    elif name == "rtcpeer":
        def pad_added(e, pad):
            if pad.get_name().startswith("video_") and pad.get_direction() == Gst.PadDirection.SRC:
                probe(pad, "rtc-video-out")
        el.connect("pad-added", pad_added)


def structure_dict(s):
    d = {}
    for i in range(s.n_fields()):
        k = s.nth_field_name(i)
        v = s.get_value(k)
        if isinstance(v, (int, float, str, bool)):
            d[k] = v
    return d


def collect():
    for jb in elements.get("rtpjitterbuffer", []):
        out.setdefault("jitterbuffer", []).append(structure_dict(jb.get_property("stats")))
    for sess in elements.get("rtpsession", []):
        st = sess.get_property("stats")
        arr = st.get_value("source-stats") if st else None
        for src in arr or []:
            d = structure_dict(src)
            keep = {k: d[k] for k in d if "count" in k or k in ("ssrc", "internal", "is-sender",
                                                                 "packets-received", "packets-lost")}
            out.setdefault("sources", []).append(keep)
    for kind in ("rtprtxsend", "rtprtxreceive"):
        for e in elements.get(kind, []):
            props = {p.name: e.get_property(p.name) for p in e.list_properties()
                     if p.name.startswith("num-")}
            out.setdefault(kind, []).append(props)


loop = GLib.MainLoop()


def bus_cb(bus, msg):
    if msg.type in (Gst.MessageType.EOS, Gst.MessageType.ERROR):
        if msg.type == Gst.MessageType.ERROR:
            print("ERROR:", msg.parse_error(), flush=True)
        loop.quit()
    return True


def finish(*_):
    collect()
    with open(os.environ["PCDIAG_OUT"], "w") as f:
        json.dump(out, f)


bus = pipe.get_bus()
bus.add_signal_watch()
bus.connect("message", bus_cb)
GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, lambda: pipe.send_event(Gst.Event.new_eos()) or True)
GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or False)
pipe.set_state(Gst.State.PLAYING)
try:
    loop.run()
finally:
    finish()
    pipe.set_state(Gst.State.NULL)
