#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A viewer of ball video for tests/net: rtcpeer in, decoded, balldetect reading each frame's
embedded number; prints "FRAME MONOTONIC_S" per decoded frame (flushed), so a test can count the
frames each viewer got and when. Signaling from POINTCAST_SIGNALING / POINTCAST_ROOM /
POINTCAST_PEER_ID as for every rtcpeer."""
import struct
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def main():
    Gst.init(None)
    pipe = Gst.parse_launch(
        "rtcpeer name=rtc peer-type=viewer role=auto rtc.video_0 ! queue ! videoconvert"
        " ! balldetect ! appsink name=out emit-signals=true sync=false")

    def on_sample(sink):
        sample = sink.emit("pull-sample")
        now = time.monotonic()
        ok, info = sample.get_buffer().map(Gst.MapFlags.READ)
        if ok:
            data = bytes(info.data)
            sample.get_buffer().unmap(info)
            if len(data) >= 12:
                frame = struct.unpack_from("<f", data)[0]
                sys.stdout.write(f"{int(frame)} {now:.4f}\n")
                sys.stdout.flush()
        return Gst.FlowReturn.OK

    pipe.get_by_name("out").connect("new-sample", on_sample)
    loop = GLib.MainLoop()
    bus = pipe.get_bus()
    bus.add_signal_watch()

    def on_message(_bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            print("ERROR", msg.parse_error(), file=sys.stderr)
            loop.quit()

    bus.connect("message", on_message)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 15, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 2, loop.quit)
    pipe.set_state(Gst.State.PLAYING)
    loop.run()
    pipe.set_state(Gst.State.NULL)


if __name__ == "__main__":
    main()
