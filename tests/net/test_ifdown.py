#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The interface of an established peer connection goes away (Wi-Fi or VPN down): rtcpeer finds
the dead path and makes a new connection over the interface that is left.

In a private network namespace (root; skipped otherwise): signaling on loopback, ICE only on
veth interfaces (libnice skips loopback when there are others). A stream flows tx -> rx over d0;
d1 comes up, d0 is deleted mid-stream.
- points: the stream must go on within BOUND_S, and the receiver must get every message sent,
  once each, in order, byte-identical: tx sends what the dead connection had not had
  acknowledged again on the new one, and rx, the same process, skips those it had received.
- points_eos: the same, with the sender at its end of stream while the path is dead.
- video: a video-only session (no data channel: nothing but RTP and RTCP on the path); the
  viewer's `rtc. ! ...` links the first video pad only, and frames must come out of it again
  within VIDEO_BOUND_S and keep coming, later frames than before.

- browser, browser_firefox: video from rtcpeer to the viewer page in headless Chromium or
  Firefox ESR (skipped without node, the browser and its driver), which must take rtcpeer's
  rebuilt connection as a new one.

- video_answerer: the same with a role=answerer viewer linking `rtc.video_0`.

Usage: test_ifdown.py [points|points_eos|video|video_answerer|browser|browser_firefox]   (default: all, each in its own namespace)"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("POINTCAST_SOURCE_ROOT", os.path.join(HERE, "../.."))
sys.path.insert(0, os.path.join(SRC, "tests", "rtc"))
sys.path.insert(0, os.path.join(SRC, "tests", "janus"))
sys.path.insert(0, os.path.join(SRC, "deploy", "janus"))
from test_e2e import Daemon, Gst, resend_report, wait_count, written  # noqa: E402
from test_janus import points_pair  # noqa: E402

N = 400        # 10 s at 40 Hz
BOUND_S = 8.0  # detection 3-3.8 s (rtc/pathwatch.cpp), then ICE + DTLS + SCTP on a loaded host


def sh(*args):
    subprocess.run(list(args), check=True)


def iface(name, addr):
    """An interface with carrier (a veth pair; this kernel has no dummy driver)."""
    sh("ip", "link", "add", name, "type", "veth", "peer", "name", name + "p")
    sh("ip", "addr", "add", addr, "dev", name)
    sh("ip", "link", "set", name + "p", "up")
    sh("ip", "link", "set", name, "up")


def messages(d):
    return [open(os.path.join(d, f), "rb").read() for f in written(d)]


