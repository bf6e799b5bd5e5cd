# SPDX-License-Identifier: LGPL-2.1-or-later
"""A small helper for Python applications on the pointcast plugin (PyGObject + NumPy).

    import pointcast_app as pc
    with pc.ArrayReceiver(room="lab") as rx:          # rtcpeer ! npyunpack ! appsink
        for array, pts in rx.arrays(count=10):
            print(array.shape, pts)

    with pc.ArraySender(room="lab") as tx:            # appsrc ! npypack ! rtcpeer
        tx.send(numpy.zeros((100, 3), numpy.float32))

Arrays travel as numpy.save bytes on a data channel (label "points" by default), so the other
end can be any pointcast pipeline, a browser or an aiortc program. Signaling URL and room default
to POINTCAST_SIGNALING / POINTCAST_ROOM, as for rtcpeer itself. The plugin is found through
GST_PLUGIN_PATH, or loaded from POINTCAST_PLUGIN (the path of libgstpointcast.so)."""
import os
import threading
import time

import gi
import numpy as np

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
from gi.repository import GLib, Gst, GstApp  # noqa: E402,F401  (GstApp: appsrc/appsink methods)

_main_loop = None


def init():
    """Gst.init once, the plugin loaded from POINTCAST_PLUGIN when that is set, and a GLib main
    loop in a background thread: rtcpeer's signaling runs on the default main context, as in
    any GStreamer application (without one, negotiation waits for its fallback timers)."""
    global _main_loop
    if not Gst.is_initialized():
        Gst.init(None)
    if _main_loop is None:
        _main_loop = GLib.MainLoop()
        threading.Thread(target=_main_loop.run, name="glib-main-loop", daemon=True).start()
    path = os.environ.get("POINTCAST_PLUGIN")
    if path and not Gst.Registry.get().find_plugin("pointcast"):
        Gst.Registry.get().add_plugin(Gst.Plugin.load_file(path))
    if not Gst.ElementFactory.find("rtcpeer"):
        raise RuntimeError("the pointcast plugin is not loadable: set GST_PLUGIN_PATH to the folder of "
                           "libgstpointcast.so (./pointcast env) or POINTCAST_PLUGIN to the file")


def set_rtcpeer(element, signaling=None, room=None, peer_id=None, peer_type=None, **extra):
    """Sets rtcpeer properties given as Python keywords (peer_id -> peer-id); None keeps
    rtcpeer's own default (POINTCAST_SIGNALING, POINTCAST_ROOM, a generated id)."""
    props = {"signaling": signaling, "room": room, "peer-id": peer_id, "peer-type": peer_type}
    props.update({k.replace("_", "-"): v for k, v in extra.items()})
    for k, v in props.items():
        if v is not None:
            element.set_property(k, v)


class Pipeline:
    """A parsed pipeline with start/stop and a bus that raises on errors."""

    def __init__(self, description, **rtcpeer):
        init()
        self.pipeline = Gst.parse_launch(description)
        self.rtc = self.pipeline.get_by_name("rtc")
        if self.rtc is not None:
            set_rtcpeer(self.rtc, **rtcpeer)
        self.bus = self.pipeline.get_bus()
        self.messages = []  # element messages seen (rtcpeer-peer-connected, ...), as structures

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            self.poll()
            raise RuntimeError("the pipeline did not start")

    def poll(self, timeout_s=0.0):
        """Handles bus messages for up to timeout_s; raises RuntimeError on an error message.
        Returns True once EOS was seen."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = max(0.0, deadline - time.monotonic())
            msg = self.bus.timed_pop_filtered(int(left * Gst.SECOND),
                                              Gst.MessageType.ERROR | Gst.MessageType.EOS | Gst.MessageType.ELEMENT)
            if msg is None:
                return False
            if msg.type == Gst.MessageType.ERROR:
                err, dbg = msg.parse_error()
                raise RuntimeError("%s: %s (%s)" % (msg.src.get_name(), err.message, dbg))
            if msg.type == Gst.MessageType.EOS:
                return True
            st = msg.get_structure()
            if st is not None:
                self.messages.append(st.copy())
            if time.monotonic() >= deadline:
                return False

    def wait_for_message(self, name, timeout_s):
        """Waits for an element message called name (e.g. rtcpeer-channel-open); returns it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for st in self.messages:
                if st.get_name() == name:
                    return st
            self.poll(min(0.1, deadline - time.monotonic()))
        raise TimeoutError("no %s message within %s s" % (name, timeout_s))

    def stop(self):
        self.pipeline.set_state(Gst.State.NULL)


def points_to_array(sample):
    """An application/x-points sample (float32 rows x columns) as a (rows, columns) array."""
    buf = sample.get_buffer()
    columns = sample.get_caps().get_structure(0).get_value("columns")
    ok, info = buf.map(Gst.MapFlags.READ)
    try:
        array = np.frombuffer(info.data, dtype="<f4").reshape(-1, columns).copy()
    finally:
        buf.unmap(info)
    return array, buf.pts


