#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""`./pointcast launch NAME --set [ELEMENT.]KEY=VALUE --dry-run`: how the media senders are
configured without editing their files (camera size/rate/device, the file to send)."""
import os
import subprocess
import unittest

ROOT = os.environ.get("POINTCAST_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("POINTCAST_BUILD_ROOT") or os.path.join(ROOT, "build")


def launch(*args):
    env = dict(os.environ, POINTCAST_BUILD=BUILD)
    return subprocess.run([os.path.join(ROOT, "pointcast"), "launch", *args, "--dry-run"],
                          capture_output=True, text=True, env=env, timeout=30)


def words(*args):
    r = launch(*args)
    if r.returncode != 0:
        raise AssertionError(f"launch {args} failed: {r.stderr}")
    line = r.stdout.strip()
    assert line.startswith("gst-launch-1.0 -e "), line
    return line.split()[2:]


def file_words(name):
    with open(os.path.join(ROOT, "pipelines", name + ".pipeline")) as f:
        return " ".join(l for l in f.read().splitlines() if not l.lstrip().startswith("#")).split()


class Launch(unittest.TestCase):
    def test_without_set_the_file_is_used_as_written(self):
        for name in ("camera-sender", "multicam-sender", "file-sender", "testsrc-sender"):
            with self.subTest(name=name):
                self.assertEqual(words(name), file_words(name))

    def test_camera_size_and_rate(self):
        default = " ".join(words("camera-sender"))
        self.assertIn("device=/dev/video0", default)
        self.assertEqual(default.count("width=640"), 2, "raw and MJPEG caps")
        w = " ".join(words("camera-sender", "--set", "width=1280", "--set", "height=720",
                           "--set", "framerate=15/1", "--set", "device=/dev/video4"))
        self.assertIn("video/x-raw,width=1280,height=720,framerate=15/1;"
                      "image/jpeg,width=1280,height=720,framerate=15/1", w)
        self.assertIn("device=/dev/video4", w)
        self.assertNotIn("640", w)
        self.assertNotIn("30/1", w)

    def test_element_scoped_set_changes_only_that_element(self):
        w = words("multicam-sender", "--set", "cam1.device=/dev/video9")
        self.assertIn("device=/dev/video0", w)
        self.assertIn("device=/dev/video9", w)
        self.assertNotIn("device=/dev/video2", w)
        both = words("multicam-sender", "--set", "device=/dev/video5")
        self.assertEqual(both.count("device=/dev/video5"), 2)

    def test_file_location_with_shell_characters_is_kept_verbatim(self):
        w = words("file-sender", "--set", "location=/tmp/a&b;c,$HOME*.mp4")
        self.assertIn("location=/tmp/a&b;c,$HOME*.mp4", w)

    def test_unknown_key_is_an_error(self):
        r = launch("camera-sender", "--set", "widht=1280")
        self.assertEqual(r.returncode, 1)
        self.assertIn("nothing called widht", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_unknown_element_is_an_error(self):
        r = launch("multicam-sender", "--set", "cam7.device=/dev/video1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no element named cam7", r.stderr)

    def test_malformed_set_is_an_error(self):
        for bad in ("width", "=5", "width=", "a b=1"):
            with self.subTest(bad=bad):
                r = launch("camera-sender", "--set", bad)
                self.assertEqual(r.returncode, 1)
                self.assertIn("--set needs KEY=VALUE", r.stderr)

    def test_set_values_cannot_add_elements(self):
        # Each value is refused unless it stays one literal property value for gst-launch-1.0.
        for bad in ("location=x!fakesink", 'location="a', "location=a'b", "location=a\\b",
                    "location=a(b)", "location=a{b}", "location=a[b]", "location=a<b>",
                    "location=a\x01b", "location=a\x1bb"):
            with self.subTest(bad=bad):
                r = launch("file-sender", "--set", bad)
                self.assertEqual(r.returncode, 1)
                self.assertIn("the value may not contain", r.stderr)
                self.assertEqual(r.stdout, "")
        for bad in ("location=a b", "location=x ! fakesink name=evil", "location=a\tb"):
            with self.subTest(bad=bad):
                r = launch("file-sender", "--set", bad)
                self.assertEqual(r.returncode, 1)
                self.assertIn("--set needs KEY=VALUE", r.stderr)

    def test_set_cannot_rename_elements(self):
        for bad in ("name=evil", "cam0.name=rtc"):
            with self.subTest(bad=bad):
                r = launch("multicam-sender", "--set", bad)
                self.assertEqual(r.returncode, 1)
                self.assertIn("cannot rename elements", r.stderr)

    def test_caps_field_value_cannot_add_fields(self):
        for bad in ("width=1280,format=RGB", "framerate=15/1;video/x-bayer"):
            with self.subTest(bad=bad):
                r = launch("camera-sender", "--set", bad)
                self.assertEqual(r.returncode, 1)
                self.assertIn("a caps field value cannot contain , or ;", r.stderr)

    def test_accepted_value_is_one_literal_property(self):
        # What gst-launch-1.0 builds from the words: the same elements, and the value verbatim.
        import gi
        gi.require_version("Gst", "1.0")
        from gi.repository import Gst
        Gst.init(None)
        value = "/tmp/a&b;c,$HOME*=x.mp4"
        w = words("file-sender", "--set", "location=" + value)
        default = words("file-sender")
        # rtcpeer need not be loadable here: the description up to decodebin is what matters
        head = w[:w.index("!")]
        self.assertEqual(head, ["filesrc", "location=" + value])
        pipe = Gst.parse_launchv(head)
        self.assertEqual(pipe.get_property("location"), value)
        self.assertEqual(len(w), len(default))

    def test_name_must_be_a_file_in_pipelines(self):
        for bad in ("../README", "/etc/passwd", "../pipelines/file-sender", ".hidden",
                    "pipelines/file-sender", "file-sender/..", "a b", ".."):
            with self.subTest(bad=bad):
                r = launch(bad)
                self.assertEqual(r.returncode, 1)
                self.assertIn("no pipeline", r.stderr)
                self.assertEqual(r.stdout, "")

    def test_unknown_pipeline(self):
        r = launch("no-such-sender")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no pipeline no-such-sender", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