def namespace_setup():
    sh("ip", "link", "set", "lo", "up")
    # IPv4 only: link-local IPv6 would give every dummy a second candidate.
    sh("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
    sh("sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1")
    iface("d0", "10.77.0.1/24")


def case_points(work, n=N):
    namespace_setup()
    os.makedirs(os.path.join(work, "a"))
    daemon = Daemon(os.path.join(work, "a")).start()
    rx = tx = None
    try:
        rx, tx, rdir, sdir = points_pair(work, daemon.ws, daemon.ws, "ifdown", n, {})
        # Past the start (the messages held until the channel opened arrive in a burst): in a
        # steady stream, what is counted beyond the lost ones is the last 0.5 s.
        wait_count(rdir, 120, 30, "before the interface change")
        iface("d1", "10.77.1.1/24")
        time.sleep(0.3)
        sh("ip", "link", "del", "d0")
        t0 = time.monotonic()
        at_del = len(os.listdir(rdir))
        resumed = None
        while time.monotonic() - t0 < 30:
            if len(os.listdir(rdir)) > at_del + 1:
                resumed = time.monotonic() - t0
                break
            time.sleep(0.05)
        assert resumed is not None, f"no message in 30 s after deleting d0 (rx had {at_del})"
        rc = tx.wait(90)
        time.sleep(2)
        sent, got = messages(sdir), messages(rdir)
        text = tx.text()
        lost, again = resend_report(text)
        skipped = [int(n) for n in re.findall(r"(\d+) of the messages it sends again arrived "
                                              r"before and are skipped", rx.text())]
        have = set(got)
        missing = [i for i, m in enumerate(sent) if m not in have]
        dups = len(got) - len(have)
        print(f"d0 deleted at {at_del} messages; stream again after {resumed:.2f} s; "
              f"sent {len(sent)}, delivered {len(got)} ({len(missing)} missing, {dups} "
              f"duplicates); tx sent again: {again} (count, from); rx skipped {skipped}; "
              f"reported possibly lost {sum(lost)} ({len(lost)} warning(s)); tx rc {rc}")
        assert len(sent) == n, f"tx sent {len(sent)} of {n}"
        # Either side may notice first (at its EOS tx names a connection the remote replaced in
        # no warning: its drain counts what it sent).
        assert "Lost the connection to peer" in text + rx.text(), (
            "nobody noticed the dead path (the test did not test a rebuild)")
        assert again, f"tx sent nothing again on the new connection:\n{text[-3000:]}"
        assert resumed <= BOUND_S, f"the stream resumed after {resumed:.2f} s (bound {BOUND_S} s)"
        assert not missing, f"{len(missing)} messages missing, indices {missing[:3]}..{missing[-3:]}"
        assert not dups, f"{dups} messages delivered twice"
        assert got == sent, "a delivered message differs or is out of order"
        assert sum(lost) == 0, f"tx reported {sum(lost)} messages as possibly lost"
        assert rc == 0, f"tx exited {rc}:\n{text[-3000:]}"
    finally:
        for p in (rx, tx):
            if p:
                p.stop()
        daemon.kill()


def case_points_eos(work):
    """The same with the sender's end of stream 0.4 s after d0 went, before the dead path is
    noticed: its drain waits for the new connection and sends what the old one left there."""
    case_points(work, n=150)


def frames(d):
    """The frame numbers balldetect read from the mark, one per file (frames without a ball
    detected are skipped)."""
    import numpy as np
    out = []
    for f in written(d):
        try:
            a = np.load(os.path.join(d, f))
        except (ValueError, OSError):
            continue  # being written
        if a.shape[0]:
            out.append(int(a[0, 0]))
    return out


VIDEO_BOUND_S = 8.0  # detection 3-3.8 s, then ICE + DTLS + a keyframe on a loaded host
def resumed_after(count, t0, within=30):
    """Seconds from T0 until frames came again (COUNT() the frames so far): the frames in flight
    (the jitterbuffer's 200 ms) come out first, then a stall, then the first of 3 new ones after
    1 s without any. (None, ...) if not within WITHIN s; also the count at the stall."""
    stalled_at = None
    last, changed = count(), t0
    while time.monotonic() - t0 < within:
        now, n = time.monotonic(), count()
        if n != last:
            last, changed = n, now
        if stalled_at is None and now - changed >= 1.0:
            stalled_at = n
        if stalled_at is not None and n >= stalled_at + 3:
            return now - t0, stalled_at
        time.sleep(0.05)
    return None, stalled_at


VIDEO_AFTER_S = 3.0  # frames must keep coming this long after they resumed
VIDEO_MIN_FPS = 10   # of the 30 sent, in that time


def case_video(work, viewer="", link="rtc."):
    """Video only, rtcpeer to rtcpeer: 320x240 at 30 fps with the frame mark; the viewer decodes,
    reads the mark (balldetect) and writes one file per frame from the one pad it linked."""
    namespace_setup()
    os.makedirs(os.path.join(work, "a"))
    daemon = Daemon(os.path.join(work, "a")).start()
    rx = tx = None
    try:
        rdir = os.path.join(work, "rx")
        os.makedirs(rdir)
        # `rtc. ! ...`: gst-launch links the first src pad rtcpeer adds, and only that one. The
        # sink syncs and drops frames 20 ms late, as a video sink does: frames of the new
        # connection with timestamps off the running time would be dropped or held.
        rx = Gst(work, "rx", f"rtcpeer name=rtc signaling={daemon.ws} room=vid peer-id=rx-vid "
                 f"{viewer} {link} ! queue ! videoconvert ! balldetect ! npypack ! multifilesink sync=true "
                 f"max-lateness=20000000 location={rdir}/%06d.npy", {})
        tx = Gst(work, "tx", "ballsrc mark=true ! video/x-raw,format=I420,width=320,height=240,"
                 "framerate=30/1 ! queue ! rtc.video_0 rtcpeer name=rtc "
                 f"signaling={daemon.ws} room=vid peer-id=tx-vid wait-for-peers=1", {})
        wait_count(rdir, 60, 30, "frames before the interface change")
        iface("d1", "10.77.1.1/24")
        time.sleep(0.3)
        before = frames(rdir)
        sh("ip", "link", "del", "d0")
        t0 = time.monotonic()
        at_del = len(os.listdir(rdir))
        resumed, stalled_at = resumed_after(lambda: len(os.listdir(rdir)), t0)
        assert resumed is not None, (
            f"no frame in 30 s after deleting d0 (rx had {at_del}, stalled at {stalled_at}):\n"
            f"{rx.text()[-3000:]}")
        at_resume = len(os.listdir(rdir))
        time.sleep(VIDEO_AFTER_S)
        after = frames(rdir)[len(before):]
        more = len(os.listdir(rdir)) - at_resume
        lost = [g for g in (tx, rx) if "Lost the connection to peer" in g.text()]
        print(f"d0 deleted at {at_del} frames (last frame number {before[-1]}); frames again after "
              f"{resumed:.2f} s; {more} frames in the {VIDEO_AFTER_S:.0f} s after; first frame "
              f"number after: {after[0] if after else None}; rebuilt by "
              f"{', '.join(g.name for g in lost) or 'nobody'}")
        for g in lost:  # why each side rebuilt
            why = [l for l in g.text().splitlines() if "after sending" in l and "gone" in l]
            print(f"{g.name}: {why[0] if why else '?'}")
        assert lost, "no side noticed the dead path (the test did not test a rebuild)"
        assert resumed <= VIDEO_BOUND_S, f"frames resumed after {resumed:.2f} s (bound {VIDEO_BOUND_S} s)"
        assert more >= VIDEO_MIN_FPS * VIDEO_AFTER_S, (
            f"{more} frames in {VIDEO_AFTER_S} s after resuming:\n{rx.text()[-3000:]}")
        assert after and min(after) > before[-1] - 30 and max(after) > before[-1] + 30, (
            f"frames after the change are not the stream's later frames: {after[:5]}...")
        assert rx.proc.poll() is None and tx.proc.poll() is None, "a pipeline ended"
    finally:
        for p in (rx, tx):
            if p:
                p.stop()
        daemon.kill()


BROWSERS = {  # as tests/web/browsers.mjs drives them
    "chromium": ("POINTCAST_CHROMIUM", "/usr/bin/chromium", "playwright-core"),
    "firefox": ("POINTCAST_FIREFOX", "/usr/bin/firefox-esr", "puppeteer-core"),
}


def browser_missing(name):
    """Why the browser case cannot run here, or ''."""
    env, default, driver = BROWSERS[name]
    if not shutil.which("node"):
        return "no node"
    if not os.path.exists(os.environ.get(env, default)):
        return f"no {name}"
    if not os.path.isdir(os.path.join(SRC, "tests", "web", "node_modules", driver)):
        return f"no {driver} (./pointcast setup installs it)"
    return ""


class Page:
    """The viewer page in a headless browser (tests/web/watch_page.mjs): its stats, every 100 ms."""

    def __init__(self, work, url, browser):
        self.lines, self.end = [], None
        self.log = open(os.path.join(work, "page.log"), "w")
        self.proc = subprocess.Popen(
            ["node", os.path.join(SRC, "tests", "web", "watch_page.mjs"), url, work, browser],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            j = json.loads(line)
            if "log" in j:
                self.end = j
            else:
                self.lines.append(j)

    def last(self):
        return self.lines[-1] if self.lines else {"videoFrames": 0, "peers": []}

    def stop(self):
        """Ends the browser; returns the page's log text."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.reader.join(5)
        return (self.end or {}).get("log", "")


def case_browser(work, browser="chromium"):
    """rtcpeer sending video to the viewer page in Chromium: rtcpeer's rebuilt connection is a
    new offer from the same peer id (the same certificate, new ICE credentials), which the page
    must take as a new connection; its video element plays again within VIDEO_BOUND_S."""
    missing = browser_missing(browser)
    if missing:
        print(f"skip: {missing}")
        return 77
    namespace_setup()
    if browser == "firefox":
        sh("ip", "route", "add", "default", "dev", "d0")  # Firefox gathers only with one
    os.makedirs(os.path.join(work, "a"))
    daemon = Daemon(os.path.join(work, "a"),
                    args=["--web-root", os.path.join(SRC, "signaling", "web")]).start()
    tx = page = None
    try:
        page = Page(work, f"http://127.0.0.1:{daemon.port}/?room=vidb&connect=1", browser)
        tx = Gst(work, "tx", "ballsrc mark=true ! video/x-raw,format=I420,width=320,height=240,"
                 "framerate=30/1 ! queue ! rtc.video_0 rtcpeer name=rtc "
                 f"signaling={daemon.ws} room=vidb peer-id=tx-vidb wait-for-peers=1", {})
        deadline = time.monotonic() + 45
        while page.last()["videoFrames"] < 60:
            assert time.monotonic() < deadline, (
                f"the page played {page.last()} before the change:\n{tx.text()[-2000:]}")
            time.sleep(0.1)
        iface("d1", "10.77.1.1/24")
        if browser == "firefox":  # the default route moves over, as when Wi-Fi goes down
            sh("ip", "route", "add", "default", "dev", "d1", "metric", "100")
        time.sleep(0.3)
        sh("ip", "link", "del", "d0")
        t0 = time.monotonic()
        resumed, _ = resumed_after(lambda: page.last()["videoFrames"], t0)
        at_resume = page.last()["videoFrames"]
        if resumed is not None:
            time.sleep(VIDEO_AFTER_S)
        more = page.last()["videoFrames"] - at_resume
        log = page.stop()
        page_log = os.path.join(work, "page-log.txt")
        open(page_log, "w").write(log)
        rebuilt = "Lost the connection to peer" in tx.text()
        print(f"frames again after {resumed if resumed is None else round(resumed, 2)} s; {more} "
              f"frames in the {VIDEO_AFTER_S:.0f} s after; rtcpeer rebuilt: {rebuilt}; "
              f"page: {', '.join(l for l in log.splitlines() if 'tx-vidb' in l and ('closed' in l or 'offer' in l))}")
        assert rebuilt, "rtcpeer did not notice the dead path (the test did not test a rebuild)"
        assert resumed is not None, f"no video in the page for 30 s after deleting d0:\n{log[-3000:]}"
        assert resumed <= VIDEO_BOUND_S, f"video resumed after {resumed:.2f} s (bound {VIDEO_BOUND_S} s)"
        assert more >= VIDEO_MIN_FPS * VIDEO_AFTER_S, f"{more} frames in {VIDEO_AFTER_S} s after resuming"
        assert "session with tx-vidb closed (replaced)" in log, log[-3000:]
    finally:
        if page:
            page.stop()
        if tx:
            tx.stop()
        daemon.kill()


def case_video_answerer(work):
    """The same with a viewer that only answers (it waits for the sender's new offer) and links
    its pad by name, as pipelines/ball-tracker.pipeline does."""
    case_video(work, viewer="role=answerer", link="rtc.video_0")


def case_browser_firefox(work):
    """The same towards the page in Firefox ESR."""
    return case_browser(work, "firefox")


CASES = {"points": case_points, "points_eos": case_points_eos, "video": case_video, "video_answerer": case_video_answerer,
         "browser": case_browser, "browser_firefox": case_browser_firefox}


def main():
    names = sys.argv[1:] or list(CASES)
    if os.environ.get("POINTCAST_IFDOWN_NS") != "1":
        if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
            print("skip: needs root, unshare and ip (a private network namespace)")
            return 77
        env = dict(os.environ, POINTCAST_IFDOWN_NS="1")
        rcs = [subprocess.run(["unshare", "--net", sys.executable, os.path.abspath(__file__),
                               name], env=env).returncode for name in names]  # a namespace each
        failed = [rc for rc in rcs if rc not in (0, 77)]
        return 1 if failed else 77 if all(rc == 77 for rc in rcs) else 0
    name, = names
    work = tempfile.mkdtemp(prefix=f"net-ifdown-{name}-")
    t0 = time.monotonic()
    try:
        if CASES[name](work) == 77:
            return 77
        print(f"ok ifdown {name} ({time.monotonic() - t0:.1f} s)")
        shutil.rmtree(work, ignore_errors=True)
        return 0
    except Exception:
        traceback.print_exc()
        for log in ("tx.log", "rx.log", "page.log", "page-log.txt"):
            path = os.path.join(work, log)
            if os.path.exists(path):
                tail = open(path, errors="replace").read()[-3000:]
                print(f"--- {log} (last 3000 chars)\n{tail}")
        print("logs kept in", work)
        return 1


if __name__ == "__main__":
    sys.exit(main())