class ArrayReceiver(Pipeline):
    """rtcpeer ! npyunpack ! appsink: one float32 array per message received on `label`."""

    def __init__(self, label="points", **rtcpeer):
        super().__init__("rtcpeer name=rtc rtc.data_%s ! npyunpack ! appsink name=out sync=false "
                         "max-buffers=1000" % label, **rtcpeer)
        self.sink = self.pipeline.get_by_name("out")

    def receive(self, timeout_s=10.0):
        """(array, pts) of the next message, or None after timeout_s (or at EOS). pts is in
        nanoseconds of the pipeline's running time: the buffer's PTS, or, since messages from
        the network carry none, the moment it was received."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            sample = self.sink.try_pull_sample(int(0.1 * Gst.SECOND))
            if sample is not None:
                array, pts = points_to_array(sample)
                if pts == Gst.CLOCK_TIME_NONE:
                    clock = self.pipeline.get_clock()
                    pts = clock.get_time() - self.pipeline.get_base_time() if clock else 0
                return array, pts
            if self.poll() or self.sink.is_eos():
                return None
        return None

    def arrays(self, count=None, timeout_s=10.0):
        """Yields (array, pts) until count messages came, or none came within timeout_s."""
        n = 0
        while count is None or n < count:
            got = self.receive(timeout_s)
            if got is None:
                return
            n += 1
            yield got


class ArraySender(Pipeline):
    """appsrc ! npypack ! rtcpeer: every send(array) becomes one numpy.save message on `label`,
    delivered to every peer in the room (wait_for_peers: hold them until that many are there)."""

    def __init__(self, label="points", wait_for_peers=1, **rtcpeer):
        super().__init__("appsrc name=src format=time is-live=true do-timestamp=true ! npypack ! "
                         "rtc.data_%s rtcpeer name=rtc" % label, wait_for_peers=wait_for_peers, **rtcpeer)
        self.src = self.pipeline.get_by_name("src")
        self.columns = None

    def send(self, array):
        """Sends a 1-D or 2-D array (converted to float32, as npypack carries it)."""
        a = np.ascontiguousarray(array, dtype="<f4")
        if a.ndim == 1:
            a = a.reshape(1, -1) if a.size else a.reshape(0, 1)
        if a.ndim != 2:
            raise ValueError("arrays of 1 or 2 dimensions, not %d" % a.ndim)
        if a.shape[1] != self.columns:
            self.columns = a.shape[1]
            self.src.set_property("caps", Gst.Caps.from_string("application/x-points,columns=%d" % self.columns))
        if self.src.push_buffer(Gst.Buffer.new_wrapped(a.tobytes())) != Gst.FlowReturn.OK:
            self.poll()
            raise RuntimeError("the pipeline refused the array")
        self.poll()

    def finish(self, timeout_s=15.0):
        """Ends the stream and waits until rtcpeer has delivered everything (its EOS)."""
        self.src.end_of_stream()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.poll(0.1):
                return True
        return False


# --- ballsrc's frame mark (README "The frame mark"), for trackers written in Python ------------

def _crc16(data):
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def mark_band(width):
    """Height in pixels of the mark band of a frame `width` wide (the ball stays below it + 4)."""
    per_row = width // 16
    return 16 * -(-80 // per_row) if per_row else 0


def read_mark(luma):
    """Frame number from the mark band of a luma image (H x W, any numeric dtype), or None."""
    h, w = luma.shape
    per_row = w // 16
    if per_row == 0:
        return None
    rows = -(-80 // per_row)
    copies = rows * per_row // 40
    if copies == 0 or rows * 16 > h:
        return None
    # Mean of the central 8 x 8 pixels of every cell, row-major.
    cells = luma[:rows * 16, :per_row * 16].astype(np.float32).reshape(rows, 16, per_row, 16)
    means = cells[:, 4:12, :, 4:12].mean(axis=(1, 3)).reshape(-1)[:copies * 40].reshape(copies, 40)

    def frame_of(bits):
        word = int("".join("1" if b else "0" for b in bits), 2)
        f, crc = word >> 16, word & 0xFFFF
        return f if _crc16(f.to_bytes(3, "big")) == crc else None

    votes = {}
    for m in means:
        if np.all((m < 100) | (m > 156)):
            f = frame_of(m > 128)
            if f is not None:
                votes[f] = votes.get(f, 0) + 1
    if votes:
        best = max(votes, key=votes.get)
        return best if 2 * votes[best] > sum(votes.values()) else None
    soft = (means - 128).sum(axis=0)
    if copies < 2 or np.any(np.abs(soft) < 20 * copies):
        return None
    return frame_of(soft > 0)
