#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Tests of tests/generate_test_video.sh and data/make_ball.py, checked with ffprobe/ffmpeg.

Run one class: /usr/bin/python3 tests/media/test_generator.py Defaults
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import cv2
import numpy as np

ROOT = os.environ.get("POINTCAST_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "tests", "generate_test_video.sh")
BALL = os.path.join(ROOT, "data", "ball.png")


def run(args, cwd, timeout=120):
    return subprocess.run([SCRIPT] + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def probe(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path],
        capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def streams(info, kind):
    return [s for s in info["streams"] if s["codec_type"] == kind]


def frame_rate(stream):
    num, den = stream["r_frame_rate"].split("/")
    return int(num) / int(den)


def count_video_frames(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
         "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", path],
        capture_output=True, text=True, check=True).stdout
    return int(out.strip())


def audio_bitrate(path):
    """Bits per second of the first audio stream, from its packet sizes (works in every
    container, unlike the header field that WebM lacks)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
         "packet=size,pts_time,duration_time", "-of", "json", path],
        capture_output=True, text=True, check=True).stdout
    packets = json.loads(out)["packets"]
    total = sum(int(p["size"]) for p in packets)
    end = max(float(p["pts_time"]) + float(p.get("duration_time", 0)) for p in packets)
    start = max(min(float(p["pts_time"]) for p in packets), 0.0)
    return total * 8 / (end - start), end - start


def decode_frames(path, width, height):
    """All frames as an N x H x W x 3 uint8 BGR array."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-f", "rawvideo", "-pix_fmt", "bgr24",
         "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def dominant_frequency(path, seconds):
    """Strongest frequency (Hz) in the first audio stream over the given time."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-map", "0:a:0", "-t", str(seconds),
         "-f", "f32le", "-ac", "1", "-ar", "48000", "-"], capture_output=True, check=True).stdout
    samples = np.frombuffer(raw, np.float32)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / 48000)
    return float(freqs[np.argmax(spectrum)]), float(np.sqrt(np.mean(samples ** 2)))


class Case(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pc-media-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def generate(self, *args, timeout=120):
        r = run(args, self.dir, timeout)
        self.assertEqual(r.returncode, 0, f"generate_test_video.sh {' '.join(args)} failed:\n{r.stderr}")
        return r

    def assertVideo(self, path, *, duration, size, fps, codec="h264", audio=True, acodec="aac"):
        info = probe(path)
        video = streams(info, "video")
        self.assertEqual(len(video), 1, "exactly one video stream")
        v = video[0]
        self.assertEqual(v["codec_name"], codec)
        self.assertEqual((v["width"], v["height"]), size)
        self.assertEqual(v["pix_fmt"], "yuv420p")
        self.assertAlmostEqual(frame_rate(v), fps, places=2)
        self.assertAlmostEqual(float(info["format"]["duration"]), duration, delta=0.1)
        # The frame count is what a receiver sees: duration x rate, give or take one frame.
        self.assertAlmostEqual(count_video_frames(path), duration * fps, delta=1.01)
        audios = streams(info, "audio")
        if not audio:
            self.assertEqual(audios, [], "-a no must leave out the audio track")
            return info
        self.assertEqual(len(audios), 1, "exactly one audio stream")
        a = audios[0]
        self.assertEqual(a["codec_name"], acodec)
        self.assertEqual(int(a["sample_rate"]), 48000)
        self.assertEqual(a["channels"], 1)
        bps, seconds = audio_bitrate(path)
        self.assertAlmostEqual(seconds, duration, delta=0.1)
        kbps = bps / 1000
        self.assertTrue(24 <= kbps <= 40, f"audio bitrate {kbps:.1f} kbit/s is not about 32")
        freq, rms = dominant_frequency(path, min(duration, 2))
        self.assertTrue(390 <= freq <= 490, f"tone at {freq:.0f} Hz is not around 440 Hz")
        self.assertGreater(rms, 0.1, "the tone is audible")
        return info


class Defaults(Case):
    def test_testsrc_defaults(self):
        r = self.generate("-m", "testsrc")
        self.assertIn("testsrc.mp4", r.stdout)
        self.assertVideo(self.path("testsrc.mp4"), duration=10, size=(320, 240), fps=10)

    def test_bounce_is_the_default_mode_and_renders_60s_quickly(self):
        started = time.monotonic()
        self.generate(timeout=300)
        elapsed = time.monotonic() - started
        print(f"default bounce render (60 s, 640x480, 30 fps, audio): {elapsed:.1f} s")
        # Real time would be 60 s; ultrafast on 2 shared cores is far below that.
        self.assertLess(elapsed, 60, "the default render should take less than real time")
        self.assertVideo(self.path("bounce.mp4"), duration=60, size=(640, 480), fps=30)
        self.assertFalse(os.path.exists(self.path("testsrc.mp4")))


class CustomOptions(Case):
    def test_bounce_custom_size_rate_duration_without_audio(self):
        self.generate("-d", "2", "-s", "320x240", "-r", "15", "-a", "no", "-o", "b.mp4")
        self.assertVideo(self.path("b.mp4"), duration=2, size=(320, 240), fps=15, audio=False)

    def test_testsrc_custom_options_with_audio(self):
        self.generate("-m", "testsrc", "-d", "3", "-s", "160x120", "-r", "25", "-a", "yes",
                      "-o", "t.mp4")
        self.assertVideo(self.path("t.mp4"), duration=3, size=(160, 120), fps=25)

    def test_testsrc_without_audio(self):
        self.generate("-m", "testsrc", "-d", "1", "-a", "no", "-o", "t.mp4")
        self.assertVideo(self.path("t.mp4"), duration=1, size=(320, 240), fps=10, audio=False)

    def test_decimal_duration_and_fractional_rate(self):
        self.generate("-m", "testsrc", "-d", "1.5", "-r", "30000/1001", "-o", "ntsc.mkv")
        self.assertVideo(self.path("ntsc.mkv"), duration=1.5, size=(320, 240), fps=30000 / 1001)

    def test_webm_gets_vp8_and_opus(self):
        self.generate("-d", "1", "-s", "320x240", "-o", "b.webm")
        self.assertVideo(self.path("b.webm"), duration=1, size=(320, 240), fps=30, codec="vp8",
                         acodec="opus")

    def test_output_in_another_directory(self):
        os.mkdir(self.path("sub"))
        self.generate("-m", "testsrc", "-d", "1", "-o", "sub/x.mov")
        self.assertVideo(self.path("sub/x.mov"), duration=1, size=(320, 240), fps=10)
        self.assertEqual(sorted(os.listdir(self.path("sub"))), ["x.mov"], "no temporary files left")
        mode = os.stat(self.path("sub/x.mov")).st_mode & 0o777
        self.assertEqual(mode & 0o044, 0o044 & ~current_umask(), "usual permissions, not mktemp's 0600")


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


class Content(Case):
    def test_ball_bounces_inside_the_frame(self):
        self.generate("-d", "3", "-s", "320x240", "-r", "10", "-a", "no", "-o", "b.mp4")
        frames = decode_frames(self.path("b.mp4"), 320, 240)
        self.assertEqual(len(frames), 30)
        ball = cv2.imread(BALL, cv2.IMREAD_UNCHANGED)
        centres = []
        for f in frames:
            mask = f.max(axis=2) > 60
            ys, xs = np.nonzero(mask)
            self.assertGreater(len(xs), 0.5 * np.count_nonzero(ball[..., 3] > 128),
                               "the ball is visible in every frame")
            # Black elsewhere: the lit pixels form one ball-sized blob.
            self.assertLessEqual(xs.max() - xs.min(), ball.shape[1] + 2)
            self.assertLessEqual(ys.max() - ys.min(), ball.shape[0] + 2)
            centres.append((xs.mean(), ys.mean()))
        centres = np.array(centres)
        steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
        self.assertTrue((steps > 2).all(), "the ball moves every frame")
        self.assertTrue((steps < 40).all(), "and smoothly")
        # Over 3 s it reaches both sides horizontally (a bounce), staying inside the frame.
        self.assertLess(centres[:, 0].min(), 90)
        self.assertGreater(centres[:, 0].max(), 230)
        dx = np.sign(np.diff(centres[:, 0]))
        self.assertTrue((dx > 0).any() and (dx < 0).any(), "the ball changes direction")

    def test_custom_image_is_used(self):
        img = np.zeros((20, 20, 4), np.uint8)
        cv2.circle(img, (10, 10), 9, (0, 255, 0, 255), -1)  # green, transparent corners
        cv2.imwrite(self.path("green.png"), img)
        self.generate("-d", "1", "-s", "160x120", "-r", "5", "-a", "no", "-i", "green.png",
                      "-o", "g.mp4")
        frames = decode_frames(self.path("g.mp4"), 160, 120)
        for f in frames:
            lit = f.max(axis=2) > 60
            self.assertGreater(np.count_nonzero(lit), 150)
            b, g, r = (f[lit].mean(axis=0))
            self.assertGreater(g, 2 * max(b, r), "the custom green image is drawn, not the ball")
            corners = f[lit].shape[0]
            self.assertLess(corners, 400, "transparent corners stay black")

    def test_testsrc_pattern_moves_and_counts_seconds(self):
        self.generate("-m", "testsrc", "-d", "2", "-a", "no", "-o", "t.mp4")
        frames = decode_frames(self.path("t.mp4"), 320, 240).astype(np.int16)
        self.assertEqual(len(frames), 20)
        self.assertGreater(frames[0].std(), 40, "colourful, not black")
        diffs = [np.abs(frames[i + 1] - frames[i]).max(axis=2) for i in range(19)]
        self.assertTrue(all(d.max() > 20 for d in diffs), "every frame differs from the last")
        # The seconds counter changes between frame 9 and 10, and only there.
        changed = [int(np.count_nonzero(d > 80)) for d in diffs]
        self.assertGreater(changed[9], 100, changed)
        self.assertEqual(max(changed[:9] + changed[10:]), 0, changed)


class Overwrite(Case):
    def test_existing_output_is_not_touched_without_F(self):
        target = self.path("bounce.mp4")
        with open(target, "wb") as f:
            f.write(b"precious")
        os.utime(target, (1_000_000, 1_000_000))
        r = run(["-d", "1"], self.dir)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("already exists", r.stderr)
        self.assertIn("-F", r.stderr)
        with open(target, "rb") as f:
            self.assertEqual(f.read(), b"precious")
        self.assertEqual(os.stat(target).st_mtime, 1_000_000)
        self.assertEqual(os.listdir(self.dir), ["bounce.mp4"])

    def test_F_overwrites(self):
        target = self.path("t.mp4")
        with open(target, "wb") as f:
            f.write(b"old")
        self.generate("-m", "testsrc", "-d", "1", "-o", "t.mp4", "-F")
        self.assertVideo(target, duration=1, size=(320, 240), fps=10)
        self.assertEqual(os.listdir(self.dir), ["t.mp4"], "no temporary files left")

    def test_F_with_a_bad_option_keeps_the_old_file(self):
        target = self.path("t.mp4")
        with open(target, "wb") as f:
            f.write(b"old")
        r = run(["-F", "-o", "t.mp4", "-s", "100"], self.dir)
        self.assertEqual(r.returncode, 2)
        with open(target, "rb") as f:
            self.assertEqual(f.read(), b"old")


class BadOptions(Case):
    def expect_error(self, args, reason, code=2):
        r = run(args, self.dir, timeout=30)
        self.assertEqual(r.returncode, code, f"{args}: exit {r.returncode}, stderr {r.stderr!r}")
        self.assertIn("error:", r.stderr)
        self.assertIn(reason, r.stderr, f"{args}: the message names the reason")
        self.assertEqual(r.stdout, "")
        leftovers = [n for n in os.listdir(self.dir) if n.endswith((".mp4", ".webm")) or n.startswith(".")]
        self.assertEqual(leftovers, [], f"{args}: nothing written")

    def test_help(self):
        r = run(["-h"], self.dir)
        self.assertEqual(r.returncode, 0)
        for opt in ("-m MODE", "-d SECONDS", "-s WxH", "-r FPS", "-o FILE", "-i IMAGE",
                    "-a yes|no", "-F", "-h", "bounce", "testsrc", "32 kbps"):
            self.assertIn(opt, r.stdout)
        self.assertEqual(os.listdir(self.dir), [])

    def test_unknown_option(self):
        self.expect_error(["-x"], "unknown option -x")

    def test_missing_values(self):
        for opt in ("-m", "-d", "-s", "-r", "-o", "-i", "-a"):
            with self.subTest(opt=opt):
                self.expect_error([opt], f"option {opt} needs a value")

    def test_positional_argument(self):
        self.expect_error(["out.mp4"], "unexpected argument 'out.mp4'")

    def test_bad_mode(self):
        self.expect_error(["-m", "smpte"], "unknown mode 'smpte'")

    def test_bad_durations(self):
        for value in ("0", "-3", "abc", "1e3", "", "0.0"):
            with self.subTest(value=value):
                self.expect_error(["-d", value], "duration for -d")

    def test_bad_sizes(self):
        for value in ("640", "640x", "x480", "axb", "321x240", "320x241", "8x8", "10000x480"):
            with self.subTest(value=value):
                self.expect_error(["-s", value], "size for -s")

    def test_bad_rates(self):
        for value in ("0", "abc", "-5", "0/1", "30/0", "1000"):
            with self.subTest(value=value):
                self.expect_error(["-r", value], "frame rate for -r")

    def test_bad_audio_value(self):
        self.expect_error(["-a", "maybe"], "value for -a must be yes or no")

    def test_bad_outputs(self):
        self.expect_error(["-o", "video.avi"], "needs one of the extensions")
        self.expect_error(["-o", "noextension"], "needs one of the extensions")
        self.expect_error(["-o", ""], "must not be empty")
        self.expect_error(["-o", "missing/dir/v.mp4"], "does not exist", code=1)

    def test_missing_image(self):
        self.expect_error(["-i", "nope.png"], "image 'nope.png' for -i not found")

    def test_image_that_is_not_an_image(self):
        with open(self.path("junk.png"), "w") as f:
            f.write("not a png\n")
        self.expect_error(["-i", "junk.png"], "not an image ffmpeg can read")
        good = open(BALL, "rb").read()
        with open(self.path("junk.png"), "wb") as f:
            f.write(good[:40])  # a PNG cut short after its header
        self.expect_error(["-i", "junk.png"], "not an image ffmpeg can read")
        os.remove(self.path("junk.png"))

    def test_image_larger_than_frame(self):
        self.expect_error(["-s", "32x32", "-i", BALL], "must be smaller than the frame")


class Ball(unittest.TestCase):
    def test_committed_png_is_what_the_script_draws(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "ball.png")
            subprocess.run([sys.executable, os.path.join(ROOT, "data", "make_ball.py"),
                            "--output", out], check=True, capture_output=True)
            made = cv2.imread(out, cv2.IMREAD_UNCHANGED)
        committed = cv2.imread(BALL, cv2.IMREAD_UNCHANGED)
        self.assertIsNotNone(committed, "data/ball.png is readable")
        np.testing.assert_array_equal(made, committed)

    def test_png_is_a_centred_ball_on_transparency(self):
        img = cv2.imread(BALL, cv2.IMREAD_UNCHANGED)
        self.assertEqual(img.shape, (64, 64, 4), "square RGBA")
        alpha = img[..., 3].astype(float)
        for y, x in ((0, 0), (0, 63), (63, 0), (63, 63), (5, 5)):
            self.assertEqual(alpha[y, x], 0, "transparent outside the ball")
        self.assertEqual(alpha[32, 32], 255, "opaque inside")
        # Anti-aliased rim: partial alpha exists; the disc is centred.
        self.assertGreater(np.count_nonzero((alpha > 0) & (alpha < 255)), 50)
        ys, xs = np.mgrid[0:64, 0:64]
        cx = (alpha * (xs + 0.5)).sum() / alpha.sum()
        cy = (alpha * (ys + 0.5)).sum() / alpha.sum()
        self.assertAlmostEqual(cx, 32, delta=0.05)
        self.assertAlmostEqual(cy, 32, delta=0.05)
        area = alpha.sum() / 255
        self.assertAlmostEqual(area, np.pi * 31 ** 2, delta=15)
        # Shaded: brighter towards the upper-left light than at the lower right.
        grey = img[..., :3].astype(float).mean(axis=2)
        self.assertGreater(grey[22, 22], grey[44, 44] + 40)

    def test_script_rejects_bad_arguments(self):
        r = subprocess.run([sys.executable, os.path.join(ROOT, "data", "make_ball.py"),
                            "--color", "300,0,0", "--output", "/nonexistent/x.png"],
                           capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("0-255", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
