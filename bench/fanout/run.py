#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fan-out: the sender's CPU with 1, 2, 4, 8 and 16 viewers, in one run, for
  - rtcpeer peer-to-peer through pointcast-signaling (one encoder, RTP fanned out per peer),
  - rtcpeer publishing into a Janus VideoRoom (one peer connection, Janus fans out),
  - the aiortc reference sender (one encoder per peer connection).
Video: 640x480 at 30 fps, 2 s of videotestsrc's moving ball made once and looped from memory by
both kinds of sender (multifilesrc + clocksync for rtcpeer: drawing the ball live would cost more
than rtcpeer's encoder), VP8 CBR at 500 kbit/s on both sides (aiortc's starting bitrate, which it keeps: rtcpeer
viewers send no REMB; rtcpeer's video-bitrate is set to match). The viewers are rtcpeers in one separate process (bench/fanout/viewers.py); a point
counts only if every viewer decodes frames during the window (its slowest fps is printed).
CPU = user+system time of the sender process over the window, in % of one core, measured once
every viewer has decoded frames for --settle seconds: the first seconds of a connection cost more
and would weigh with the number of viewers (libnice ticks its connectivity checks every 5 ms until
5 s after the last one, FEC runs at start, keyframes), which is not what a sender with N viewers
costs. --threads also prints where the sender's CPU went, by thread (names with digits folded:
queueN:src = the per-session send queues and webrtcbin's receive queues, nicesrcN:src = packets
received, rtpsession-rtcp = RTCP sent, the source's thread = encoding and payloading).

usage: run.py [--viewers 1,2,4,8,16] [--seconds S] [--settle S] [--threads]
              [--systems p2p,janus,aiortc] [--sender-props "name=value ..."]
              [--sender-plugin-path DIR] [--viewer-plugin-path DIR] [--pattern ball|snow|...]"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "../.."))
BUILD = os.environ.get("POINTCAST_BUILD_ROOT", os.path.join(SRC, "build"))
sys.path.insert(0, os.path.join(SRC, "deploy", "janus"))
import janusconf  # noqa: E402

W, H, FPS = 640, 480, 30
KBPS = 500
PY = "/usr/bin/python3"
TICK = os.sysconf("SC_CLK_TCK")
FAST_RTCP_BELOW = 5000  # bit/s: rtcprate's clean-link rate; above it a viewer's link shows trouble


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def thread_cpu(pid):
    """CPU seconds per thread class (digits in the thread's name folded to N)."""
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/comm") as f:
                name = re.sub(r"\d+", "N", f.read().strip())
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        out[(t, name)] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def by_class(before, after, seconds):
    shares = {}
    for key, cpu in after.items():
        shares[key[1]] = shares.get(key[1], 0) + cpu - before.get(key, 0)
    return {k: 100 * v / seconds for k, v in sorted(shares.items(), key=lambda kv: -kv[1])}


def stop(p):
    if p and p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def plugin_env(plugin_path):
    """The environment that loads another build's rtcpeer (A/B runs), or None: this one's."""
    if not plugin_path:
        return None
    reg = "fanout-%08x.bin" % zlib.crc32(os.path.abspath(plugin_path).encode())
    return dict(os.environ, GST_PLUGIN_PATH=plugin_path,
                GST_REGISTRY=os.path.join(tempfile.gettempdir(), reg))


def gst_sender(signaling, room, frames, log, props="", plugin_path=None):
    env = plugin_env(plugin_path)  # the sender's only; the viewers have their own
    desc = (f"multifilesrc location={frames} loop=true ! rawvideoparse format=i420 width={W} "
            f"height={H} framerate={FPS}/1 ! clocksync ! rtc.video_0 rtcpeer name=rtc signaling={signaling} room={room} "
            f"peer-id=sender video-bitrate={KBPS} {props}")
    return subprocess.Popen(["gst-launch-1.0"] + desc.split(), stdout=log, stderr=subprocess.STDOUT,
                            env=env)


def measure(sender, viewer_uri, room, n, seconds, settle, work, log, viewer_plugin_path=None):
    # The viewers' build decides their RTCP rate (rtcprate), and so the sender's feedback load.
    viewers = subprocess.Popen([PY, os.path.join(HERE, "viewers.py"), str(n), viewer_uri, room],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                               text=True, env=plugin_env(viewer_plugin_path))
    try:
        deadline = time.monotonic() + 60 + 4 * n
        line = ""
        os.set_blocking(viewers.stdout.fileno(), False)
        buf = ""
        while time.monotonic() < deadline and "ready" not in buf:
            if viewers.poll() is not None or sender.poll() is not None:
                raise RuntimeError("a process exited before every viewer got video")
            try:
                buf += viewers.stdout.read() or ""
            except TypeError:
                pass
            time.sleep(0.1)
        if "ready" not in buf:
            raise RuntimeError(f"not every one of {n} viewers got video in time")
        os.set_blocking(viewers.stdout.fileno(), True)
        time.sleep(settle)  # past the start of every connection (see the top)

        def counts():
            viewers.stdin.write("\n")
            viewers.stdin.flush()
            return json.loads(viewers.stdout.readline())

        c0, t0, cpu0, th0 = counts(), time.monotonic(), cpu_seconds(sender.pid), thread_cpu(sender.pid)
        time.sleep(seconds)
        c1, t1, cpu1, th1 = counts(), time.monotonic(), cpu_seconds(sender.pid), thread_cpu(sender.pid)
        fps = min(b - a for a, b in zip(c0["frames"], c1["frames"])) / (t1 - t0)
        # Viewers reporting at the fast RTCP rate at either end of the window: their feedback is
        # ~10x the clean rate's, and the sender's CPU with it.
        fast = max(sum(r > FAST_RTCP_BELOW for r in c["rtcp"]) for c in (c0, c1))
        return 100 * (cpu1 - cpu0) / (t1 - t0), fps, by_class(th0, th1, t1 - t0), fast
    finally:
        stop(viewers)


def run_system(system, ns, seconds, settle, threads, work, props="", plugin_path=None,
               pattern="ball", viewer_plugin_path=None):
    log = open(os.path.join(work, f"{system}.log"), "w")
    results = {}
    daemon = janus = None
    try:
        if system in ("p2p", "aiortc"):
            port = free_port()
            daemon = subprocess.Popen([os.path.join(BUILD, "signaling", "pointcast-signaling"),
                                       "--host", "127.0.0.1", "--port", str(port),
                                       "--log-level", "WARNING"], stdout=log, stderr=log)
            wait_port(port, daemon, "pointcast-signaling")
            uri = f"ws://127.0.0.1:{port}/ws"
        else:
            port = free_port()
            conf = os.path.join(work, "janus")
            janusconf.write(conf, ws_port=port, debug_level=2)
            janus = subprocess.Popen(["janus", "-o", "-C", os.path.join(conf, "janus.jcfg"),
                                      "-F", conf], stdout=log, stderr=log)
            wait_port(port, janus, "janus")
        frames = os.path.join(work, "frames.yuv")
        if not os.path.exists(frames):
            subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", f"pattern={pattern}",
                            f"num-buffers={2 * FPS}", "!",
                            f"video/x-raw,format=I420,width={W},height={H},framerate={FPS}/1",
                            "!", "filesink", f"location={frames}"], check=True)
        for i, n in enumerate(ns):
            room = f"{system}-{i}"
            if system == "p2p":
                sender = gst_sender(uri, room, frames, log, props, plugin_path)
                viewer_uri = uri
            elif system == "janus":
                room = str(5000 + i)
                sender = gst_sender(f"janus://127.0.0.1:{port}/{room}", room, frames, log, props,
                                    plugin_path)
                viewer_uri = f"janus://127.0.0.1:{port}/{room}"
            else:
                sender = subprocess.Popen([PY, os.path.join(HERE, "aiortc_sender.py"), uri, room,
                                           frames, str(W), str(H)], stdout=log, stderr=log)
                viewer_uri = uri
            try:
                time.sleep(1.0)
                results[n] = measure(sender, viewer_uri, room, n, seconds, settle, work, log,
                                     viewer_plugin_path)
            except RuntimeError as e:
                results[n] = (None, str(e), {}, 0)
            finally:
                stop(sender)
            cpu, fps, per_thread, fast = results[n]
            shown = (f"{cpu:6.1f} %  (slowest viewer {fps:4.1f} fps"
                     + (f"; {fast} at the fast RTCP rate" if fast else "") + ")"
                     if cpu is not None else fps)
            print(f"  {system:7s} {n:2d} viewers: sender CPU {shown}", flush=True)
            if threads and per_thread:
                print("      by thread: " + ", ".join(f"{k} {v:.1f}" for k, v in per_thread.items()
                                              if v >= 0.05), flush=True)
    finally:
        stop(daemon)
        stop(janus)
        log.close()
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--viewers", default="1,2,4,8,16")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--settle", type=float, default=8.0,
                    help="seconds after every viewer decodes before measuring")
    ap.add_argument("--threads", action="store_true", help="the sender's CPU by thread")
    ap.add_argument("--systems", default="p2p,janus,aiortc")
    ap.add_argument("--sender-props", default="",
                    help="more rtcpeer properties for the sender, e.g. fec-percentage=0 (A/B runs)")
    ap.add_argument("--pattern", default="ball",
                    help="videotestsrc pattern of the looped video (ball: ~130 kbit/s, one RTP "
                    "packet a frame; snow reaches the 500 kbit/s target, ~2 kB a frame)")
    ap.add_argument("--sender-plugin-path", default=None,
                    help="GST_PLUGIN_PATH for rtcpeer senders only: another build (A/B runs)")
    ap.add_argument("--viewer-plugin-path", default=None,
                    help="GST_PLUGIN_PATH for the viewers' process only: another build (A/B "
                    "runs of what decides the viewers' RTCP rate)")
    a = ap.parse_args()
    ns = [int(x) for x in a.viewers.split(",")]
    systems = a.systems.split(",")
    if "janus" in systems and (not shutil.which("janus") or not janusconf.local_ipv4()):
        print("janus: skipped (no janus binary or no global IPv4 address for its ICE)")
        systems.remove("janus")
    work = tempfile.mkdtemp(prefix="bench-fanout-")
    print(f"fan-out, {W}x{H}@{FPS} VP8 {KBPS} kbit/s, sender CPU in % of one core over {a.seconds:g} s "
          f"from {a.settle:g} s after every viewer decodes (logs in {work})")
    res = {s: run_system(s, ns, a.seconds, a.settle, a.threads, work, a.sender_props,
                      a.sender_plugin_path, a.pattern, a.viewer_plugin_path)
           for s in systems}
    print("\nviewers  " + "".join(f"{s:>10s}" for s in systems))
    for n in ns:
        row = "".join(f"{res[s][n][0]:9.1f}%" if res[s][n][0] is not None else f"{'failed':>10s}"
                      for s in systems)
        print(f"{n:7d}  {row}")
    p2p, aio = res.get("p2p", {}), res.get("aiortc", {})
    if p2p.get(1, (None,))[0] and p2p.get(8, (None,))[0]:
        r = p2p[8][0] / p2p[1][0]
        print(f"rtcpeer P2P: 8 viewers / 1 viewer = {r:.2f}x (target <= 1.5x)")
        if aio.get(8, (None,))[0]:
            r = p2p[8][0] / aio[8][0]
            print(f"rtcpeer P2P / aiortc at 8 viewers = {r:.2f}x (target <= 0.2x)")
    jan = res.get("janus", {})
    vals = [jan[n][0] for n in ns if jan.get(n, (None,))[0] is not None]
    if len(vals) == len(ns):
        r = max(vals) / min(vals)
        print(f"rtcpeer through Janus: max/min over {ns[0]}-{ns[-1]} viewers = {r:.2f}x "
              f"(target: flat)")
    failed = any(r[0] is None for v in res.values() for r in v.values())
    if not failed:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
