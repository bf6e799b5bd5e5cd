#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Several viewers of one rtcpeer sender on links of different rates (issue 13: the shared
encoder follows the slowest viewer above the floor; a viewer below it gets fewer frames, VP8
temporal layers, instead of holding the others back). Topology netlab star: the sender in s,
each viewer (tests/net/viewer.py) behind its own pcnet-router.

  fast_slow  noisy 640x480@30 video to a viewer on 4 Mbit/s alone, then with a second viewer on
             250 kbit/s (under the 500 kbit/s floor): the fast one keeps its frame rate and
             most of the bitrate it had alone, the slow one gets a quarter to a half of the
             frames, on time and without a freeze

Usage: test_viewers.py CASE...
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loops  # noqa: E402
import netlab  # noqa: E402

check = netlab.check
CAPS = "video/x-raw,format=I420,width=640,height=480,framerate=30/1"
FPS = 30


def sender_cmd(noise=0.12, max_kbps=1500):
    return ["gst-launch-1.0", "-e", "ballsrc", "name=ball", "mark=true", "!", CAPS, "!",
            "comp.sink_0", "videotestsrc", "pattern=snow", "is-live=true", "!", CAPS, "!",
            "comp.sink_1", "compositor", "name=comp", f"sink_1::alpha={noise}", "!",
            CAPS.split(",framerate")[0], "!", "queue", "max-size-buffers=2", "leaky=downstream",
            "!", "rtc.video_0", "rtcpeer", "name=rtc", "peer-type=sender", "role=auto",
            # Within what the fast link carries: alone, its rate is then this, not a sawtooth
            # of its own congestion that two windows would catch at different points.
            f"video-bitrate={max_kbps}", f"video-bitrate-max={max_kbps}"]


class Viewer:
    def __init__(self, lab, net, i, room):
        v = net.viewers[i]
        self.lab, self.name, self.router = lab, f"viewer{i}", v.router
        env = {"POINTCAST_ROOM": room, "POINTCAST_PEER_ID": self.name,
               "POINTCAST_SIGNALING": f"ws://{v.s_addr}:{loops.SIGNALING_PORT}/ws"}
        self.proc = lab.popen(v.ns, ["/usr/bin/python3", os.path.join(os.path.dirname(
            os.path.abspath(__file__)), "viewer.py")], env=env,
            stdout=open(lab.logpath(self.name), "w"), stderr=open(lab.logpath(self.name + "-err"), "w"))

    def frames(self):
        out = []
        for line in self.lab.read_log(self.name).splitlines():
            parts = line.split()
            if len(parts) == 2:
                out.append((int(parts[0]), float(parts[1])))
        return out

    def wait_first(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            f = self.frames()
            if f:
                return f[0][1]
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise loops.NoConnection(f"{self.name}: no frame within {timeout} s:\n"
                                 + self.lab.read_log(self.name + "-err")[-2000:])

    def sent_bytes(self):
        return self.router.stats()["a2b"]["out_bytes"]


def window(frames, t0, t1):
    """What a viewer saw between monotonic times T0 and T1: frames per second, the longest gap
    between frames, the p99 of each frame's lateness against its best (the frame number says when
    ballsrc made it), and whether the frame numbers only went up (a misdecoded mark would not)."""
    got = [(n, t) for n, t in frames if t0 <= t <= t1]
    if len(got) < 2:
        return dict(fps=len(got) / (t1 - t0), gap=t1 - t0, late_p99=None, increasing=True, n=len(got))
    times = [t for _, t in got]
    gap = max(b - a for a, b in zip([t0] + times, times + [t1]))
    late = [t - n / FPS for n, t in frames]
    best = min(late)
    lateness = sorted(t - n / FPS - best for n, t in got)
    nums = [n for n, _ in got]
    return dict(fps=len(got) / (t1 - t0), gap=round(gap, 3), n=len(got),
                late_p99=round(1000 * lateness[min(len(lateness) - 1, int(0.99 * len(lateness)))]),
                increasing=all(b > a for a, b in zip(nums, nums[1:])))


def measure(viewers, seconds):
    t0, b0 = time.monotonic(), [v.sent_bytes() for v in viewers]
    time.sleep(seconds)
    t1, b1 = time.monotonic(), [v.sent_bytes() for v in viewers]
    return [dict(window(v.frames(), t0, t1), kbps=round((e - s) * 8 / (t1 - t0) / 1000))
            for v, s, e in zip(viewers, b0, b1)]


def case_fast_slow(lab):
    net = lab.star("rate=4M queue-ms=100", "rate=250 queue-ms=100")
    room = "viewers"
    loops.start_daemon(lab, net.s, net.viewers[0].s_addr)
    sender = lab.popen(net.s, sender_cmd(), log="sender",
                       env={"POINTCAST_ROOM": room, "POINTCAST_PEER_ID": "sender",
                            "POINTCAST_SIGNALING": f"ws://{net.viewers[0].s_addr}:"
                                                   f"{loops.SIGNALING_PORT}/ws",
                            "GST_DEBUG": "rtcpeer-cc:5"})
    fast = Viewer(lab, net, 0, room)
    fast.wait_first()
    time.sleep(3)  # the encoder comes up to the fast link
    alone = measure([fast], 6)[0]
    print(f"  fast alone: {alone}")
    slow = Viewer(lab, net, 1, room)
    slow.wait_first()
    time.sleep(4)  # the slow viewer's estimate comes down to its link
    both = measure([fast, slow], 8)
    print(f"  fast with slow: {both[0]}\n  slow: {both[1]}")
    sender.terminate()
    f, s = both
    # The fast viewer: every frame (room for a loaded machine), the bitrate it had alone.
    check(f["fps"] >= 0.85 * FPS, f"fast viewer {f['fps']:.1f} fps beside the slow one")
    # Measured 0.58-1.45x in 18 runs (held back to the slow one's it would be ~0.1x).
    check(f["kbps"] >= 0.5 * alone["kbps"],
          f"fast viewer {f['kbps']} kbit/s beside the slow one, {alone['kbps']} alone")
    check(f["gap"] <= 0.5, f"fast viewer's longest gap {f['gap']} s")
    # The slow one: fewer frames (a quarter: the base layer; a half: two layers), each decoded
    # (frame numbers read from the picture, in order), on time and without a freeze.
    check(FPS / 8 <= s["fps"] <= 0.6 * FPS, f"slow viewer {s['fps']:.1f} fps")
    check(s["increasing"], "slow viewer's frames in order, their marks read")
    check(s["kbps"] <= 260, f"slow viewer's link carried {s['kbps']} kbit/s")
    check(s["gap"] <= 1.0, f"slow viewer's longest gap {s['gap']} s")
    # Measured 257-370 ms (its 250 kbit/s carry RTCP and retransmissions beside ~120 kbit/s of
    # base layer; the jitterbuffer holds frames behind a repair); room for a loaded machine.
    check(s["late_p99"] is not None and s["late_p99"] <= 500,
          f"slow viewer's frames late by p99 {s['late_p99']} ms")


def main():
    return netlab.run_cases(globals(), sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
