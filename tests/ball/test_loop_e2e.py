# SPDX-License-Identifier: LGPL-2.1-or-later
"""End to end over rtcpeer: the signaling daemon, pipelines/ball-sender.pipeline and a tracker
(pipelines/ball-tracker.pipeline through the daemon, or --tracker aiortc: tests/ball/
aiortc_tracker.py over aiortc's tcp:// signaling). ballscore's final report is parsed and checked
against the targets with a margin for a loaded CI machine.

Usage: test_loop_e2e.py [--tracker rtcpeer|aiortc] [--seconds N]"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time

ROOT = os.environ.get("POINTCAST_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("POINTCAST_BUILD_ROOT", os.path.join(ROOT, "build"))
HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pipeline(name):
    with open(os.path.join(ROOT, "pipelines", name + ".pipeline")) as f:
        text = " ".join(line for line in f if not line.lstrip().startswith("#"))
    return text.split()


def wait_for(path, pattern, timeout, procs=()):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(path, errors="replace") as f:
            m = re.search(pattern, f.read(), re.M)
        if m:
            return m
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"{p.args[:3]} ended early with {p.returncode}")
        time.sleep(0.2)
    raise AssertionError(f"no {pattern!r} in {path} within {timeout} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracker", choices=["rtcpeer", "aiortc"], default="rtcpeer")
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    tmp = os.environ.get("TMPDIR", "/tmp")
    logs = {n: os.path.join(tmp, f"ball-e2e-{os.getpid()}-{n}.log") for n in ("daemon", "sender", "tracker")}
    env = dict(os.environ)
    procs = []
    try:
        if args.tracker == "rtcpeer":
            port = free_port()
            procs.append(subprocess.Popen([os.path.join(BUILD, "signaling", "pointcast-signaling"),
                                           "--host", "127.0.0.1", "--port", str(port)],
                                          stdout=open(logs["daemon"], "w"), stderr=subprocess.STDOUT))
            time.sleep(0.5)
            env.update(POINTCAST_SIGNALING=f"ws://127.0.0.1:{port}/ws", POINTCAST_ROOM=f"e2e-{os.getpid()}")
            tracker_cmd = ["gst-launch-1.0", "-e"] + pipeline("ball-tracker")
        else:
            port = free_port()
            env.update(POINTCAST_SIGNALING=f"tcp://127.0.0.1:{port}")
            tracker_cmd = ["/usr/bin/python3", os.path.join(HERE, "aiortc_tracker.py"), "--port", str(port)]
        sender_argv = pipeline("ball-sender")
        if args.tracker == "aiortc":
            # As in aiortc's TcpSocketSignaling, the offerer listens: the sender offers here.
            sender_argv = ["role=offerer" if a == "role=auto" else a for a in sender_argv]
        sender = subprocess.Popen(["gst-launch-1.0", "-e"] + sender_argv, env=env,
                                  stdout=open(logs["sender"], "w"), stderr=subprocess.STDOUT)
        procs.append(sender)
        time.sleep(1.0)
        procs.append(subprocess.Popen(tracker_cmd, env=env, stdout=open(logs["tracker"], "w"),
                                      stderr=subprocess.STDOUT))
        wait_for(logs["sender"], r"^ballscore: ", 60, procs)
        time.sleep(args.seconds)
        sender.send_signal(signal.SIGINT)
        wait_for(logs["sender"], r"^  latency ms:", 30)
        with open(logs["sender"]) as f:
            text = f.read()
        report = text[text.rindex("ballscore report"):]
        print(report)
        m = re.search(r"scored (\d+) \(([\d.]+)% of the (\d+) sent", report)
        scored, pct = int(m.group(1)), float(m.group(2))
        outliers = int(re.search(r"outliers > \d+ px (\d+)", report).group(1))
        mean, p50, p99, mx = map(float, re.search(
            r"error px: mean ([\d.]+), p50 ([\d.]+), p99 ([\d.]+), max ([\d.]+)", report).groups())
        lp50, lp99, _ = map(float, re.search(
            r"latency ms: p50 ([\d.]+), p99 ([\d.]+), max ([\d.]+)", report).groups())
        assert outliers == 0, f"{outliers} outliers (misread marks or false detections)"
        assert mean <= 0.3 and p99 <= 1.0, f"error mean {mean} p99 {p99} px"
        if args.tracker == "aiortc":
            # Interop: an aiortc tracker (the original system's kind) is scored; its speed is
            # Python's, so only accuracy and a steady stream are asserted.
            assert scored >= 3 * args.seconds, f"only {scored} frames scored"
            return 0
        # Targets (TARGETS.md: >= 99.9 % scored, p50 <= 15 ms, p99 <= 30 ms) with room for a
        # loaded CI machine (this test runs alone; with three busy loops beside it the demo gave
        # 100 %, 6.6 / 25 ms).
        assert scored >= 0.8 * 30 * args.seconds, f"only {scored} frames scored"
        assert pct >= 99.0, f"{pct}% of frames scored"
        assert lp50 <= 30 and lp99 <= 100, f"latency p50 {lp50} p99 {lp99} ms"
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
    for path in logs.values():
        if os.path.exists(path):
            os.remove(path)


if __name__ == "__main__":
    sys.exit(main())
