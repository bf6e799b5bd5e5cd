# SPDX-License-Identifier: LGPL-2.1-or-later
"""balldetect's OpenCV code is a module loaded on demand (gst/ball/detectmodule.h): a pipeline
without balldetect, such as ball-sender, does not map OpenCV; one with balldetect does; and a
plugin directory without the module gives balldetect a clear error instead of a crash."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

PLUGIN_DIR = os.environ["GST_PLUGIN_PATH"].split(":")[0]


def mapped_libs_while_running(desc):
    """Starts gst-launch-1.0 with DESC, waits until it is playing, and returns its mapped files."""
    p = subprocess.Popen(["gst-launch-1.0"] + desc.split(), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            if "Setting pipeline to PLAYING" in line:
                time.sleep(1.0)
                with open(f"/proc/{p.pid}/maps") as f:
                    return f.read()
        raise AssertionError(f"'{desc}' did not start")
    finally:
        p.kill()
        p.wait()


def main():
    without = mapped_libs_while_running(
        "ballsrc mark=true ! video/x-raw,width=320,height=240,framerate=30/1 ! fakesink")
    assert "libgstpointcast.so" in without, "the plugin was not loaded"
    assert "libopencv" not in without, "a pipeline without balldetect mapped OpenCV"

    with_detect = mapped_libs_while_running(
        "ballsrc ! video/x-raw,width=320,height=240,framerate=30/1 ! balldetect ! fakesink")
    assert "libpcballdetect.so.0" in with_detect and "libopencv_core" in with_detect, \
        "balldetect did not load its OpenCV module"

    # The plugin alone, without its module: balldetect fails to start and says why.
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.join(PLUGIN_DIR, "libgstpointcast.so"), tmp)
        env = dict(os.environ, GST_PLUGIN_PATH=tmp, GST_REGISTRY=os.path.join(tmp, "reg.bin"))
        r = subprocess.run(["gst-launch-1.0", "ballsrc", "num-buffers=3", "!", "balldetect", "!",
                            "fakesink"], env=env, capture_output=True, text=True, timeout=60)
        out = r.stdout + r.stderr
        assert r.returncode != 0, out
        assert "cannot load its OpenCV module" in out and "libpcballdetect.so.0" in out, out
    print("ok: OpenCV is loaded only by pipelines that detect")
    return 0


if __name__ == "__main__":
    sys.exit(main())
