#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The media senders in pipelines/, run from their files, received by a second rtcpeer.

Each sender description is exactly what `./pointcast launch NAME --dry-run` gives (the file, with
--set overrides), parsed by the same parser gst-launch-1.0 uses. Sender and receiver meet in an
in-process rtcpeer room (signaling=local://ROOM) so that no daemon or network is involved; the
camera test runs the real gst-launch-1.0. Cameras are replaced by videotestsrc where a test needs
frames (there is no camera on a test machine).

Run one class: /usr/bin/python3 tests/media/test_senders.py FileSender
"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

import faulthandler

import numpy as np

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

ROOT = os.environ.get("POINTCAST_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("POINTCAST_BUILD_ROOT") or os.path.join(ROOT, "build")
GENERATOR = os.path.join(ROOT, "tests", "generate_test_video.sh")

Gst.init(None)


def description(name, *sets):
    """Words of pipelines/NAME.pipeline after `--set` overrides, via ./pointcast launch --dry-run."""
    args = [os.path.join(ROOT, "pointcast"), "launch", name, "--dry-run"]
    for s in sets:
        args += ["--set", s]
    r = subprocess.run(args, capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, POINTCAST_BUILD=BUILD))
    if r.returncode != 0:
        raise AssertionError(f"launch {name} --dry-run failed: {r.stderr}")
    words = r.stdout.split()
    assert words[:2] == ["gst-launch-1.0", "-e"], words
    return words[2:]


def replace_cameras(words, patterns):
    """v4l2src name=X device=D -> videotestsrc name=X is-live=true pattern=P (no camera here)."""
    out, i, n = [], 0, 0
    while i < len(words):
        if words[i] == "v4l2src":
            out += ["videotestsrc", "is-live=true", f"pattern={patterns[n]}"]
            n += 1
            i += 1
            while i < len(words) and "=" in words[i]:  # its properties
                if not words[i].startswith("device="):
                    out.append(words[i])
                i += 1
            continue
        out.append(words[i])
        i += 1
    return out


class Frames:
    """What an appsink received: the caps of the first sample and every buffer's bytes."""

    def __init__(self, caps):
        self.caps = caps
        self.buffers = []
        self.lock = threading.Lock()


class Receiver:
    """rtcpeer receiving in room ROOM; every video_%u / audio_%u src pad goes to an appsink
    (video as RGB, audio as mono F32LE 48 kHz)."""

    def __init__(self, room, keep=True):
        self.pipeline = Gst.Pipeline.new("receiver")
        self.rtc = Gst.parse_launch(
            f"rtcpeer name=rtc signaling=local://{room} room={room} peer-id=receiver "
            "peer-type=receiver receive-audio=true")
        self.pipeline.add(self.rtc)
        self.tracks = {}  # pad name -> Frames
        self.keep = keep
        self.lock = threading.Lock()
        self.rtc.connect("pad-added", self._pad_added)

    def _pad_added(self, element, pad):
        name = pad.get_name()
        if name.startswith("video_"):
            chain = "queue ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink"
        elif name.startswith("audio_"):
            chain = ("queue ! audioconvert ! audioresample ! "
                     "audio/x-raw,format=F32LE,channels=1,rate=48000 ! appsink name=sink")
        else:
            return
        bin_ = Gst.parse_bin_from_description(chain, True)
        sink = bin_.get_by_name("sink")
        sink.set_property("emit-signals", True)
        sink.set_property("sync", False)
        frames = None

        def on_sample(appsink):
            nonlocal frames
            sample = appsink.emit("pull-sample")
            if sample is None:
                return Gst.FlowReturn.OK
            with self.lock:
                if frames is None:
                    frames = Frames(sample.get_caps())
                    self.tracks[name] = frames
                buf = sample.get_buffer()
                ok, info = buf.map(Gst.MapFlags.READ)
                if ok:
                    frames.buffers.append(bytes(info.data) if self.keep or not frames.buffers
                                          else b"")
                    buf.unmap(info)
            return Gst.FlowReturn.OK

        sink.connect("new-sample", on_sample)
        self.pipeline.add(bin_)
        bin_.sync_state_with_parent()
        pad.link(bin_.get_static_pad("sink"))

    def count(self, prefix):
        with self.lock:
            return {k: len(v.buffers) for k, v in self.tracks.items() if k.startswith(prefix)}


class Case(unittest.TestCase):
    def setUp(self):
        self.room = "media-" + uuid.uuid4().hex[:8]
        self.dir = tempfile.mkdtemp(prefix="pc-senders-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.pipelines = []
        self.messages = []  # (pipeline label, message type, text)
        self.loop = GLib.MainLoop()
        self.thread = threading.Thread(target=self.loop.run, daemon=True)
        self.thread.start()
        self.addCleanup(self._teardown)

    def _teardown(self):
        for p in reversed(self.pipelines):
            p.set_state(Gst.State.NULL)
        self.loop.quit()
        self.thread.join(5)

    def start(self, pipeline, label):
        bus = pipeline.get_bus()

        def on_message(_bus, msg):
            t = msg.type
            if t == Gst.MessageType.ERROR:
                err, dbg = msg.parse_error()
                self.messages.append((label, "error", f"{msg.src.get_name()}: {err.message} {dbg}"))
            elif t == Gst.MessageType.WARNING:
                err, dbg = msg.parse_warning()
                self.messages.append((label, "warning", f"{msg.src.get_name()}: {err.message}"))
            elif t == Gst.MessageType.EOS:
                self.messages.append((label, "eos", ""))
            return True

        bus.add_signal_watch()
        bus.connect("message", on_message)
        self.pipelines.append(pipeline)
        ret = pipeline.set_state(Gst.State.PLAYING)
        self.assertNotEqual(ret, Gst.StateChangeReturn.FAILURE, f"{label} failed to start: "
                            f"{self.messages}")

    def sender(self, words):
        # Same parser as gst-launch-1.0 (it joins argv with spaces and parses the result).
        os.environ["POINTCAST_SIGNALING"] = f"local://{self.room}"
        os.environ["POINTCAST_ROOM"] = self.room
        os.environ["POINTCAST_PEER_ID"] = "sender"
        pipeline = Gst.parse_launchv(words)
        self.start(pipeline, "sender")
        return pipeline

    def receiver(self, keep=True):
        r = Receiver(self.room, keep)
        self.start(r.pipeline, "receiver")
        self.receivers = {"receiver": r}
        return r

    def errors(self):
        return [m for m in self.messages if m[1] == "error"]

    def wait_for(self, what, condition, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            self.assertEqual(self.errors(), [], f"while waiting for {what}")
            time.sleep(0.1)
        message = (f"timed out after {timeout} s waiting for {what}; messages: {self.messages}; "
                   f"received: {self.received()}")
        print(message, file=sys.stderr, flush=True)  # before a teardown that might hang
        self.fail(message)

    def received(self):
        return {n: r.count("") for n, r in getattr(self, "receivers", {}).items()}

    def video_frames(self, receiver, pad):
        t = receiver.tracks[pad]
        s = t.caps.get_structure(0)
        w, h = s.get_value("width"), s.get_value("height")
        with t.lock:
            bufs = [b for b in t.buffers if b]
        return w, h, [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in bufs]


def generate(path, *args):
    r = subprocess.run([GENERATOR, "-o", path, "-F", *args], capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"generate_test_video.sh failed: {r.stderr}")


class TestsrcSender(Case):
    # videotestsrc pattern=smpte (full intensity), left to right in seven equal columns:
    # the top two thirds, and the narrow strip under them (reversed bars alternating with black).
    TOP = [(255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0), (255, 0, 255),
           (255, 0, 0), (0, 0, 255)]
    STRIP = [(0, 0, 255), (0, 0, 0), (255, 0, 255), (0, 0, 0), (0, 255, 255), (0, 0, 0),
             (255, 255, 255)]

    def test_colour_bars_arrive_where_they_should_be(self):
        receiver = self.receiver()
        self.sender(description("testsrc-sender"))
        self.wait_for("30 video frames", lambda: sum(receiver.count("video_").values()) >= 30, 60)
        self.assertEqual(list(receiver.count("video_")), ["video_0"])
        self.assertEqual(receiver.count("audio_"), {})
        w, h, frames = self.video_frames(receiver, "video_0")
        self.assertEqual((w, h), (640, 480))
        frame = frames[-1].astype(int)
        for row, y, colours in (("top", h // 3, self.TOP), ("strip", int(h * 0.71), self.STRIP)):
            for i, rgb in enumerate(colours):
                x = int((i + 0.5) * w / 7)
                patch = frame[y - 6:y + 6, x - 10:x + 10].reshape(-1, 3).mean(axis=0)
                self.assertTrue(np.all(np.abs(patch - rgb) < 40),
                                f"{row} bar {i} at ({x}, {y}): got {patch.round()}, want {rgb}")
        self.assertEqual(self.errors(), [])


class MulticamSender(Case):
    # Each camera is its own track with its own payload type; the receiver offered to receive
    # only one video track, so the sender offers the second one on the same connection.
    def test_two_video_tracks_in_one_connection(self):
        receiver = self.receiver()
        words = replace_cameras(description("multicam-sender", "width=320", "height=240"),
                                ["red", "blue"])
        self.sender(words)
        self.wait_for("frames on two video pads",
                      lambda: len(receiver.count("video_")) == 2
                      and min(receiver.count("video_").values()) >= 10, 60)
        colours = set()
        for pad in receiver.count("video_"):
            w, h, frames = self.video_frames(receiver, pad)
            self.assertEqual((w, h), (320, 240))
            mean = frames[-1].reshape(-1, 3).mean(axis=0)
            colours.add("red" if mean[0] > 150 and mean[2] < 80 else
                        "blue" if mean[2] > 150 and mean[0] < 80 else str(mean.round()))
        self.assertEqual(colours, {"red", "blue"}, "each camera arrives on its own track")
        # One peer connection: the receiver has exactly one session, with the sender.
        self.assertEqual(self.errors(), [])


class FileSender(Case):
    def play(self, path):
        """Send the file with file-sender to a receiver; return (receiver, seconds to EOS)."""
        receiver = self.receiver()
        started = time.monotonic()
        self.sender(description("file-sender", f"location={path}"))
        self.wait_for("the end of the file (EOS from the sender)",
                      lambda: ("sender", "eos", "") in self.messages, 90)
        return receiver, time.monotonic() - started

    def test_bounce_video_with_audio(self):
        path = os.path.join(self.dir, "bounce.mp4")
        generate(path, "-d", "8", "-s", "320x240", "-r", "15")
        receiver, _ = self.play(path)
        self.assertEqual(sorted(receiver.count("")), ["audio_0", "video_0"])
        w, h, frames = self.video_frames(receiver, "video_0")
        self.assertEqual((w, h), (320, 240))
        self.assertGreater(len(frames), 15, "the receiver got the video")
        # The ball (orange) is in the picture and the rest is black.
        lit = frames[-1].max(axis=2) > 80
        self.assertTrue(200 < np.count_nonzero(lit) < 64 * 64 * 1.5, np.count_nonzero(lit))
        r, g, b = frames[-1][lit].mean(axis=0)
        self.assertGreater(r, b + 60, "orange ball")
        # The audio is the generator's tone around 440 Hz.
        t = receiver.tracks["audio_0"]
        with t.lock:
            samples = np.frombuffer(b"".join(t.buffers), np.float32)
        self.assertGreater(len(samples), 48000, "at least a second of audio")
        samples = samples[-48000:]
        self.assertGreater(np.sqrt(np.mean(samples ** 2)), 0.05, "audible")
        spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
        peak = np.fft.rfftfreq(len(samples), 1 / 48000)[np.argmax(spectrum)]
        self.assertTrue(380 <= peak <= 500, f"audio peak at {peak:.0f} Hz")
        self.assertEqual(self.errors(), [])

    def test_video_only_file_plays_in_real_time_to_the_end(self):
        path = os.path.join(self.dir, "silent.mkv")
        generate(path, "-m", "testsrc", "-d", "6", "-s", "160x120", "-r", "10", "-a", "no")
        receiver, elapsed = self.play(path)
        # Paced in real time: 6 s of video take about 6 s, not a burst.
        self.assertGreater(elapsed, 5.5)
        self.assertEqual(list(receiver.count("")), ["video_0"], "no audio track without audio")
        w, h, frames = self.video_frames(receiver, "video_0")
        self.assertEqual((w, h), (160, 120))
        self.assertGreater(len(frames), 10, "the receiver got the video")
        # Only the missing audio branch's delayed link is worth a warning; nothing failed.
        self.assertEqual(self.errors(), [])


class CameraSender(Case):
    def test_missing_camera_is_a_clear_error(self):
        device = "/dev/pointcast-no-such-camera"
        words = description("camera-sender", f"device={device}")
        env = dict(os.environ, POINTCAST_SIGNALING=f"local://{self.room}",
                   POINTCAST_ROOM=self.room, GST_PLUGIN_PATH=os.path.join(BUILD, "gst"))
        started = time.monotonic()
        r = subprocess.run(["gst-launch-1.0", "-e", *words], capture_output=True, text=True,
                           timeout=60, env=env)
        elapsed = time.monotonic() - started
        out = r.stdout + r.stderr
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(device, out, "the error names the device")
        self.assertIn("ERROR", out)
        self.assertLess(elapsed, 20, "fails at once, no hang")


if __name__ == "__main__":
    # A hang shows where it is instead of only the meson timeout.
    faulthandler.dump_traceback_later(float(os.environ.get("PC_HANG_DUMP", "150")), exit=True)
    unittest.main(verbosity=2)
